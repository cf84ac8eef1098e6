// Two gateway processes on one real Redis: they converge, and killing one (SIGKILL) loses
// no edit that it had acknowledged (relayed to anyone).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startGateway, mintToken, editor, synced, waitFor, uniqueWorkspace, crash, dispose } from './helpers.mjs'

let ws, token
const gateways = []
const open = []
const start = async (args = []) => { const g = await startGateway({ workspace: ws, args }); gateways.push(g); return g }
const client = (gw, room) => { const e = editor(gw, room, token); open.push(e); return e }

before(async () => {
  ws = uniqueWorkspace('cluster')
  token = mintToken(ws)
})

after(async () => {
  for (const e of open) dispose(e)
  for (const g of gateways) await g.stop('SIGKILL')
})

/** On losing its gateway, a client turns to `next` (as it would behind a load balancer). */
function failOverTo (e, next) {
  e.provider.on('connection-close', () => { e.provider.serverUrl = next.url })
}

test('two gateways converge; after SIGKILL of one its clients reconnect to the other with no lost edit', async () => {
  const g1 = await start()
  const g2 = await start()
  const room = 'shared/notes.md'
  const a = client(g1, room)
  const b = client(g2, room)
  await Promise.all([synced(a), synced(b)])
  a.awareness.setLocalStateField('user', { name: 'on-g1' })
  a.text.insert(0, 'from g1. ')
  b.text.insert(0, 'from g2. ')
  const both = (s) => s.includes('from g1. ') && s.includes('from g2. ')
  await waitFor(() => both(a.text.toString()) && both(b.text.toString()), 'both gateways to converge')
  assert.equal(a.text.toString(), b.text.toString())
  await waitFor(() => b.awareness.getStates().get(a.doc.clientID)?.user?.name === 'on-g1', 'presence across gateways')

  // c writes through g1 and b (on g2) sees it: g1 acknowledged that edit.
  const c = client(g1, room)
  await synced(c)
  c.text.insert(0, 'acknowledged-by-g1. ')
  await waitFor(() => b.text.toString().includes('acknowledged-by-g1. '), 'b to see c\'s edit')
  for (let i = 0; i < 50; i++) a.text.insert(a.text.length, `[${i}]`)
  await waitFor(() => b.text.toString().includes('[49]'), 'a burst of edits to cross over')

  failOverTo(a, g2)
  await g1.stop('SIGKILL')
  crash(c) // c's author is gone with g1: only storage and g2 hold its edit now
  a.text.insert(a.text.length, ' written-while-failing-over')
  await waitFor(() => a.provider.synced && a.provider.serverUrl === g2.url, 'a to reconnect to g2', 15000)
  await waitFor(() => b.text.toString().includes('written-while-failing-over'), 'a\'s offline edit to reach b')
  assert.equal(a.text.toString(), b.text.toString())

  // Now only Redis remembers: kill g2 and its clients too, then start a fresh gateway.
  const expected = b.text.toString()
  dispose(a)
  dispose(b)
  await g2.stop('SIGKILL')
  const g3 = await start()
  const d = client(g3, room)
  await synced(d)
  await waitFor(() => d.text.toString() === expected, 'a restarted gateway to serve the last state')
  for (const part of ['from g1. ', 'from g2. ', 'acknowledged-by-g1. ', '[49]', 'written-while-failing-over']) {
    assert.ok(d.text.toString().includes(part), `lost ${part}`)
  }
})

test('SIGTERM closes clients with 1012 so they reconnect elsewhere, and keeps every edit', async () => {
  const g1 = await start()
  const g2 = await start()
  const room = 'drain'
  const a = client(g1, room)
  await synced(a)
  a.text.insert(0, 'before shutdown')
  failOverTo(a, g2)
  const exit = await g1.stop('SIGTERM')
  assert.equal(exit.code, 0, g1.logs())
  assert.equal(a.events.closes[0]?.code, 1012)
  await waitFor(() => a.provider.synced && a.provider.serverUrl === g2.url, 'a to reconnect to g2')
  const fresh = client(g2, room)
  await waitFor(() => fresh.text.toString() === 'before shutdown', 'the other gateway to serve the edit')
})
