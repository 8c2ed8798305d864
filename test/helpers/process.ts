/**
 * Runs test/fixtures/hostile-server.ts in its own process and watches it from
 * outside, as an operator would: open file descriptors (`/proc/PID/fd`),
 * resident memory (`/proc/PID/status`), whether it is alive, and its exit code
 * when stopped. An attack that leaks sockets, grows memory or crashes the
 * server shows up in these figures, not in the test runner's own process.
 *
 * Linux only (it reads /proc). Every wait is bounded; a process still running
 * when its test ends is killed.
 */
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { HostileConfig } from '../fixtures/hostile-server.js'
import { exchange, type ExchangeOptions, type RawResponse, type ReadResult } from './raw.js'
import { sleep, type Teardown } from './server.js'

export type { HostileConfig }

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const FIXTURE = join(ROOT, 'test', 'fixtures', 'hostile-server.ts')

/** How the process ended. */
export interface Exit {
  /** The exit code; null when a signal ended it. */
  code: number | null
  signal: NodeJS.Signals | null
  /** Milliseconds from the stop signal to the exit (0 when it had already exited). */
  ms: number
  /** It did not exit within the stop timeout and was killed with SIGKILL. */
  killed: boolean
}

/** What the app counted, from `GET /stats`. */
export interface AppStats {
  started: number
  returned: number
  closed: number
}

export interface ServerProcess {
  pid: number
  port: number
  tls: boolean
  /** Open file descriptors once warmed up (one request served and its socket released). */
  baseline: number
  /** Open file descriptors now (-1 once the process is gone). */
  fds(): number
  /** Resident set size now, in KiB (VmRSS). */
  rssKb(): number
  /** The highest resident set size so far, in KiB (VmHWM): catches a peak between two samples. */
  peakRssKb(): number
  /** Polls until at most `baseline` descriptors are open or `ms` pass; resolves with the last count (-1: the process is gone). */
  waitFds(baseline: number, ms: number): Promise<number>
  /** Polls until at least `count` descriptors are open (an attack's sockets accepted) or `ms` pass; resolves with the last count. */
  waitFdsAtLeast(count: number, ms: number): Promise<number>
  /** Whether the process is still running. */
  readonly alive: boolean
  /** Resolves when the process exits by itself. */
  readonly exited: Promise<Exit>
  /** Sends `signal` (default SIGTERM) and waits up to `timeout` ms for the exit, then kills it. */
  stop(signal?: NodeJS.Signals, timeout?: number): Promise<Exit>
  /** What the process wrote to standard error so far (the last 64 KiB). */
  readonly stderr: string
  /** One exchange on a new connection (TLS when the server is). */
  exchange(data: string | Buffer, options?: ExchangeOptions): Promise<ReadResult>
  /** `GET path` on a new connection; the response, or undefined when none came. */
  get(path: string): Promise<RawResponse | undefined>
  /** The app's counters. */
  stats(): Promise<AppStats>
  /** The server's `process.memoryUsage()` right after a full garbage collection: what it keeps. */
  memory(): Promise<NodeJS.MemoryUsage>
}

/** Makes a self-signed certificate for localhost with openssl; null when openssl is missing. The files live until the process exits. */
export function makeCert(): { key: string; cert: string } | null {
  const dir = mkdtempSync(join(tmpdir(), 'postern-hostile-tls-'))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  const key = join(dir, 'key.pem')
  const cert = join(dir, 'cert.pem')
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' })
    return { key, cert }
  } catch {
    return null
  }
}

/** Counts the open file descriptors of `pid`; -1 when it is gone. */
export function countFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return -1
  }
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : -1
  } catch {
    return -1
  }
}

/**
 * Starts the hostile-test server with `config` and waits until it listens and
 * has served one request (so lazily opened descriptors are in the baseline).
 * It is killed when the test ends, if still running.
 */
export async function startServer(t: Teardown, config: HostileConfig = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--expose-gc', '--import=tsx', FIXTURE, JSON.stringify(config)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  const started = Date.now()
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d: string) => {
    stderr = (stderr + d).slice(-64 * 1024)
  })
  let exit: Exit | null = null
  let stopAt = 0
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal, ms: stopAt === 0 ? 0 : Date.now() - stopAt, killed: false }
      resolve(exit)
    })
  })
  t.teardown(async () => {
    if (exit === null) {
      child.kill('SIGKILL')
      await exited
    }
  })

  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`hostile server did not start within 15 s; stderr: ${stderr}`)), 15_000)
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (d: string) => {
      out += d
      const line = out.split('\n')[0]
      if (out.includes('\n') && line !== undefined) {
        clearTimeout(timer)
        resolve((JSON.parse(line) as { port: number }).port)
      }
    })
    void exited.then((e) => {
      clearTimeout(timer)
      reject(new Error(`hostile server exited (${e.code ?? e.signal}) before listening; stderr: ${stderr}`))
    })
  })
  const pid = child.pid!
  const useTls = config.tls !== undefined

  // A process that exited (or is a zombie, with no descriptors left) counts -1: never "back to baseline".
  const fds = () => {
    const n = exit === null ? countFds(pid) : -1
    return n === 0 ? -1 : n
  }
  const waitFds = async (baseline: number, ms: number) => {
    const until = Date.now() + ms
    for (;;) {
      const n = fds()
      if (n <= baseline || Date.now() >= until) return n
      await sleep(20)
    }
  }
  const waitFdsAtLeast = async (count: number, ms: number) => {
    const until = Date.now() + ms
    for (;;) {
      const n = fds()
      if (n >= count || n < 0 || Date.now() >= until) return n
      await sleep(20)
    }
  }
  const doExchange = (data: string | Buffer, options: ExchangeOptions = {}) => exchange(port, data, { tls: useTls, ...options })
  const get = async (path: string) => (await doExchange(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)).responses[0]

  // Warm up: serve one request, then wait until the descriptor count holds still.
  const warm = await get('/hello')
  if (warm?.status !== 200) throw new Error(`hostile server did not answer its warm-up request; stderr: ${stderr}`)
  let last = fds()
  for (let steady = 0, waited = 0; steady < 200 && waited < 3000; waited += 25) {
    await sleep(25)
    const n = fds()
    steady = n === last ? steady + 25 : 0
    last = n
  }
  if (process.env.POSTERN_HOSTILE_VERBOSE) process.stderr.write(`hostile server pid ${pid} port ${port} ready in ${Date.now() - started} ms, ${last} fds\n`)

  return {
    pid,
    port,
    tls: useTls,
    baseline: last,
    fds,
    rssKb: () => statusKb(pid, 'VmRSS'),
    peakRssKb: () => statusKb(pid, 'VmHWM'),
    waitFds,
    waitFdsAtLeast,
    get alive() {
      return exit === null
    },
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeout = 5000) {
      if (exit !== null) return exit
      stopAt = Date.now()
      child.kill(signal)
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeout)))
      const outcome = await Promise.race([exited, late])
      clearTimeout(timer)
      if (outcome !== 'late') return outcome
      child.kill('SIGKILL')
      const killed = await exited
      return { ...killed, ms: Date.now() - stopAt, killed: true }
    },
    get stderr() {
      return stderr
    },
    exchange: doExchange,
    get,
    async stats() {
      const r = await get('/stats')
      if (r?.status !== 200) throw new Error(`GET /stats failed: ${r?.status}`)
      return JSON.parse(r.body.toString('utf8')) as AppStats
    },
    async memory() {
      const r = await get('/memory')
      if (r?.status !== 200) throw new Error(`GET /memory failed: ${r?.status}`)
      return JSON.parse(r.body.toString('utf8')) as NodeJS.MemoryUsage
    },
  }
}

/** The part of a tap test the assertions below use. */
export interface Assert {
  ok(value: unknown, message: string): unknown
}

/**
 * Asserts that the server's open descriptors come back to its baseline within
 * `ms`: every socket an attack opened was released. A process that is gone
 * fails this check (it holds no descriptors, but it does not serve either).
 */
export async function fdsBack(t: Assert, s: ServerProcess, ms: number): Promise<boolean> {
  const started = Date.now()
  const left = await s.waitFds(s.baseline, ms)
  const ok = left >= 0 && left <= s.baseline
  const what = left < 0 ? 'the process is gone' : `${left} open, baseline ${s.baseline}, after ${Date.now() - started} ms`
  t.ok(ok, `descriptors back to baseline within ${ms} ms: ${what}`)
  return ok
}

/** Plain or TLS sockets opened for an attack, destroyed with the test if still open. */
export interface Sockets {
  sockets: Array<net.Socket | tls.TLSSocket>
  /** How many the server closed (or reset) so far. */
  readonly closedCount: number
  /** Waits up to `ms` for every socket to be closed; resolves with how many are. */
  allClosed(ms: number): Promise<number>
}

/**
 * Opens `n` TCP connections to 127.0.0.1:`port` (TLS handshakes with
 * `tlsHandshake`), `batch` at a time, and resolves once all are connected.
 * Nothing is read unless the test reads: a socket left alone stops reading
 * once its small buffer is full, like a client that never reads.
 */
export async function openSockets(t: Teardown, port: number, n: number, options: { tlsHandshake?: boolean; batch?: number } = {}): Promise<Sockets> {
  const sockets: Array<net.Socket | tls.TLSSocket> = []
  let closed = 0
  t.teardown(() => {
    for (const s of sockets) s.destroy()
  })
  const batch = options.batch ?? 50
  for (let i = 0; i < n; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, () => {
        return new Promise<void>((resolve, reject) => {
          const s =
            options.tlsHandshake === true ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' }) : net.connect({ port, host: '127.0.0.1' })
          sockets.push(s)
          s.on('error', () => {})
          s.once('close', () => closed++)
          s.once(options.tlsHandshake === true ? 'secureConnect' : 'connect', () => resolve())
          s.once('close', () => reject(new Error('closed before connecting')))
        })
      }),
    )
  }
  return {
    sockets,
    get closedCount() {
      return closed
    },
    async allClosed(ms: number) {
      const until = Date.now() + ms
      while (closed < sockets.length && Date.now() < until) await sleep(20)
      return closed
    },
  }
}
