// Presence (awareness) through the gateway.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startGateway, mintToken, editor, synced, waitFor, uniqueWorkspace, crash, dispose } from './helpers.mjs'

let gw, token
const open = []
const client = (room, opts) => { const e = editor(gw, room, token, opts); open.push(e); return e }

before(async () => {
  const ws = uniqueWorkspace('aware')
  gw = await startGateway({ workspace: ws })
  token = mintToken(ws)
})

after(async () => {
  for (const e of open) dispose(e)
  await gw.stop()
})

const userOf = (e, clientId) => e.awareness.getStates().get(clientId)?.user

test('awareness is seen by others, including late joiners', async () => {
  const a = client('presence')
  a.awareness.setLocalStateField('user', { name: 'ana' })
  const b = client('presence')
  await Promise.all([synced(a), synced(b)])
  await waitFor(() => userOf(b, a.doc.clientID)?.name === 'ana', 'b to see ana')
  b.awareness.setLocalStateField('user', { name: 'bia' })
  await waitFor(() => userOf(a, b.doc.clientID)?.name === 'bia', 'a to see bia')
  const late = client('presence')
  await waitFor(() => userOf(late, a.doc.clientID)?.name === 'ana' && userOf(late, b.doc.clientID)?.name === 'bia',
    'a late joiner to see both')
})

test('awareness of an abruptly disconnected client is removed within 1 s', async () => {
  const a = client('abrupt')
  a.awareness.setLocalStateField('user', { name: 'gone-soon' })
  const b = client('abrupt')
  await Promise.all([synced(a), synced(b)])
  await waitFor(() => userOf(b, a.doc.clientID)?.name === 'gone-soon', 'b to see a')
  const id = a.doc.clientID
  let removedAt = 0
  b.awareness.on('change', ({ removed }) => { if (removed.includes(id)) removedAt = Date.now() })
  const crashedAt = Date.now()
  crash(a)
  await waitFor(() => removedAt > 0, 'b to see a removed', 1000)
  assert.ok(removedAt - crashedAt < 1000, `removed after ${removedAt - crashedAt} ms`)
  assert.equal(b.awareness.getStates().has(id), false)
})

test('the gateway announces itself with its lock table', async () => {
  const a = client('gateway-entry')
  await synced(a)
  await waitFor(() => [...a.awareness.getStates().values()].some((s) => s.appgear?.role === 'gateway'),
    'a gateway awareness entry')
  const entry = [...a.awareness.getStates().values()].find((s) => s.appgear)
  assert.equal(entry.appgear.room, 'gateway-entry')
  assert.deepEqual(entry.appgear.locks, [])
})
