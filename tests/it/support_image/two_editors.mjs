// Two stock y-websocket clients on one room of a gateway: the first writes, the second must see
// it. Prints `synced: <text>` and exits 0, or says what did not happen and exits 1.
// Usage: node two_editors.mjs WS_BASE_URL ROOM TOKEN   (NODE_PATH=tests/multiplayer/node_modules)
import { createRequire } from 'node:module'
import path from 'node:path'

// ES modules ignore NODE_PATH: resolve the packages from it explicitly.
const base = (process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean)[0]
if (!base) {
  console.error('NODE_PATH must name tests/multiplayer/node_modules')
  process.exit(2)
}
const require = createRequire(path.join(base, 'noop.js'))
const WebSocket = require('ws')
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')

const [url, room, token] = process.argv.slice(2)
if (!url || !room || !token) {
  console.error('usage: node two_editors.mjs WS_BASE_URL ROOM TOKEN')
  process.exit(2)
}

const opts = { WebSocketPolyfill: WebSocket, disableBc: true, maxBackoffTime: 500, protocols: [token] }
const docA = new Y.Doc()
const docB = new Y.Doc()
const a = new WebsocketProvider(url, room, docA, opts)
const b = new WebsocketProvider(url, room, docB, opts)
const text = `written in the suite image at ${Date.now()}`

const timer = setTimeout(() => {
  console.error(`timed out: a synced=${a.synced} b synced=${b.synced}, b sees ${JSON.stringify(docB.getText('t').toString())}`)
  process.exit(1)
}, 20000)

const synced = (p) => new Promise((resolve) => p.synced ? resolve() : p.once('sync', (s) => s && resolve()))
await Promise.all([synced(a), synced(b)])
docA.getText('t').insert(0, text)
await new Promise((resolve) => {
  const check = () => { if (docB.getText('t').toString() === text) resolve() }
  docB.on('update', check)
  check()
})
clearTimeout(timer)
console.log(`synced: ${docB.getText('t').toString()}`)
a.destroy()
b.destroy()
process.exit(0)
