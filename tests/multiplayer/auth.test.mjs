// Tokens: checked before the handshake completes; refusals use 44xx so the client stops.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startGateway, mintToken, mintTokenJs, editor, synced, waitFor, uniqueWorkspace, sleep, metrics, metricValue, WebSocket, dispose } from './helpers.mjs'

let gw, ws, token
const open = []
const client = (room, t, opts) => { const e = editor(gw, room, t, opts); open.push(e); return e }

before(async () => {
  ws = uniqueWorkspace('auth')
  gw = await startGateway({ workspace: ws })
  token = mintToken(ws)
})

after(async () => {
  for (const e of open) dispose(e)
  await gw.stop()
})

/** The client was refused with `code` and then never tried again. */
async function refusedFor (e, code) {
  let closed = null
  e.provider.on('closed', (ev) => { closed = ev })
  await waitFor(() => e.events.closes.length > 0, 'the connection to be closed')
  assert.equal(e.events.closes[0]?.code, code)
  await waitFor(() => closed !== null, 'the provider to give up (closed event)')
  assert.equal(closed.code, code)
  await sleep(2000) // several backoff periods (max 500 ms here)
  // The first 'connecting' is emitted inside the constructor, before listeners exist.
  assert.equal(e.events.statuses.filter((s) => s === 'connecting').length, 0, 'it reconnected')
  assert.equal(e.provider.ws, null)
  assert.equal(e.provider.shouldConnect, false)
  assert.equal(e.events.closes.length, 1)
}

test('a bad token gets 4401 and the client stops reconnecting', async () => {
  const e = client('secret-room', 'mp1.bogus.token')
  await refusedFor(e, 4401)
  const m = await metrics(gw)
  assert.ok(metricValue(m, 'multiplayer_rejected_connections_total{workspace_id="' + ws + '",reason="bad_token"}') >= 1)
})

test('a token signed with another secret gets 4401', async () => {
  const forged = mintTokenJs({ ws, ro: false, exp: Math.floor(Date.now() / 1000) + 3600 }, 'another-secret-0123456789')
  await refusedFor(client('secret-room', forged), 4401)
})

test('an expired token gets 4401', async () => {
  const expired = mintTokenJs({ ws, ro: false, exp: Math.floor(Date.now() / 1000) - 1 })
  await refusedFor(client('secret-room', expired), 4401)
})

test('a token for another workspace gets 4403', async () => {
  const other = mintTokenJs({ ws: 'someone-else', ro: false, exp: Math.floor(Date.now() / 1000) + 3600 })
  await refusedFor(client('secret-room', other), 4403)
})

test('no token at all gets 4401 and no document data', async () => {
  const raw = new WebSocket(`${gw.url}/secret-room`)
  const frames = []
  raw.on('message', (d) => frames.push(d))
  const code = await new Promise((resolve) => raw.on('close', (c) => resolve(c)))
  assert.equal(code, 4401)
  assert.equal(frames.length, 0, 'a refused client must not receive any of the room')
})

test('a token minted in JavaScript from the documented format is accepted', async () => {
  const t = mintTokenJs({ ws, ro: false, exp: Math.floor(Date.now() / 1000) + 60, sub: 'js' })
  const e = client('format', t)
  await synced(e)
  assert.deepEqual(e.events.closes, [])
})

test('a read-only token receives updates but its writes are neither applied nor relayed', async () => {
  const writer = client('ro-room', token)
  const reader = client('ro-room', mintToken(ws, { readOnly: true }))
  await Promise.all([synced(writer), synced(reader)])
  writer.text.insert(0, 'from writer')
  await waitFor(() => reader.text.toString() === 'from writer', 'the reader to receive the update')
  reader.text.insert(0, 'SNEAKY ')
  await sleep(500)
  assert.equal(writer.text.toString(), 'from writer', 'the read-only write was relayed')
  // A newcomer loads from the gateway: the read-only write was not applied there either.
  const fresh = client('ro-room', token)
  await synced(fresh)
  await waitFor(() => fresh.text.toString() === 'from writer', 'the newcomer to load the document')
  await sleep(300)
  assert.equal(fresh.text.toString(), 'from writer')
  const m = await metrics(gw)
  assert.ok(metricValue(m, 'multiplayer_readonly_writes_dropped_total') >= 1)
})
