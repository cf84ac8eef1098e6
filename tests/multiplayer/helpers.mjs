// Shared helpers for the gateway's Node suite: a real Redis, real `appgear multiplayer serve`
// processes and stock y-websocket clients.
import { spawn, execFileSync } from 'node:child_process'
import * as encoding from 'lib0/encoding'
import net from 'node:net'
import crypto from 'node:crypto'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

// Every provider adds a process 'exit' listener; a suite opens many.
process.setMaxListeners(0)

export const SECRET = 'node-suite-secret-0123456789abcdef'

export const BIN = process.env.APPGEAR_BIN
if (!BIN) {
  throw new Error('APPGEAR_BIN is not set: run this suite through `cargo test --test multiplayer_node`, ' +
    'or set APPGEAR_BIN=target/debug/appgear')
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
export { sleep }

/** Poll `cond` until it is truthy; fail with `what` after `timeout` ms. */
export async function waitFor (cond, what, timeout = 10000) {
  const start = Date.now()
  for (;;) {
    const v = await cond()
    if (v) return v
    if (Date.now() - start > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await sleep(20)
  }
}

export function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

let ownRedis = null
/** The Redis URL: APPGEAR_TEST_REDIS_URL, or a private redis-server for this test file. */
export async function redisUrl () {
  if (process.env.APPGEAR_TEST_REDIS_URL) return process.env.APPGEAR_TEST_REDIS_URL
  if (!ownRedis) ownRedis = await startRedis()
  return ownRedis.url
}

/** A private redis-server on a free port of 127.0.0.1 (for tests that stop Redis). */
export async function startRedis () {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const failed = new Promise((resolve, reject) => child.on('error', (e) =>
    reject(new Error(`cannot start redis-server (install it: apt-get install redis-server): ${e.message}`))))
  // Do not let Redis keep this test process alive; kill it when the process ends.
  child.unref()
  process.on('exit', () => child.kill('SIGKILL'))
  await Promise.race([failed, waitFor(() => tcpPing(port), 'redis-server to answer')])
  return { child, port, url: `redis://127.0.0.1:${port}/`, stop: () => child.kill('SIGKILL') }
}

function tcpPing (port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.on('connect', () => s.write('PING\r\n'))
    s.on('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')) })
    s.on('error', () => resolve(false))
  })
}

/** A workspace id no other test uses, so that Redis keys never collide. */
export function uniqueWorkspace (tag) {
  return `t-${tag}-${crypto.randomBytes(4).toString('hex')}`
}

/**
 * Start `appgear multiplayer serve` on a free port of 127.0.0.1.
 * Returns { url (ws base for WebsocketProvider), http, child, logs(), stop(signal), exited }.
 */
export async function startGateway ({ workspace, args = [], redis } = {}) {
  const r = redis ?? await redisUrl()
  const child = spawn(BIN, ['multiplayer', 'serve', '--listen', '127.0.0.1:0', '--workspace', workspace, '--redis', r, ...args], {
    env: { ...process.env, MULTIPLAYER_TOKEN_SECRET: SECRET, NO_COLOR: '1' },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let log = ''
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start in 20 s; log:\n${log}`)), 20000)
    child.stderr.on('data', (d) => {
      log += d.toString()
      const m = log.match(/listening on (\S+),/)
      if (m) { clearTimeout(timer); resolve(m[1]) }
    })
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`gateway exited with ${code} at start; log:\n${log}`)) })
  })
  process.on('exit', () => child.kill('SIGKILL'))
  return {
    addr,
    url: `ws://${addr}/multiplayer`,
    http: `http://${addr}`,
    child,
    exited,
    logs: () => log,
    async stop (signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    }
  }
}

/** Mint a token the way an operator does: `appgear multiplayer token`. */
export function mintToken (workspace, { readOnly = false, ttl = '1h', subject } = {}) {
  const args = ['multiplayer', 'token', '--workspace', workspace, '--ttl', ttl]
  if (readOnly) args.push('--read-only')
  if (subject) args.push('--subject', subject)
  return execFileSync(BIN, args, { env: { ...process.env, MULTIPLAYER_TOKEN_SECRET: SECRET } }).toString().trim()
}

/** Mint a token in JavaScript from the documented format (checks the format, and makes expired ones). */
export function mintTokenJs (claims, secret = SECRET) {
  const b64 = (b) => Buffer.from(b).toString('base64url')
  const signed = 'mp1.' + b64(JSON.stringify(claims))
  const sig = crypto.createHmac('sha256', secret).update(signed).digest()
  return `${signed}.${b64(sig)}`
}

/** A stock y-websocket client. The token travels as the WebSocket subprotocol unless `viaQuery`. */
export function editor (gw, room, token, { viaQuery = false, connect = true, doc = new Y.Doc() } = {}) {
  const opts = {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    connect,
    maxBackoffTime: 500
  }
  if (viaQuery) opts.params = { token }
  else opts.protocols = [token]
  const provider = new WebsocketProvider(gw.url, room, doc, opts)
  const events = { closes: [], statuses: [] }
  provider.on('connection-close', (ev) => events.closes.push(ev ? { code: ev.code, reason: ev.reason } : null))
  provider.on('status', (ev) => events.statuses.push(ev.status))
  return { doc, provider, text: doc.getText('t'), events, awareness: provider.awareness }
}

/** Resolve when the provider has synced with the server. */
export function synced (e, timeout = 10000) {
  return waitFor(() => e.provider.synced, 'the client to sync', timeout)
}

/** Close a client for good: the provider, then the document (which stops its awareness timer). */
export function dispose (e) {
  e.provider.destroy()
  e.doc.destroy()
}

/** Drop the connection the way a crashed laptop does: no close frame, no goodbye, no reconnect. */
export function crash (e) {
  e.provider.shouldConnect = false
  if (e.provider.ws) e.provider.ws.terminate()
  e.provider.awareness.off('update', e.provider._awarenessUpdateHandler)
  e.provider.doc.off('update', e.provider._updateHandler)
  e.provider.destroy()
  e.doc.destroy()
}

export async function metrics (gw) {
  const res = await fetch(`${gw.http}/metrics`)
  return res.text()
}

/** The value of the first sample whose line starts with `prefix` (a name, or a name with labels). */
export function metricValue (text, prefix) {
  const line = text.split('\n').find((l) => !l.startsWith('#') && l.startsWith(prefix))
  return line ? Number(line.split(' ').pop()) : NaN
}

export { Y, WebSocket }

/** Send one command to a Redis at `url` (RESP over a plain socket) and resolve with its first reply line. */
export function redisCommand (url, ...args) {
  const { hostname, port } = new URL(url)
  const parts = [Buffer.from(`*${args.length}\r\n`)]
  for (const a of args) {
    const b = Buffer.isBuffer(a) || a instanceof Uint8Array ? Buffer.from(a) : Buffer.from(String(a))
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'))
  }
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), hostname)
    s.on('connect', () => s.write(Buffer.concat(parts)))
    s.on('data', (d) => { s.destroy(); resolve(d.toString().split('\r\n')[0]) })
    s.on('error', reject)
  })
}

/** An awareness message by hand: [messageAwareness, [count, (client, clock, state)*]]. */
export function awarenessFrame (entries) {
  const inner = encoding.createEncoder()
  encoding.writeVarUint(inner, entries.length)
  for (const [client, clock, state] of entries) {
    encoding.writeVarUint(inner, client)
    encoding.writeVarUint(inner, clock)
    encoding.writeVarString(inner, state)
  }
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 1)
  encoding.writeVarUint8Array(enc, encoding.toUint8Array(inner))
  return encoding.toUint8Array(enc)
}

/** A bare WebSocket to a room (no provider): { raw, opened, closed (resolves with the code) }. */
export function rawSocket (gw, room, token) {
  const raw = new WebSocket(`${gw.url}/${encodeURIComponent(room)}`, [token])
  const closed = new Promise((resolve) => raw.on('close', (code) => resolve(code)))
  const opened = new Promise((resolve, reject) => { raw.on('open', resolve); raw.on('error', reject) })
  return { raw, closed, opened }
}

/** The room's locks as the gateway's own presence entry shows them to `e`. */
export function gatewayEntry (e) {
  return [...e.awareness.getStates().values()].find((s) => s.appgear?.role === 'gateway')?.appgear
}
