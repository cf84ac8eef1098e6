// Storage failures and out-of-order backplane delivery must not lose or hide edits.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startGateway, startRedis, redisCommand, mintToken, editor, synced, waitFor, uniqueWorkspace, sleep, dispose } from './helpers.mjs'

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
