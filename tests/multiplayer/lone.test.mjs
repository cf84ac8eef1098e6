// The stock client drops a connection that saw no data frame for 30 s (pings do not count).
// A lone client must stay connected anyway. Runs alone in its file so it overlaps the others.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startGateway, mintToken, editor, synced, waitFor, uniqueWorkspace, sleep, dispose } from './helpers.mjs'

let gw, token
const open = []

before(async () => {
  const ws = uniqueWorkspace('lone')
  gw = await startGateway({ workspace: ws })
  token = mintToken(ws)
})

after(async () => {
  for (const e of open) dispose(e)
  await gw.stop()
})

test('a lone client stays connected for over 70 s', { timeout: 120000 }, async () => {
  const lone = editor(gw, 'lonely', token)
  open.push(lone)
  await synced(lone)
  lone.text.insert(0, 'still here')
  const ws = lone.provider.ws
  await sleep(72000)
  assert.deepEqual(lone.events.closes, [], 'the connection was closed')
  assert.equal(lone.provider.ws, ws, 'the client reconnected in between')
  assert.equal(lone.provider.wsconnected, true)
  // And it still works.
  const other = editor(gw, 'lonely', token)
  open.push(other)
  await waitFor(() => other.text.toString() === 'still here', 'the document')
  other.text.insert(0, '> ')
  await waitFor(() => lone.text.toString() === '> still here', 'the lone client to see an edit')
})
