/**
 * Hostile WebSocket clients against postern's server in its own process
 * (`bin/postern.js test/fixtures/websocket-app.ts:app`), watched from
 * outside through /proc: open descriptors and resident memory.
 *
 * - clients that never read while the app sends as fast as `send()` lets
 *   it: memory stays bounded (send backpressure), the stalled sockets are
 *   cut after the send timeout;
 * - clients that flood while the app never reads: the server stops reading
 *   (the read queue's bound), memory stays bounded;
 * - 1,000 open sockets: a plain HTTP client alongside is still answered
 *   quickly;
 * - SIGTERM with open sockets: every client sees 1001 and the process exits
 *   0 within the drain timeout.
 *
 * After each: descriptors back to the baseline, and a good client answered.
 */
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import net from 'node:net'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import WebSocket from 'ws'
import { countFds } from '../helpers/process.js'
import { ROOT, startPostern, sleep } from '../helpers/cli.js'
import { exchange } from '../helpers/raw.js'

const SEND_TIMEOUT = 1500
const DRAIN_TIMEOUT = 4000

interface Server {
  pid: number
  port: number
  baseline: number
  /** Sends SIGTERM and resolves how the process exited. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? -1 : Number(m[1])
}

async function get(port: number, path: string): Promise<{ status: number; ms: number }> {
  const started = performance.now()
  const { responses } = await exchange(port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
  return { status: responses[0]?.status ?? 0, ms: performance.now() - started }
}

/**
 * Starts the app in its own process: through `bin/postern.js` (as users
 * run it), or with `webSocket` options through test/fixtures/websocket-server.ts
 * (the command has no flags for them).
 */
async function start(t: Test, webSocket?: Record<string, number>): Promise<Server> {
  let pid: number
  let port: number
  let stop: Server['stop']
  if (webSocket === undefined) {
    const postern = startPostern(t, ['test/fixtures/websocket-app.ts:app', '--port', '0', '--send-timeout', String(SEND_TIMEOUT), '--drain-timeout', String(DRAIN_TIMEOUT)])
    port = Number((await postern.waitFor(/on http:\/\/127\.0\.0\.1:(\d+)/, { ms: 20_000 }))[1])
    pid = postern.pid
    stop = () => postern.stop()
  } else {
    const options = { sendTimeout: SEND_TIMEOUT, drainTimeout: DRAIN_TIMEOUT, webSocket }
    const child = spawn(process.execPath, ['--import=tsx', 'test/fixtures/websocket-server.ts', JSON.stringify(options)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await exit
      }
    })
    let out = ''
    child.stdout.setEncoding('utf8')
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not start: ${out}`)), 20_000)
      child.stdout.on('data', (d: string) => {
        out += d
        const m = /on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
        if (m !== null) {
          clearTimeout(timer)
          resolve(Number(m[1]))
        }
      })
    })
    pid = child.pid!
    stop = () => {
      child.kill('SIGTERM')
      return exit
    }
  }
  // Warm up (one request and one WebSocket), then take the descriptor count once it holds still.
  await get(port, '/hello')
  const warm = new WebSocket(`ws://127.0.0.1:${port}/echo`)
  await once(warm, 'open')
  warm.close()
  await once(warm, 'close')
  let last = countFds(pid)
  for (let steady = 0, waited = 0; steady < 200 && waited < 3000; waited += 25) {
    await sleep(25)
    const n = countFds(pid)
    steady = n === last ? steady + 25 : 0
    last = n
  }
  return { pid, port, baseline: last, stop }
}

/** Asserts the descriptors come back to the baseline and a good client is answered. */
async function recovered(t: Test, s: Server, ms = 5000): Promise<void> {
  const until = Date.now() + ms
  let fds = countFds(s.pid)
  while (fds > s.baseline && Date.now() < until) {
    await sleep(25)
    fds = countFds(s.pid)
  }
  t.ok(fds <= s.baseline, `descriptors back to the baseline: ${fds} open, baseline ${s.baseline}`)
  t.equal((await get(s.port, '/hello')).status, 200, 'a good client is answered')
  const echo = new WebSocket(`ws://127.0.0.1:${s.port}/echo`)
  await once(echo, 'open')
  echo.send('still here')
  t.equal(((await once(echo, 'message')) as [Buffer])[0].toString(), 'still here', 'a good WebSocket client is served')
  echo.close()
  await once(echo, 'close')
}

const HANDSHAKE = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`

/** Opens raw sockets that complete the handshake to `path`, then read only as the test says. */
async function rawSockets(port: number, path: string, n: number, batch = 100): Promise<net.Socket[]> {
  const sockets: net.Socket[] = []
  for (let i = 0; i < n; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, async () => {
        const socket = net.connect(port, '127.0.0.1')
        socket.on('error', () => {})
        sockets.push(socket)
        await once(socket, 'connect')
        socket.write(HANDSHAKE(path))
        let head = ''
        await new Promise<void>((resolve, reject) => {
          const onData = (d: Buffer) => {
            head += d.toString('latin1')
            if (head.includes('\r\n\r\n')) {
              socket.off('data', onData)
              socket.pause()
              if (head.startsWith('HTTP/1.1 101 ')) resolve()
              else reject(new Error(`no 101: ${head.slice(0, 40)}`))
            }
          }
          socket.on('data', onData)
        })
      }),
    )
  }
  return sockets
}

t.test('clients that never read while the app sends: memory bounded, cut after the send timeout', async (t) => {
  const s = await start(t)
  const before = rssKb(s.pid)
  const sockets = await rawSockets(s.port, '/firehose', 20)
  await sleep(800)
  const during = rssKb(s.pid)
  t.ok(during - before < 64 * 1024, `20 firehoses into clients that never read: RSS grew ${during - before} KiB (bounded by send backpressure)`)
  const http = await get(s.port, '/hello')
  t.equal(http.status, 200, 'a plain request is answered meanwhile')
  t.ok(http.ms < 1000, `in ${Math.round(http.ms)} ms`)
  await recovered(t, s, SEND_TIMEOUT * 2 + 3000)
  for (const socket of sockets) socket.destroy()
  t.ok(rssKb(s.pid) - before < 64 * 1024, 'memory stayed bounded')
})

t.test('clients that flood while the app never reads: the server stops reading, memory bounded; gone clients are found by the idle ping', async (t) => {
  const s = await start(t, { idleTimeout: 300 })
  const before = rssKb(s.pid)
  const block = Buffer.alloc(64 * 1024, 'x')
  const clients = await Promise.all(
    Array.from({ length: 10 }, async () => {
      const client = new WebSocket(`ws://127.0.0.1:${s.port}/hold`)
      client.on('error', () => {})
      await once(client, 'open')
      return client
    }),
  )
  // Each client keeps up to 8 MiB in flight: what the server does not read piles up on the client's side.
  const until = Date.now() + 1000
  while (Date.now() < until) {
    for (const client of clients) while (client.bufferedAmount < 8 * 1024 * 1024) client.send(block)
    await sleep(20)
  }
  const during = rssKb(s.pid)
  t.ok(during - before < 64 * 1024, `10 clients flooding ${10 * 8} MiB at an app that never reads: RSS grew ${during - before} KiB`)
  const unsent = clients.map((c) => c.bufferedAmount)
  t.ok(
    unsent.every((n) => n > 4 * 1024 * 1024),
    'the server stopped reading: each client still holds most of its flood',
  )
  t.ok(
    clients.every((c) => c.readyState === WebSocket.OPEN),
    'paused, not closed',
  )
  for (const client of clients) client.terminate()
  await recovered(t, s)
})

t.test('1,000 open sockets: a plain HTTP client alongside is still answered quickly', async (t) => {
  const s = await start(t)
  const quiet: number[] = []
  for (let i = 0; i < 10; i++) quiet.push((await get(s.port, '/hello')).ms)
  const sockets = await rawSockets(s.port, '/hold', 1000)
  t.ok(countFds(s.pid) >= s.baseline + 1000, 'the server holds the 1,000 sockets')
  const loaded: number[] = []
  for (let i = 0; i < 20; i++) {
    const r = await get(s.port, '/hello')
    t.equal(r.status, 200)
    loaded.push(r.ms)
  }
  loaded.sort((a, b) => a - b)
  const median = loaded[10]!
  t.ok(median < 50, `median latency ${median.toFixed(1)} ms with 1,000 sockets open (quiet: ${quiet.map((m) => m.toFixed(1)).join(', ')})`)
  t.ok(loaded.at(-1)! < 500, `slowest ${loaded.at(-1)!.toFixed(1)} ms`)
  for (const socket of sockets) socket.destroy()
  await recovered(t, s)
})

t.test('SIGTERM with open sockets: each client sees 1001, the process exits 0 within the drain timeout', async (t) => {
  const s = await start(t)
  const clients = await Promise.all(
    Array.from({ length: 5 }, async () => {
      const client = new WebSocket(`ws://127.0.0.1:${s.port}/echo`)
      client.on('error', () => {})
      await once(client, 'open')
      return client
    }),
  )
  const closes = clients.map((c) => new Promise<[number, string]>((resolve) => c.once('close', (code, reason) => resolve([code, reason.toString()]))))
  const started = Date.now()
  const exit = await s.stop()
  const took = Date.now() - started
  t.same(await Promise.all(closes), Array(5).fill([1001, 'server shutting down']))
  t.same(exit, { code: 0, signal: null }, 'exits 0')
  t.ok(took < DRAIN_TIMEOUT, `within the drain timeout: ${took} ms`)
})

t.test('SIGTERM with a client that never answers the close: cut at the drain deadline, exit 1', async (t) => {
  const s = await start(t)
  const [mute] = await rawSockets(s.port, '/hold', 1)
  const started = Date.now()
  const exit = await s.stop()
  const took = Date.now() - started
  t.same(exit, { code: 1, signal: null }, 'exits 1: a socket was cut at the deadline')
  t.ok(took < DRAIN_TIMEOUT + 2000, `within the drain deadline: ${took} ms`)
  mute!.destroy()
})
