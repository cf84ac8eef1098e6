// What one connection, one room and one lock holder may hold: client ids per connection,
// locks per room and per holder, and the size of the gateway's own presence entry. One
// connection once announced 2,000 client ids with 50 lock wishes each and the gateway took
// 100,000 locks and left a key behind for each.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  startGateway, mintToken, editor, synced, waitFor, uniqueWorkspace, sleep, dispose, metrics, metricValue,
  awarenessFrame, rawSocket, gatewayEntry, redisUrl, redisCommand
} from './helpers.mjs'

let gw, ws, token
const open = []
const client = (room) => { const e = editor(gw, room, token); open.push(e); return e }

before(async () => {
  ws = uniqueWorkspace('limits')
  gw = await startGateway({
    workspace: ws,
    args: ['--max-client-ids', '4', '--max-locks-per-room', '6', '--max-locks-per-owner', '2', '--lock-ttl', '2s']
  })
  token = mintToken(ws, { subject: 'ci' })
})

after(async () => {
  for (const e of open) dispose(e)
  await gw.stop()
})

async function call (method, params, t = token) {
  const q = new URLSearchParams(params).toString()
  const res = await fetch(`${gw.http}/locks?${q}`, { method, headers: { authorization: `Bearer ${t}` } })
  return { status: res.status, body: await res.json() }
}

test('one connection shows at most --max-client-ids client ids and takes bounded locks', async () => {
  const room = 'many-ids'
  const watcher = client(room)
  await synced(watcher)
  const flood = rawSocket(gw, room, token)
  await flood.opened
  let closedWith = null
  flood.closed.then((c) => { closedWith = c })
  // Ten client ids, each asking for five locks.
  const ids = Array.from({ length: 10 }, (_, i) => 700000 + i)
  const paths = (id) => Array.from({ length: 5 }, (_, j) => `f-${id}-${j}.ts`)
  flood.raw.send(awarenessFrame(ids.map((id) => [id, 1, JSON.stringify({ user: { name: `u${id}` }, lockRequests: paths(id) })])))
  await waitFor(() => ids.filter((id) => watcher.awareness.getStates().has(id)).length === 4, 'four of the ids to be shown')
  await waitFor(() => (gatewayEntry(watcher)?.locks.length ?? 0) === 6, 'the room to hold its most locks')
  await sleep(1500) // a renewal round (ttl/3): nothing more is taken
  const shown = ids.filter((id) => watcher.awareness.getStates().has(id))
  assert.equal(shown.length, 4, `shown: ${shown}`)
  const locks = gatewayEntry(watcher).locks
  assert.equal(locks.length, 6)
  const perOwner = {}
  for (const l of locks) perOwner[l.owner] = (perOwner[l.owner] ?? 0) + 1
  assert.ok(Object.values(perOwner).every((n) => n <= 2), JSON.stringify(perOwner))
  assert.ok(Object.keys(perOwner).every((o) => shown.includes(Number(o.slice(4)))), 'a lock for a dropped id')
  // The connection is not closed: a client over the limit keeps editing.
  assert.equal(closedWith, null)
  const m = await metrics(gw)
  assert.equal(metricValue(m, 'multiplayer_client_ids_refused_total'), 6)
  assert.match(gw.logs(), /announced more client ids than the 4 it may \(--max-client-ids\)/)
  assert.match(gw.logs(), /waits: the (room holds 6 locks|holder holds 2 locks)/)
  // No lock key is left without an expiry: no fencing counter per path.
  assert.equal(await redisCommand(await redisUrl(), 'KEYS', `appgear:mp:${ws}:fence:*`), '*0')
  flood.raw.close()
})

test('HTTP: a holder at --max-locks-per-owner, or a full room, gets 429', async () => {
  const room = 'http-limits'
  const as = (sub) => mintToken(ws, { subject: sub })
  assert.equal((await call('POST', { room, path: 'a' }, as('alice'))).status, 200)
  assert.equal((await call('POST', { room, path: 'b' }, as('alice'))).status, 200)
  const third = await call('POST', { room, path: 'c' }, as('alice'))
  assert.equal(third.status, 429)
  assert.equal(third.body.granted, false)
  assert.match(third.body.error, /--max-locks-per-owner/)
  // Renewing is never refused.
  assert.equal((await call('POST', { room, path: 'a' }, as('alice'))).status, 200)
  for (const [path, who] of [['c', 'bob'], ['d', 'bob'], ['e', 'carol'], ['f', 'carol']]) {
    assert.equal((await call('POST', { room, path }, as(who))).status, 200, path)
  }
  const full = await call('POST', { room, path: 'g' }, as('dave'))
  assert.equal(full.status, 429)
  assert.match(full.body.error, /--max-locks-per-room/)
  // Giving one back makes room.
  assert.equal((await call('DELETE', { room, path: 'a' }, as('alice'))).status, 200)
  assert.equal((await call('POST', { room, path: 'g' }, as('dave'))).status, 200)
  assert.equal((await call('GET', { room })).body.locks.length, 6)
})

test('the gateway entry lists what fits in 16 KiB and says how many locks there are', async () => {
  const bigWs = uniqueWorkspace('bigtable')
  const big = await startGateway({ workspace: bigWs, args: ['--max-locks-per-owner', '64'] })
  const bulk = mintToken(bigWs, { subject: 'bulk' })
  const room = 'big-table'
  const e = editor(big, room, bulk)
  try {
    await synced(e)
    // 40 locks on 900-byte paths: about 38 KiB of lock table.
    for (let i = 0; i < 40; i++) {
      const q = new URLSearchParams({ room, path: `${'p'.repeat(900)}${i}` })
      const res = await fetch(`${big.http}/locks?${q}`, { method: 'POST', headers: { authorization: `Bearer ${bulk}` } })
      assert.equal(res.status, 200)
    }
    await waitFor(() => gatewayEntry(e)?.lockCount === 40, 'the entry to count 40 locks')
    const entry = gatewayEntry(e)
    assert.equal(entry.truncated, true)
    assert.ok(entry.locks.length > 0 && entry.locks.length < 40, `${entry.locks.length} listed`)
    assert.ok(JSON.stringify(entry).length < 17 * 1024, `${JSON.stringify(entry).length} bytes`)
    // The HTTP listing has them all.
    const res = await fetch(`${big.http}/locks?room=${room}`, { headers: { authorization: `Bearer ${bulk}` } })
    assert.equal((await res.json()).locks.length, 40)
  } finally {
    dispose(e)
    await big.stop()
  }
})
