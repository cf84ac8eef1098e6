// Storage failures and out-of-order backplane delivery must not lose or hide edits.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { Y, redisUrl, startGateway, startRedis, redisCommand, mintToken, editor, synced, waitFor, uniqueWorkspace, sleep, dispose } from './helpers.mjs'

let ws, token
const gateways = []
const open = []
const start = async (args = [], redis) => { const g = await startGateway({ workspace: ws, args, redis }); gateways.push(g); return g }
const client = (gw, room) => { const e = editor(gw, room, token); open.push(e); return e }

before(async () => {
  ws = uniqueWorkspace('durable')
  token = mintToken(ws)
})

after(async () => {
  for (const e of open) dispose(e)
  for (const g of gateways) await g.stop('SIGKILL')
})

test('an edit made while Redis refuses writes is stored once Redis accepts them again', async () => {
  const redis = await startRedis()
  const g1 = await start([], redis.url)
  const room = 'full/redis.md'
  const a = client(g1, room)
  await synced(a)
  a.text.insert(0, 'before. ')
  await sleep(300)
  assert.equal(await redisCommand(redis.url, 'CONFIG', 'SET', 'maxmemory-policy', 'noeviction'), '+OK')
  assert.equal(await redisCommand(redis.url, 'CONFIG', 'SET', 'maxmemory', '1'), '+OK')
  a.text.insert(a.text.length, 'while-full.')
  await waitFor(() => a.events.closes.some((c) => c && c.code === 1013), 'the gateway to refuse the edit with 1013')
  await sleep(500)
  assert.equal(await redisCommand(redis.url, 'CONFIG', 'SET', 'maxmemory', '0'), '+OK')
  // The client reconnects and, since the gateway did not keep the edit, sends it again.
  await sleep(1500)
  await waitFor(() => a.provider.synced, 'a to resync')
  // Only Redis remembers now: kill the gateway and read the room through a fresh one.
  await g1.stop('SIGKILL')
  a.provider.disconnect()
  const g2 = await start([], redis.url)
  const b = client(g2, room)
  await synced(b)
  await waitFor(() => b.text.toString() === 'before. while-full.', 'the edit made while Redis was full', 5000)
    .catch((e) => { throw new Error(`${e.message}; stored text: ${JSON.stringify(b.text.toString())}`) })
  redis.stop()
})

/** What another replica publishes for one update: `[version 1][origin: 16 bytes][kind 0][update]`. */
function envelope (update) {
  return Buffer.concat([Buffer.from([1]), crypto.randomBytes(16), Buffer.from([0]), Buffer.from(update)])
}

test('updates from other replicas that arrive out of order still reach connected clients', async () => {
  const g = await start()
  const room = 'order/late.md'
  const a = client(g, room)
  await synced(a)
  // Another replica's editor types "first" then " second"; the backplane delivers them swapped.
  const remote = new Y.Doc()
  const t = remote.getText('t')
  t.insert(0, 'first')
  const u1 = Y.encodeStateAsUpdate(remote)
  const sv1 = Y.encodeStateVector(remote)
  t.insert(t.length, ' second')
  const u2 = Y.encodeStateAsUpdate(remote, sv1)
  const channel = `appgear:mp:${ws}:chan:${Buffer.byteLength(room)}:${room}`
  const url = await redisUrl()
  assert.equal(await redisCommand(url, 'PUBLISH', channel, envelope(u2)), ':1')
  await sleep(200)
  assert.equal(await redisCommand(url, 'PUBLISH', channel, envelope(u1)), ':1')
  await waitFor(() => a.text.toString() === 'first second', 'the client to converge', 5000)
    .catch((e) => { throw new Error(`${e.message}; client has ${JSON.stringify(a.text.toString())}`) })
})
