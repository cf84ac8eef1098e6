// Advisory locks: HTTP API and editor clients (through their awareness state).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import { startGateway, mintToken, editor, synced, waitFor, uniqueWorkspace, sleep, crash, dispose, Y } from './helpers.mjs'

let gw, ws, token
const open = []
const client = (room) => { const e = editor(gw, room, token); open.push(e); return e }

before(async () => {
  ws = uniqueWorkspace('locks')
  gw = await startGateway({ workspace: ws, args: ['--lock-ttl', '2s'] })
  token = mintToken(ws, { subject: 'ci-bot' })
})

after(async () => {
  for (const e of open) dispose(e)
  await gw.stop()
})

async function call (method, params, t = token) {
  const q = new URLSearchParams(params).toString()
  const res = await fetch(`${gw.http}/multiplayer/locks?${q}`, { method, headers: { authorization: `Bearer ${t}` } })
  return { status: res.status, body: await res.json() }
}

/** A token per holder: an HTTP caller acts as `http:<its token's subject>`. */
const tokens = {}
const as = (subject) => (tokens[subject] ??= mintToken(ws, { subject }))

test('HTTP: granted, contended, released, then granted to the next with a higher fencing token', async () => {
  const room = 'http-room'
  const path = 'src/main.ts'
  const a = await call('POST', { room, path }, as('alice'))
  assert.equal(a.status, 200)
  assert.equal(a.body.granted, true)
  assert.equal(a.body.owner, 'http:alice')
  assert.ok(a.body.fencing >= 1)
  const renew = await call('POST', { room, path }, as('alice'))
  assert.equal(renew.status, 200, 'the holder renews')
  assert.equal(renew.body.fencing, a.body.fencing, 'renewal keeps the fencing token')
  const b = await call('POST', { room, path }, as('bob'))
  assert.equal(b.status, 409)
  assert.equal(b.body.granted, false)
  assert.equal(b.body.owner, 'http:alice')
  const list = await call('GET', { room })
  assert.deepEqual(list.body.locks.map((l) => [l.path, l.owner, l.fencing]), [[path, 'http:alice', a.body.fencing]])
  assert.equal((await call('DELETE', { room, path }, as('bob'))).status, 409, 'only the holder releases')
  assert.equal((await call('DELETE', { room, path }, as('alice'))).status, 200)
  const b2 = await call('POST', { room, path }, as('bob'))
  assert.equal(b2.status, 200)
  assert.ok(b2.body.fencing > a.body.fencing, 'fencing tokens only grow')
  // Naming yourself is allowed; the default token's subject is ci-bot.
  const c = await call('POST', { room, path: 'README.md', owner: 'ci-bot' })
  assert.equal(c.body.owner, 'http:ci-bot')
})

test('HTTP: a lease that is not renewed expires', async () => {
  const room = 'http-expiry'
  const first = await call('POST', { room, path: 'a.txt', ttl: '1s' }, as('sleepy'))
  assert.equal(first.status, 200)
  assert.equal((await call('POST', { room, path: 'a.txt' }, as('eager'))).status, 409)
  await sleep(1300)
  const again = await call('POST', { room, path: 'a.txt' }, as('eager'))
  assert.equal(again.status, 200)
  assert.ok(again.body.fencing > first.body.fencing)
  assert.deepEqual((await call('GET', { room })).body.locks.map((l) => l.owner), ['http:eager'])
})

test('HTTP: refusals', async () => {
  assert.equal((await call('POST', { room: 'r', path: 'p' }, 'mp1.bad.token')).status, 401)
  assert.equal((await call('POST', { room: 'r', path: 'p' }, mintToken(ws, { readOnly: true, subject: 'ro' }))).status, 403)
  assert.equal((await call('POST', { room: 'r' })).status, 400)
  assert.equal((await call('POST', { path: 'p' })).status, 400)
  assert.equal((await call('POST', { room: 'r', path: 'p', ttl: 'forever' })).status, 400)
})

test('HTTP: nobody can take or release a lock in another holder\'s name', async () => {
  const room = 'spoof'
  const mine = await call('POST', { room, path: 'x.md' }, as('owner-1'))
  assert.equal(mine.status, 200)
  // Another token claiming to be that holder, or an editor, is refused.
  assert.equal((await call('DELETE', { room, path: 'x.md', owner: 'http:owner-1' }, as('mallory'))).status, 403)
  assert.equal((await call('DELETE', { room, path: 'x.md', owner: 'owner-1' }, as('mallory'))).status, 403)
  assert.equal((await call('POST', { room, path: 'y.md', owner: 'yjs:42' }, as('mallory'))).status, 403)
  // A token without a subject names nobody and cannot change locks.
  assert.equal((await call('DELETE', { room, path: 'x.md' }, mintToken(ws))).status, 403)
  assert.deepEqual((await call('GET', { room })).body.locks.map((l) => [l.path, l.owner]), [['x.md', 'http:owner-1']])
  // An editor lock cannot be released over HTTP either.
  const ed = client(room)
  await synced(ed)
  ed.awareness.setLocalStateField('lockRequests', ['ed.md'])
  const edOwner = `yjs:${ed.doc.clientID}`
  await waitFor(async () => (await call('GET', { room })).body.locks.some((l) => l.owner === edOwner), 'the editor lock')
  assert.equal((await call('DELETE', { room, path: 'ed.md', owner: edOwner }, as('mallory'))).status, 403)
  assert.equal((await call('DELETE', { room, path: 'ed.md' }, as('mallory'))).status, 409)
})

test('awareness: another connection cannot take over or remove an editor\'s presence and locks', async () => {
  const room = 'takeover'
  const victim = client(room)
  const rogue = editor(gw, room, mintToken(ws, { readOnly: true }))
  open.push(rogue)
  const watcher = client(room)
  await Promise.all([synced(victim), synced(rogue), synced(watcher)])
  victim.awareness.setLocalState({ user: { name: 'victim' }, lockRequests: ['mine.md'] })
  const owner = `yjs:${victim.doc.clientID}`
  await waitFor(() => holder(watcher, 'mine.md') === owner, 'the victim to hold its lock')
  // The rogue sends the victim's client id with a higher clock: first a state, then a removal.
  const fake = new Y.Doc()
  const aw = new awarenessProtocol.Awareness(fake)
  const send = (state, clock) => {
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, 1)
    const inner = encoding.createEncoder()
    encoding.writeVarUint(inner, 1)
    encoding.writeVarUint(inner, victim.doc.clientID)
    encoding.writeVarUint(inner, clock)
    encoding.writeVarString(inner, JSON.stringify(state))
    encoding.writeVarUint8Array(enc, encoding.toUint8Array(inner))
    rogue.provider.ws.send(encoding.toUint8Array(enc))
  }
  aw.destroy()
  const clock = victim.awareness.meta.get(victim.doc.clientID).clock
  send({ user: { name: 'rogue' } }, clock + 100)
  send(null, clock + 200)
  await sleep(1500)
  assert.equal(watcher.awareness.getStates().get(victim.doc.clientID)?.user?.name, 'victim')
  assert.equal(holder(watcher, 'mine.md'), owner, 'the victim keeps its lock')
})
const locksSeenBy = (e) => [...e.awareness.getStates().values()].find((s) => s.appgear?.role === 'gateway')?.appgear.locks ?? []
const holder = (e, path) => locksSeenBy(e).find((l) => l.path === path)?.owner

test('editor clients: request through awareness, contended, released, expired after a crash', async () => {
  const room = 'editor-room'
  const path = 'src/app.ts'
  const a = client(room)
  const b = client(room)
  const watcher = client(room)
  await Promise.all([synced(a), synced(b), synced(watcher)])
  a.awareness.setLocalStateField('lockRequests', [path])
  const ownerA = `yjs:${a.doc.clientID}`
  const ownerB = `yjs:${b.doc.clientID}`
  await waitFor(() => holder(watcher, path) === ownerA, 'the watcher to see a holding the lock')
  const fencingA = locksSeenBy(watcher).find((l) => l.path === path).fencing
  // Contended: b asks too, a keeps it.
  b.awareness.setLocalStateField('lockRequests', [path])
  await sleep(1500) // longer than a renewal period (ttl/3)
  assert.equal(holder(watcher, path), ownerA)
  assert.equal((await call('POST', { room, path }, as('http-user'))).status, 409, 'HTTP sees the editor lock')
  // Released: a drops its request; b, still waiting, gets it.
  a.awareness.setLocalStateField('lockRequests', [])
  await waitFor(() => holder(watcher, path) === ownerB, 'b to get the released lock', 5000)
  const fencingB = locksSeenBy(watcher).find((l) => l.path === path).fencing
  assert.ok(fencingB > fencingA)
  // Expired: b crashes; its lease runs out (ttl 2s) and a waiting editor gets it.
  const c = client(room)
  await synced(c)
  c.awareness.setLocalStateField('lockRequests', [path])
  await sleep(300)
  assert.equal(holder(watcher, path), ownerB, 'b holds while connected')
  const crashedAt = Date.now()
  crash(b)
  const ownerC = `yjs:${c.doc.clientID}`
  await waitFor(() => holder(watcher, path) === ownerC, 'c to get the lock after b\'s lease ran out', 6000)
  const took = Date.now() - crashedAt
  assert.ok(took >= 1000, `the lock moved after ${took} ms, before the lease could run out`)
})

test('a read-only editor cannot take locks', async () => {
  const room = 'ro-locks'
  const ro = editor(gw, room, mintToken(ws, { readOnly: true }))
  open.push(ro)
  const watcher = client(room)
  await Promise.all([synced(ro), synced(watcher)])
  ro.awareness.setLocalStateField('lockRequests', ['x.ts'])
  await sleep(1500)
  assert.deepEqual(locksSeenBy(watcher), [])
})

test('editor clients: a clean disconnect releases the lock at once', async () => {
  const room = 'clean-leave'
  const a = client(room)
  const watcher = client(room)
  await Promise.all([synced(a), synced(watcher)])
  a.awareness.setLocalStateField('lockRequests', ['doc.md'])
  await waitFor(() => holder(watcher, 'doc.md') === `yjs:${a.doc.clientID}`, 'a to hold the lock')
  const leftAt = Date.now()
  a.provider.disconnect()
  await waitFor(() => holder(watcher, 'doc.md') === undefined, 'the lock to be released', 1500)
  assert.ok(Date.now() - leftAt < 1500, 'released before the lease (2 s) could run out')
})

test('a client that reconnects is seen again at once and keeps its lock', async () => {
  const room = 'reconnect'
  const a = client(room)
  const watcher = client(room)
  await Promise.all([synced(a), synced(watcher)])
  a.awareness.setLocalState({ user: { name: 'back-soon' }, lockRequests: ['keep.md'] })
  const ownerA = `yjs:${a.doc.clientID}`
  await waitFor(() => holder(watcher, 'keep.md') === ownerA, 'a to hold the lock')
  const fencing = locksSeenBy(watcher).find((l) => l.path === 'keep.md').fencing
  const seesA = () => watcher.awareness.getStates().get(a.doc.clientID)?.user?.name === 'back-soon'
  await waitFor(seesA, 'the watcher to see a')
  // The connection drops (a network blip); the stock client reconnects by itself.
  a.provider.ws.close()
  await waitFor(() => !seesA(), 'the watcher to see a gone', 2000)
  const goneAt = Date.now()
  await waitFor(seesA, 'the watcher to see a again', 2000)
  assert.ok(Date.now() - goneAt < 2000)
  // Longer than the lease (2 s): a's lock was renewed, not lost and re-granted.
  await sleep(3000)
  assert.equal(holder(watcher, 'keep.md'), ownerA)
  assert.equal(locksSeenBy(watcher).find((l) => l.path === 'keep.md').fencing, fencing)
  assert.ok(seesA(), 'still seen after its renewals')
})
