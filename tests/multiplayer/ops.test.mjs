// Operations: health, readiness, metrics, limits, malformed frames, unloading.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import { startGateway, startRedis, mintToken, editor, synced, waitFor, uniqueWorkspace, sleep, metrics, metricValue, dispose, Y, WebSocket } from './helpers.mjs'

let ws, token
const gateways = []
const open = []
const start = async (args = [], redis) => { const g = await startGateway({ workspace: ws, args, redis }); gateways.push(g); return g }
const client = (gw, room) => { const e = editor(gw, room, token); open.push(e); return e }

before(async () => {
  ws = uniqueWorkspace('ops')
  token = mintToken(ws)
})

after(async () => {
  for (const e of open) dispose(e)
  for (const g of gateways) await g.stop('SIGKILL')
})

function rawClient (gw, room) {
  const raw = new WebSocket(`${gw.url}/${encodeURIComponent(room)}`, [token])
  const closed = new Promise((resolve) => raw.on('close', (code) => resolve(code)))
  const opened = new Promise((resolve, reject) => { raw.on('open', resolve); raw.on('error', reject) })
  return { raw, closed, opened }
}

test('healthz, readyz and metrics (also under the prefix)', async () => {
  const gw = await start()
  for (const path of ['/healthz', '/multiplayer/healthz', '/readyz']) {
    assert.equal((await fetch(gw.http + path)).status, 200, path)
  }
  const a = client(gw, 'metrics-room')
  await synced(a)
  a.text.insert(0, 'x')
  await sleep(200)
  const m = await metrics(gw)
  assert.equal(metricValue(m, `multiplayer_active_sessions{workspace_id="${ws}"}`), 1)
  assert.equal(metricValue(m, 'multiplayer_loaded_documents'), 1)
  assert.ok(metricValue(m, 'multiplayer_connections_total') >= 1)
  assert.ok(metricValue(m, `multiplayer_messages_total{workspace_id="${ws}",direction="received"}`) >= 2)
  assert.ok(metricValue(m, `multiplayer_messages_total{workspace_id="${ws}",direction="sent"}`) >= 2)
  assert.equal(metricValue(m, 'multiplayer_queue_overflows_total'), 0)
  assert.equal((await fetch(gw.http + '/nope')).status, 404)
})

test('a malformed frame closes only that connection', async () => {
  const gw = await start()
  const a = client(gw, 'malformed')
  const b = client(gw, 'malformed')
  await Promise.all([synced(a), synced(b)])
  const bad = rawClient(gw, 'malformed')
  await bad.opened
  bad.raw.send(Uint8Array.of(0, 2, 200, 1)) // an update whose length runs past the frame
  assert.equal(await bad.closed, 1007)
  const text = rawClient(gw, 'malformed')
  await text.opened
  text.raw.send('hello')
  assert.equal(await text.closed, 1003)
  a.text.insert(0, 'still fine')
  await waitFor(() => b.text.toString() === 'still fine', 'the others to keep syncing')
  assert.deepEqual(a.events.closes, [])
  assert.deepEqual(b.events.closes, [])
  const m = await metrics(gw)
  assert.ok(metricValue(m, 'multiplayer_malformed_frames_total') >= 1)
})

test('messages above --max-message-size close that connection only', async () => {
  const gw = await start(['--max-message-size', '64KiB'])
  const a = client(gw, 'limits')
  await synced(a)
  const big = rawClient(gw, 'limits')
  await big.opened
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 0)
  const doc = new Y.Doc()
  doc.getText('t').insert(0, 'x'.repeat(100 * 1024))
  syncProtocol.writeUpdate(enc, Y.encodeStateAsUpdate(doc))
  big.raw.send(encoding.toUint8Array(enc))
  const code = await big.closed
  assert.equal(code, 1009)
  assert.equal(a.text.toString(), '')
  assert.deepEqual(a.events.closes, [])
})

test('--max-connections refuses extra connections with a retryable HTTP 503', async () => {
  const gw = await start(['--max-connections', '1'])
  const a = client(gw, 'full')
  await synced(a)
  const extra = new WebSocket(`${gw.url}/full`, [token])
  const status = await new Promise((resolve) => {
    extra.on('unexpected-response', (_req, res) => resolve(res.statusCode))
    extra.on('open', () => resolve('opened'))
  })
  assert.equal(status, 503)
  const m = await metrics(gw)
  assert.equal(metricValue(m, `multiplayer_rejected_connections_total{workspace_id="${ws}",reason="busy"}`), 1)
})

test('a document unloads after its last client leaves plus the grace period', async () => {
  const gw = await start(['--unload-grace', '500ms'])
  const a = client(gw, 'unload-me')
  await synced(a)
  a.text.insert(0, 'kept in Redis')
  await waitFor(async () => metricValue(await metrics(gw), 'multiplayer_loaded_documents') === 1, 'the document to load')
  dispose(a)
  await waitFor(async () => metricValue(await metrics(gw), 'multiplayer_loaded_documents') === 0, 'the document to unload', 5000)
  const b = client(gw, 'unload-me')
  await waitFor(() => b.text.toString() === 'kept in Redis', 'the reloaded document')
})

test('readyz fails while Redis is down; the gateway refuses to start without Redis', async () => {
  const redis = await startRedis()
  const gw = await start([], redis.url)
  assert.equal((await fetch(gw.http + '/readyz')).status, 200)
  redis.stop()
  await waitFor(async () => (await fetch(gw.http + '/readyz')).status === 503, 'readyz to fail', 10000)
  assert.equal((await fetch(gw.http + '/healthz')).status, 200, 'liveness does not depend on Redis')
  await assert.rejects(start([], redis.url), /exited with 3/)
})

test('a consumer that cannot keep up is closed with a transient code, not silently skipped', async () => {
  const gw = await start(['--send-queue', '4'])
  const a = client(gw, 'slow')
  await synced(a)
  const slow = rawClient(gw, 'slow')
  await slow.opened
  slow.raw._socket.pause() // stop reading: frames pile up in the kernel, then in its queue
  const chunk = 'y'.repeat(20 * 1024)
  for (let i = 0; i < 400; i++) a.text.insert(0, chunk)
  await waitFor(async () => metricValue(await metrics(gw), 'multiplayer_queue_overflows_total') >= 1, 'an overflow', 20000)
  slow.raw._socket.resume()
  assert.equal(await slow.closed, 1013)
  assert.deepEqual(a.events.closes, [], 'the fast client stays')
})

test('a connection that sends nothing for --idle-timeout is closed, and its lock runs out', async () => {
  const gw = await start(['--idle-timeout', '2s', '--lock-ttl', '2s'])
  const room = 'half-open'
  const silent = rawClient(gw, room)
  const chatty = rawClient(gw, room)
  await Promise.all([silent.opened, chatty.opened])
  // The silent one asks for a lock through its presence, then goes quiet without closing (like a
  // laptop whose network vanished).
  const doc = new Y.Doc()
  const aw = new awarenessProtocol.Awareness(doc)
  aw.setLocalState({ lockRequests: ['idle.md'] })
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 1)
  encoding.writeVarUint8Array(enc, awarenessProtocol.encodeAwarenessUpdate(aw, [doc.clientID]))
  silent.raw.send(encoding.toUint8Array(enc))
  aw.destroy()
  const listLocks = async () => (await (await fetch(`${gw.http}/locks?room=${room}`, { headers: { authorization: `Bearer ${token}` } })).json()).locks
  await waitFor(async () => (await listLocks()).some((l) => l.owner === `yjs:${doc.clientID}`), 'the silent client to hold its lock')
  // The other keeps talking (QueryAwareness every 500 ms) and stays.
  const talk = setInterval(() => chatty.raw.send(Uint8Array.of(3)), 500)
  try {
    const code = await Promise.race([silent.closed, sleep(6000).then(() => 'still open')])
    assert.equal(code, 1001, 'the silent connection is closed as idle')
    await waitFor(async () => (await listLocks()).length === 0, 'its lock to run out', 5000)
    assert.equal(chatty.raw.readyState, WebSocket.OPEN, 'a connection that talks stays open')
  } finally {
    clearInterval(talk)
    chatty.raw.close()
    silent.raw.terminate()
  }
})

test('--max-connections holds for a burst of simultaneous connections', async () => {
  const gw = await start(['--max-connections', '3'])
  const burst = Array.from({ length: 100 }, () => new WebSocket(`${gw.url}/burst`, [token]))
  const outcomes = await Promise.all(burst.map((s) => new Promise((resolve) => {
    s.on('unexpected-response', (_req, res) => resolve(res.statusCode))
    s.on('open', () => resolve('opened'))
    s.on('error', () => resolve('error'))
  })))
  try {
    const opened = outcomes.filter((o) => o === 'opened').length
    assert.equal(opened, 3, `outcomes: ${outcomes.join(',')}`)
    assert.equal(outcomes.filter((o) => o === 503).length, 97)
  } finally {
    for (const s of burst) s.terminate()
  }
  // Slots come back when connections close.
  await sleep(500)
  const again = editor(gw, 'burst', token)
  open.push(again)
  await synced(again)
})
