// Document sync with stock y-websocket 3.1.0 clients.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { startGateway, mintToken, editor, synced, waitFor, uniqueWorkspace, Y, WebSocket, dispose } from './helpers.mjs'

let gw, token, ws
const open = []
const client = (room, opts) => { const e = editor(gw, room, token, opts); open.push(e); return e }

before(async () => {
  ws = uniqueWorkspace('sync')
  gw = await startGateway({ workspace: ws })
  token = mintToken(ws)
})

after(async () => {
  for (const e of open) dispose(e)
  await gw.stop()
})

test('edits sync both ways', async () => {
  const a = client('both-ways')
  const b = client('both-ways')
  await Promise.all([synced(a), synced(b)])
  a.text.insert(0, 'hello ')
  await waitFor(() => b.text.toString() === 'hello ', 'b to see a\'s edit')
  b.text.insert(6, 'world')
  await waitFor(() => a.text.toString() === 'hello world', 'a to see b\'s edit')
})

test('token in the query string works too', async () => {
  const a = client('query-token', { viaQuery: true })
  const b = client('query-token')
  await Promise.all([synced(a), synced(b)])
  a.text.insert(0, 'q')
  await waitFor(() => b.text.toString() === 'q', 'b to see the edit')
})

test('offline edits are merged on connect', async () => {
  const a = client('offline')
  const b = client('offline')
  await Promise.all([synced(a), synced(b)])
  a.text.insert(0, 'base.')
  await waitFor(() => b.text.toString() === 'base.', 'base text')
  b.provider.disconnect()
  await waitFor(() => !b.provider.wsconnected, 'b to go offline')
  a.text.insert(a.text.length, ' online-edit')
  b.text.insert(0, 'offline-edit ')
  // A client that edited before it ever connected.
  const doc = new Y.Doc()
  doc.getText('t').insert(0, 'never-connected ')
  const c = client('offline', { doc })
  b.provider.connect()
  const want = (s) => s.includes('online-edit') && s.includes('offline-edit') && s.includes('never-connected') && s.includes('base.')
  await waitFor(() => want(a.text.toString()) && want(b.text.toString()) && want(c.text.toString()), 'everyone to merge all edits')
  assert.equal(a.text.toString(), b.text.toString())
  assert.equal(a.text.toString(), c.text.toString())
})

test('a late joiner gets a 5 MB document', async () => {
  const big = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(5 * 1024 * 1024 / 36)).slice(0, 5 * 1024 * 1024)
  const a = client('big')
  await synced(a)
  a.text.insert(0, big)
  const late = client('big')
  await waitFor(() => late.text.length === big.length, 'the late joiner to receive 5 MB', 60000)
  assert.equal(late.text.toString(), big)
  dispose(a)
  dispose(late)
})

test('rooms a, a/b/file.ts and a unicode name are isolated', async () => {
  const rooms = ['a', 'a/b/file.ts', 'ünïcødé/文件 ✓.ts']
  const writers = rooms.map((r) => client(r))
  const readers = rooms.map((r) => client(r))
  await Promise.all([...writers, ...readers].map((e) => synced(e)))
  writers.forEach((w, i) => w.text.insert(0, `content of ${rooms[i]}`))
  for (let i = 0; i < rooms.length; i++) {
    await waitFor(() => readers[i].text.toString() === `content of ${rooms[i]}`, `room ${rooms[i]} to sync`)
  }
  // Give stray cross-room traffic a moment to show up, then check nobody got another room's text.
  await new Promise((resolve) => setTimeout(resolve, 300))
  rooms.forEach((r, i) => assert.equal(readers[i].text.toString(), `content of ${r}`))
})

test('every frame holds exactly one protocol message', async () => {
  const room = 'frames'
  const raw = new WebSocket(`${gw.url}/${room}`, [token])
  const frames = []
  raw.binaryType = 'nodebuffer'
  raw.on('message', (data) => frames.push(new Uint8Array(data)))
  await new Promise((resolve, reject) => { raw.on('open', resolve); raw.on('error', reject) })
  // Ask for the state and the presence so that replies pile up together with relayed edits.
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 0)
  syncProtocol.writeSyncStep1(enc, new Y.Doc())
  raw.send(encoding.toUint8Array(enc))
  raw.send(Uint8Array.of(3))
  const a = client(room)
  const b = client(room)
  await Promise.all([synced(a), synced(b)])
  for (let i = 0; i < 200; i++) {
    a.text.insert(0, 'x')
    b.awareness.setLocalStateField('cursor', i)
    if (i % 50 === 0) raw.send(Uint8Array.of(3))
  }
  await waitFor(() => frames.length >= 250, 'at least 250 frames')
  await new Promise((resolve) => setTimeout(resolve, 300))
  raw.close()
  let updates = 0
  for (const f of frames) {
    const d = decoding.createDecoder(f)
    const type = decoding.readVarUint(d)
    if (type === 0) {
      const sub = decoding.readVarUint(d)
      assert.ok(sub <= 2, `sync sub-type ${sub}`)
      decoding.readVarUint8Array(d)
      if (sub === 2) updates++
    } else if (type === 1) {
      decoding.readVarUint8Array(d)
    } else {
      assert.fail(`unexpected message type ${type}`)
    }
    assert.equal(decoding.hasContent(d), false, 'a frame must not carry a second message')
  }
  assert.ok(updates >= 200, `expected every one of 200 edits as its own frame, saw ${updates}`)
})

test('a room name with a bare % (which the stock client sends unencoded) works', async () => {
  const a = client('reports/100%.md')
  const b = client('reports/100%.md')
  await Promise.all([synced(a), synced(b)])
  a.text.insert(0, 'all of it')
  await waitFor(() => b.text.toString() === 'all of it', 'b to see a\'s edit')
  assert.deepEqual(a.events.closes, [])
  // Percent-encoding the name reaches the same room.
  const encoded = client('reports/100%25.md')
  await waitFor(() => encoded.text.toString() === 'all of it', 'the encoded name to reach the same room')
})
