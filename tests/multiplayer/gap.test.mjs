// An update that arrives before an earlier one of the same author (a gap in its clocks) is new
// all the same: the gateway must store it, not only hold it in memory.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as encoding from 'lib0/encoding'
import { Y, WebSocket, startGateway, mintToken, editor, synced, waitFor, uniqueWorkspace, sleep, dispose } from './helpers.mjs'

let ws, token
const gateways = []
const open = []

before(async () => {
  ws = uniqueWorkspace('gap')
  token = mintToken(ws)
})

after(async () => {
  for (const e of open) dispose(e)
  for (const g of gateways) await g.stop('SIGKILL')
})

/** A raw connection that sends document updates as they are given (no sync of its own). */
async function rawWriter (gw, room) {
  const sock = new WebSocket(`${gw.url}/${room}`, [token])
  await new Promise((resolve, reject) => { sock.on('open', resolve); sock.on('error', reject) })
  return {
    send (update) {
      const e = encoding.createEncoder()
      encoding.writeVarUint(e, 0)
      encoding.writeVarUint(e, 2)
      encoding.writeVarUint8Array(e, update)
      sock.send(encoding.toUint8Array(e))
    },
    close: () => sock.terminate()
  }
}

test('an update sent after a gap in its author\'s clocks is stored before the gap is filled', async () => {
  const g1 = await startGateway({ workspace: ws })
  gateways.push(g1)
  const room = 'gap/late.md'
  // The author types "a" then "b"; the gateway gets "b" first.
  const author = new Y.Doc()
  const t = author.getText('t')
  t.insert(0, 'a')
  const first = Y.encodeStateAsUpdate(author)
  const sv = Y.encodeStateVector(author)
  t.insert(1, 'b')
  const second = Y.encodeStateAsUpdate(author, sv)
  const w1 = await rawWriter(g1, room)
  w1.send(second)
  await sleep(500)
  w1.close()
  // Only Redis remembers now.
  await g1.stop('SIGKILL')
  const g2 = await startGateway({ workspace: ws })
  gateways.push(g2)
  const w2 = await rawWriter(g2, room)
  w2.send(first)
  const b = editor(g2, room, token)
  open.push(b)
  await synced(b)
  await waitFor(() => b.text.toString() === 'ab', 'the update sent before the gap was filled', 5000)
    .catch((e) => { throw new Error(`${e.message}; text: ${JSON.stringify(b.text.toString())}`) })
  assert.equal(b.text.toString(), 'ab')
  w2.close()
})
