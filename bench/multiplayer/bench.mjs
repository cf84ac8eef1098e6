// Side-by-side benchmark of the gateway, @y/websocket-server and Hocuspocus: one client harness
// (`ws` + y-protocols frames) for all three. Run through bench/multiplayer/run.sh, which installs
// the pinned peers into a scratch folder, copies this file there and sets APPGEAR_BIN.
//
// node bench.mjs [--quick] [--runs N] [--only idle,fanout,throughput,cold] [--servers a,b]
//
// Servers: appgear (APPGEAR_BIN), appgear-before (APPGEAR_BEFORE_BIN: another build, say the
// last commit, measured in the same run), y-websocket-server, hocuspocus.
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

const argv = process.argv.slice(2)
const flag = (name) => argv.includes(name)
const opt = (name, dflt) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : dflt
}
const QUICK = flag('--quick')
const RUNS = Number(opt('--runs', QUICK ? 1 : 3))
const ONLY = new Set(opt('--only', 'idle,fanout,throughput,cold').split(','))
const SERVERS = opt('--servers', process.env.APPGEAR_BEFORE_BIN
  ? 'appgear-before,appgear,y-websocket-server,hocuspocus'
  : 'appgear,y-websocket-server,hocuspocus').split(',')
const isGateway = (kind) => kind.startsWith('appgear')
const binOf = (kind) => kind === 'appgear-before' ? process.env.APPGEAR_BEFORE_BIN : BIN
const BIN = process.env.APPGEAR_BIN
const HERE = new URL('.', import.meta.url).pathname
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim())
const SECRET = 'bench-secret-0123456789abcdef0123'
// Every phase has a bound: a server that stops answering fails the measurement, not the run.
const PHASE_TIMEOUT = 180_000

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const loadavg = () => os.loadavg().map((l) => l.toFixed(2)).join(' ')

function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

async function waitFor (cond, what, timeout = 20000) {
  const start = Date.now()
  for (;;) {
    if (await cond()) return
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

function tcpOpen (port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.on('connect', () => { s.destroy(); resolve(true) })
    s.on('error', () => resolve(false))
  })
}

/** Resident memory of a process, in KiB. */
function rssKiB (pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)
  return m ? Number(m[1]) : NaN
}

/** CPU seconds (user + system) a process has used. */
function cpuSeconds (pid) {
  if (!pid) return 0
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / TICK
}

const children = new Set()
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130))

function track (child) {
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

async function stopChild (child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return
  const done = new Promise((resolve) => child.on('exit', resolve))
  child.kill(signal)
  const t = setTimeout(() => child.kill('SIGKILL'), 5000)
  await done
  clearTimeout(t)
}

/** How many times Redis ran `cmd` (INFO commandstats). */
function redisCalls (port, cmd) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    let buf = ''
    s.on('connect', () => s.write('INFO commandstats\r\n'))
    s.on('data', (d) => {
      buf += d.toString()
      const head = buf.match(/^\$(\d+)\r\n/)
      if (head && Buffer.byteLength(buf) >= head[0].length + Number(head[1])) {
        s.destroy()
        const m = buf.match(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`))
        resolve(m ? Number(m[1]) : 0)
      }
    })
    s.on('error', () => resolve(NaN))
  })
}

async function startRedis () {
  const port = await freePort()
  const child = track(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }))
  await waitFor(() => tcpOpen(port), 'redis-server')
  return { child, port, url: `redis://127.0.0.1:${port}/` }
}

// BENCH_WRAP runs the gateway under a profiler, e.g.
// BENCH_WRAP='valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p' (its numbers are then
// the profiler's, not the gateway's).
const WRAP = (process.env.BENCH_WRAP ?? '').split(' ').filter(Boolean)

async function startGatewayProcess (redis, bin) {
  const [cmd, ...pre] = WRAP.length ? [...WRAP, bin] : [bin]
  const child = track(spawn(cmd, [...pre, 'multiplayer', 'serve', '--listen', '127.0.0.1:0', '--workspace', 'bench',
    '--redis', redis.url, '--max-connections', '20000', '--max-pending-connections', '20000'], {
    env: { ...process.env, MULTIPLAYER_TOKEN_SECRET: SECRET, NO_COLOR: '1' },
    stdio: ['ignore', 'ignore', 'pipe']
  }))
  let log = ''
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start; log:\n${log}`)), 20000)
    child.stderr.on('data', (d) => {
      log += d.toString()
      if (log.length > 100_000) log = log.slice(-50_000)
      const m = log.match(/listening on (\S+),/)
      if (m) { clearTimeout(timer); resolve(m[1]) }
    })
  })
  return { child, addr }
}

/** Start one server; `{ pid, redisPid, url(room), proto, stop(), restart() }`. */
async function startServer (kind) {
  if (isGateway(kind)) {
    const bin = binOf(kind)
    const redis = await startRedis()
    let gw = await startGatewayProcess(redis, bin)
    const token = execFileSync(bin, ['multiplayer', 'token', '--workspace', 'bench', '--ttl', '2h'],
      { env: { ...process.env, MULTIPLAYER_TOKEN_SECRET: SECRET } }).toString().trim()
    const s = {
      kind,
      proto: 'y',
      get pid () { return gw.child.pid },
      redisPid: redis.child.pid,
      redisPort: redis.port,
      url: (room) => `ws://${gw.addr}/multiplayer/${room}?token=${token}`,
      async stop () { await stopChild(gw.child); await stopChild(redis.child, 'SIGKILL') },
      // A new gateway process on the same Redis: documents come from storage.
      async restart () { await stopChild(gw.child); gw = await startGatewayProcess(redis, bin) }
    }
    return s
  }
  const port = await freePort()
  const script = kind === 'hocuspocus' ? 'hocuspocus.mjs' : 'y-websocket-server.mjs'
  const child = track(spawn(process.execPath, [`${HERE}${script}`], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'inherit']
  }))
  await waitFor(() => tcpOpen(port), `${kind} to listen`)
  return {
    kind,
    proto: kind === 'hocuspocus' ? 'hp' : 'y',
    pid: child.pid,
    redisPid: null,
    url: (room) => kind === 'hocuspocus' ? `ws://127.0.0.1:${port}/` : `ws://127.0.0.1:${port}/${room}`,
    stop: () => stopChild(child)
  }
}

// ---- the client: y-websocket frames, with Hocuspocus's document-name prefix where needed ----

function frame (proto, room, write) {
  const e = encoding.createEncoder()
  if (proto === 'hp') encoding.writeVarString(e, room)
  write(e)
  return encoding.toUint8Array(e)
}

const syncStep1 = (proto, room, sv) => frame(proto, room, (e) => {
  encoding.writeVarUint(e, 0); encoding.writeVarUint(e, 0); encoding.writeVarUint8Array(e, sv)
})
const syncUpdate = (proto, room, u) => frame(proto, room, (e) => {
  encoding.writeVarUint(e, 0); encoding.writeVarUint(e, 2); encoding.writeVarUint8Array(e, u)
})
const hpAuth = (room) => frame('hp', room, (e) => {
  encoding.writeVarUint(e, 2); encoding.writeVarUint(e, 0); encoding.writeVarString(e, '')
})
const EMPTY_SV = (() => { const e = encoding.createEncoder(); encoding.writeVarUint(e, 0); return encoding.toUint8Array(e) })()

/**
 * One connection to `room`. Resolves once the server answered our SyncStep1 with its SyncStep2.
 * `onUpdate(writerClientId, bytes)` is called for every document update the server relays.
 */
function connect (server, room, { onUpdate = null } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const ws = new WebSocket(server.url(room), { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 })
    ws.binaryType = 'nodebuffer'
    const c = { ws, room, proto: server.proto, synced: false, step2Ms: NaN, step2Bytes: 0, updates: 0, onUpdate }
    c.send = (u) => ws.send(syncUpdate(c.proto, room, u))
    c.close = () => { try { ws.terminate() } catch {} }
    const timer = setTimeout(() => { c.close(); reject(new Error(`no sync from ${server.kind} for ${room}`)) }, 60000)
    ws.on('open', () => {
      if (c.proto === 'hp') ws.send(hpAuth(room))
      ws.send(syncStep1(c.proto, room, EMPTY_SV))
    })
    ws.on('error', (e) => { clearTimeout(timer); reject(e) })
    ws.on('message', (data) => {
      const d = decoding.createDecoder(data)
      if (c.proto === 'hp') decoding.readVarString(d)
      const type = decoding.readVarUint(d)
      if (type !== 0 && type !== 4) return
      const sub = decoding.readVarUint(d)
      if (sub === 1 && !c.synced) {
        c.synced = true
        c.step2Ms = performance.now() - started
        c.step2Bytes = data.length
        clearTimeout(timer)
        resolve(c)
      } else if (sub === 2) {
        c.updates++
        const onUpdate = c.onUpdate
        if (onUpdate) {
          const u = decoding.readVarUint8Array(d)
          const ud = decoding.createDecoder(u)
          const clients = decoding.readVarUint(ud)
          let writer = -1
          if (clients > 0) { decoding.readVarUint(ud); writer = decoding.readVarUint(ud) }
          onUpdate(writer, u)
        }
      }
    })
  })
}

async function connectMany (server, rooms, n, opts = {}, batch = 100) {
  const out = []
  for (let i = 0; i < n; i += batch) {
    const part = []
    for (let j = i; j < Math.min(n, i + batch); j++) part.push(connect(server, rooms(j), opts))
    out.push(...await Promise.all(part))
  }
  return out
}

/** A writer: its own document, so each update depends only on the writer's earlier ones. */
function writer (clientID) {
  const doc = new Y.Doc()
  doc.clientID = clientID
  const text = doc.getText('t')
  let last = null
  doc.on('update', (u) => { last = u })
  return {
    doc,
    append (s) { text.insert(text.length, s); return last },
    insertRandom (s) { text.insert(Math.floor(Math.random() * (text.length + 1)), s); return last }
  }
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN
}
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] : NaN
}

// ---- measurements: each gets a fresh server ----

async function idle (kind, conns, rooms) {
  const s = await startServer(kind)
  try {
    // Warm up the server's code paths with one room, then settle.
    const warm = await connect(s, 'warm'); warm.close()
    await sleep(1000)
    const before = rssKiB(s.pid)
    const cs = await connectMany(s, (i) => `idle-${i % rooms}`, conns)
    await sleep(3000)
    const after = rssKiB(s.pid)
    for (const c of cs) c.close()
    return { rssBeforeMiB: before / 1024, perConnKiB: (after - before) / conns }
  } finally { await s.stop() }
}

async function fanout (kind, receivers, rounds) {
  const s = await startServer(kind)
  try {
    const room = 'fanout'
    const lat = []
    // Per round: the first and the last arrival. The first is the server's relay plus one
    // delivery; the spread (last − first) is mostly the harness taking the messages one after
    // another, which no server can shorten.
    const first = []
    const spread = []
    let sentAt = 0
    let roundMin = Infinity
    let roundMax = 0
    const got = { n: 0 }
    await connectMany(s, () => room, receivers, {
      onUpdate: () => {
        const t = performance.now() - sentAt
        lat.push(t); got.n++
        roundMin = Math.min(roundMin, t); roundMax = Math.max(roundMax, t)
      }
    })
    const w = writer(1000)
    const wc = await connect(s, room)
    await sleep(500)
    for (let i = 0; i < rounds; i++) {
      const u = w.append('x')
      const want = (i + 1) * receivers
      roundMin = Infinity; roundMax = 0
      sentAt = performance.now()
      wc.send(u)
      await waitFor(() => got.n >= want, `fan-out round ${i}`, 10000)
      first.push(roundMin); spread.push(roundMax - roundMin)
      await sleep(10)
    }
    return { p50: pct(lat, 0.5), p99: pct(lat, 0.99), max: Math.max(...lat), first: pct(first, 0.5), spread: pct(spread, 0.5) }
  } finally { await s.stop() }
}

async function throughput (kind, mode, writers, receivers, perWriter, window) {
  const s = await startServer(kind)
  try {
    const room = `tp-${mode}`
    const total = writers * perWriter
    const acked = new Map()
    let receivedByAll = 0
    let pump = () => {}
    // The first receiver's acknowledgements clock the writers (each keeps `window` in flight).
    const rcv = await connectMany(s, () => room, receivers, {})
    rcv[0].onUpdate = (w) => { acked.set(w, (acked.get(w) ?? 0) + 1); pump() }
    // Writers do not apply what they receive: each one edits its own text.
    const ws = []
    for (let i = 0; i < writers; i++) ws.push({ w: writer(2000 + i), c: await connect(s, room), sent: 0 })
    await sleep(500)
    const cpu0 = cpuSeconds(s.pid); const rcpu0 = cpuSeconds(s.redisPid)
    const t0 = performance.now()
    pump = () => {
      for (const x of ws) {
        while (x.sent < perWriter && x.sent - (acked.get(x.w.doc.clientID) ?? 0) < window) {
          const text = `w${x.sent} `
          x.c.send(mode === 'append' ? x.w.append(text) : x.w.insertRandom(text))
          x.sent++
        }
      }
    }
    const ticker = setInterval(pump, 5)
    try {
      await waitFor(() => { pump(); receivedByAll = Math.min(...rcv.map((c) => c.updates)); return receivedByAll >= total },
        `${total} updates at every receiver`, PHASE_TIMEOUT)
    } finally { clearInterval(ticker) }
    const secs = (performance.now() - t0) / 1000
    const cpu = cpuSeconds(s.pid) - cpu0; const rcpu = s.redisPid ? cpuSeconds(s.redisPid) - rcpu0 : NaN
    // Every load of the room's log from storage: its first load, then one per resync.
    const reloads = s.redisPort ? await redisCalls(s.redisPort, 'lrange') - 1 : NaN
    return { ups: total / secs, cpuPerK: cpu / (total / 1000), withRedisPerK: (cpu + rcpu) / (total / 1000), reloads }
  } finally { await s.stop() }
}

async function cold (kind, mib, tries) {
  const s = await startServer(kind)
  try {
    const room = 'cold'
    const chunk = 64 * 1024
    const n = Math.round(mib * 1024 * 1024 / chunk)
    const watcher = await connect(s, room, { onUpdate: () => {} })
    const wc = await connect(s, room)
    const w = writer(3000)
    const body = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(chunk / 36)).slice(0, chunk)
    for (let i = 0; i < n; i++) wc.send(w.append(body))
    await waitFor(() => watcher.updates >= n, 'the document to be built', PHASE_TIMEOUT)
    const memory = []
    for (let i = 0; i < tries; i++) { const c = await connect(s, room); memory.push(c.step2Ms); c.close(); await sleep(200) }
    let storage = NaN
    if (s.restart) {
      watcher.close(); wc.close()
      const runs = []
      for (let i = 0; i < tries; i++) {
        await s.restart()
        const c = await connect(s, room); runs.push(c.step2Ms); c.close()
      }
      storage = median(runs)
    } else {
      watcher.close(); wc.close()
    }
    return { memory: median(memory), storage }
  } finally { await s.stop() }
}

// ---- the plan ----

const P = QUICK
  ? { idle: [[200, 50]], fanout: [[50, 10]], tp: { writers: 5, receivers: 3, perWriter: 100, window: 16 }, cold: { mib: 1, tries: 1 } }
  : { idle: [[1000, 500], [5000, 500]], fanout: [[100, 50], [500, 50]], tp: { writers: 10, receivers: 5, perWriter: 400, window: 16 }, cold: { mib: 5, tries: 3 } }

const results = {} // metric -> kind -> [values]
const put = (metric, kind, v) => { ((results[metric] ??= {})[kind] ??= []).push(v) }
const order = (run) => SERVERS.map((_, i) => SERVERS[(i + run) % SERVERS.length])

const load0 = loadavg()
const t0 = Date.now()
console.error(`load average at start: ${load0}; ${RUNS} run(s)${QUICK ? ', quick' : ''}`)
for (let run = 0; run < RUNS; run++) {
  for (const kind of order(run)) {
    const step = async (what, f) => {
      try { await f() } catch (e) { console.error(`${kind} ${what}: ${e.message}`) }
    }
    if (ONLY.has('idle')) {
      for (const [conns, rooms] of P.idle) {
        await step(`idle ${conns}`, async () => {
          const r = await idle(kind, conns, rooms)
          put(`idle KiB/connection, ${conns} conns in ${rooms} rooms`, kind, r.perConnKiB)
          put('RSS before any connection, MiB', kind, r.rssBeforeMiB)
        })
      }
    }
    if (ONLY.has('fanout')) {
      for (const [receivers, rounds] of P.fanout) {
        await step(`fanout ${receivers}`, async () => {
          const r = await fanout(kind, receivers, rounds)
          put(`fan-out p50 ms, ${receivers} receivers`, kind, r.p50)
          put(`fan-out p99 ms, ${receivers} receivers`, kind, r.p99)
          put(`fan-out max ms, ${receivers} receivers`, kind, r.max)
          put(`fan-out first arrival ms (median round), ${receivers} receivers`, kind, r.first)
          put(`fan-out spread last − first ms (median round), ${receivers} receivers`, kind, r.spread)
        })
      }
    }
    if (ONLY.has('throughput')) {
      const { writers, receivers, perWriter, window } = P.tp
      for (const mode of ['append', 'random']) {
        await step(`throughput ${mode}`, async () => {
          const r = await throughput(kind, mode, writers, receivers, perWriter, window)
          const label = mode === 'append' ? 'append-only' : 'random places'
          put(`updates/s, ${label} (${writers}w x ${receivers}r, ${window} in flight)`, kind, r.ups)
          put(`CPU s/1,000 updates, ${label}`, kind, r.cpuPerK)
          if (isGateway(kind)) {
            put(`CPU s/1,000 updates, ${label}, with its Redis`, kind, r.withRedisPerK)
            put(`room reloads from Redis (resyncs), ${label}`, kind, r.reloads)
          }
        })
      }
    }
    if (ONLY.has('cold')) {
      const { mib, tries } = P.cold
      await step('cold', async () => {
        const r = await cold(kind, mib, tries)
        put(`cold sync ${mib} MiB to SyncStep2 ms, from memory`, kind, r.memory)
        if (Number.isFinite(r.storage)) put(`cold sync ${mib} MiB to SyncStep2 ms, from storage`, kind, r.storage)
      })
    }
  }
}

const higherIsBetter = (m) => m.startsWith('updates/s')
const fmt = (v) => !Number.isFinite(v) ? '—' : Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3)
const gateways = SERVERS.filter(isGateway)
const head = ['metric', ...SERVERS, ...gateways.map((g) => `${g} / best peer`)]
const rows = []
for (const [metric, byKind] of Object.entries(results)) {
  const med = Object.fromEntries(SERVERS.map((k) => [k, median(byKind[k] ?? [])]))
  // A line measured for the gateways alone (with their Redis) compares with the peers' line
  // without " with its Redis".
  const peerLine = metric.endsWith('with its Redis') ? results[metric.replace(', with its Redis', '')] ?? {} : byKind
  const peers = SERVERS.filter((k) => !isGateway(k)).map((k) => median(peerLine[k] ?? [])).filter(Number.isFinite)
  const best = higherIsBetter(metric) ? Math.max(...peers) : Math.min(...peers)
  const ratios = gateways.map((g) => peers.length && Number.isFinite(med[g]) ? `${(med[g] / best).toFixed(2)}×` : '—')
  rows.push([metric, ...SERVERS.map((k) => fmt(med[k])), ...ratios])
}
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
const line = (r) => '| ' + r.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |'
console.log(`multiplayer benchmark: median of ${RUNS} run(s)${QUICK ? ' (quick)' : ''}, ${os.cpus().length} cores, node ${process.version}`)
console.log(`load average: ${load0} at start, ${loadavg()} at end; ${((Date.now() - t0) / 1000).toFixed(0)} s`)
console.log(line(head))
console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|')
for (const r of rows) console.log(line(r))
process.exit(0)
