// Presence whose state is not JSON: y-protocols calls JSON.parse on every state it receives, and
// a throw there stops the stock provider for good. The gateway must refuse such a message (1007)
// and keep nothing of it: no relay, nothing in what joiners receive.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startGateway, mintToken, editor, synced, waitFor, uniqueWorkspace, sleep, dispose, awarenessFrame, rawSocket } from './helpers.mjs'

let gw, ws, token
const open = []
const client = (room) => { const e = editor(gw, room, token); open.push(e); return e }

before(async () => {
  ws = uniqueWorkspace('pjson')
  gw = await startGateway({ workspace: ws })
  token = mintToken(ws)
})

after(async () => {
  for (const e of open) dispose(e)
  await gw.stop()
})

test('a presence state that is not JSON closes its sender with 1007 and reaches nobody', async () => {
  const room = 'not-json'
  const watcher = client(room)
  const writer = client(room)
  await Promise.all([synced(watcher), synced(writer)])
  const errors = []
  const onError = (e) => errors.push(e)
  process.on('uncaughtException', onError)
  try {
    // A read-only token is enough to send presence.
    const rogue = rawSocket(gw, room, mintToken(ws, { readOnly: true }))
    await rogue.opened
    // One good entry next to the bad one: nothing of the message may be kept.
    rogue.raw.send(awarenessFrame([[424242, 1, '{"user":{"name":"ok"}}'], [434343, 1, '{not json']]))
    assert.equal(await rogue.closed, 1007)
    // The watcher still processes messages: it sees the next edit.
    writer.text.insert(0, 'after the bad presence')
    await waitFor(() => watcher.text.toString() === 'after the bad presence', 'the watcher to see the edit')
    // A client that joins later syncs and is shown neither entry.
    const late = client(room)
    await synced(late)
    await waitFor(() => late.text.toString() === 'after the bad presence', 'the late joiner to load the document')
    await sleep(200)
    for (const e of [watcher, late]) {
      assert.equal(e.awareness.getStates().has(434343), false)
      assert.equal(e.awareness.getStates().has(424242), false, 'the good entry of the refused message was kept')
    }
  } finally {
    process.off('uncaughtException', onError)
  }
  assert.deepEqual(errors.map(String), [], 'a client threw on what the gateway relayed')
})

test('null and any JSON value are still accepted as presence states', async () => {
  const room = 'json-values'
  const watcher = client(room)
  await synced(watcher)
  const sender = rawSocket(gw, room, token)
  await sender.opened
  let closedWith = null
  sender.closed.then((c) => { closedWith = c })
  sender.raw.send(awarenessFrame([[515151, 1, '{"user":{"name":"raw"}}'], [525252, 1, '[1, "two", {"three": 3.5e2}]']]))
  await waitFor(() => watcher.awareness.getStates().get(515151)?.user?.name === 'raw', 'the watcher to see the raw client')
  assert.deepEqual(watcher.awareness.getStates().get(525252), [1, 'two', { three: 350 }])
  sender.raw.send(awarenessFrame([[515151, 2, 'null']]))
  await waitFor(() => !watcher.awareness.getStates().has(515151), 'the removal to arrive')
  assert.equal(closedWith, null, 'a valid message closed the sender')
  sender.raw.close()
})
