/**
 * The live part of the fuzzer: the same valid, mutated and arbitrary inputs
 * as the in-process properties, written over real connections to a real
 * postern server process (bench/fuzz-server.ts), split into reads at random
 * points, by a bounded number of concurrent runners.
 *
 * Every case predicts, from postern's own parser and environ builder run in
 * process, exactly what the server must answer: one echo per request it
 * reads, the parser's status for a fault, a close after a fault or a
 * request that ends the connection. How the client behaves varies:
 *
 * - `wait` (7 in 10): write, read every owed response, then half-close; the
 *   server may add a 400 for a request the FIN cut short, then must close;
 * - `fin` (2 in 10): write and half-close at once; the server may drop what
 *   is not ready (a FIN with requests unanswered means the client left), so
 *   what arrives must be a prefix of the owed responses, then a close;
 * - `abort` (1 in 10): write, then cut the connection at a random moment.
 *
 * Received bytes are parsed by the strict reader of test/helpers/raw.ts, so
 * a malformed or truncated response fails the case. A well-behaved client
 * alongside sends valid pipelines on a persistent connection and must get
 * every answer right and in time, throughout. At the end the server must
 * still be alive and its file descriptors back to where they started.
 */
import fc from 'fast-check'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { buildEnviron, type ConnectionInfo } from '../lib/gateway/environ.js'
import { GatewayError } from '../lib/gateway/spec.js'
import { EMPTY_INPUT } from '../lib/gateway/empty-input.js'
import { DEFAULTS } from '../lib/server/options.js'
import { ParseError, RequestParser, type RequestHead } from '../lib/server/parser.js'
import { parseResponses, MalformedResponse, type RawResponse } from '../test/helpers/raw.js'
import { atDefaultLimits, randomInput } from './fuzz-parser.js'
import { fdCount, fdTargets, rssBytes, settle, startServerProcess, type ServerProcess } from './fuzz-process.js'
import { mutate, mutations, pipeline, printable, splitAt } from './fuzz-requests.js'

export const FUZZ_SERVER = fileURLToPath(new URL('./fuzz-server.ts', import.meta.url))

// ---------- what the server must answer ----------

/** One response the server owes. */
export interface Expected {
  status: number
  /** The method it answers (a HEAD answer has no body). */
  method: string
  /** For a request the app saw: the exact body of the echo. */
  echo?: Buffer
}

export interface Prediction {
  /** What the server owes whatever the client does next. */
  responses: Expected[]
  /** Whether the server closes after them by itself. */
  closes: boolean
  /** What it may add once the client half-closes: a 400 for a request the FIN cut short. */
  afterFin: Expected | null
}

const INFO: ConnectionInfo = {
  serverName: '127.0.0.1',
  serverPort: '0',
  remoteAddr: '127.0.0.1',
  remotePort: '0',
  scheme: 'http',
  errors: { write() {}, flush() {} },
  multiprocess: false,
}

interface Parsed {
  head: RequestHead
  body: Buffer[]
  trailers: string[]
  complete: boolean
  error: number | null
}

/**
 * What postern's server must answer to `input`, derived from its parser and
 * environ builder run in process and from the connection rules: responses
 * in order, none after a request that ends the connection, the fault's
 * status for a fault (in a body, the app reading it gets it), and a close
 * after a fault. A request left incomplete waits for more bytes; the
 * client's FIN then earns it a 400 at most.
 */
export function predict(input: Buffer): Prediction {
  const requests: Parsed[] = []
  let headError: number | null = null
  const parser = new RequestParser(DEFAULTS, {
    onHead: (head) => void requests.push({ head, body: [], trailers: [], complete: false, error: null }),
    onBody: (chunk) => void requests[requests.length - 1]?.body.push(Buffer.from(chunk)),
    onBodyEnd: (trailers) => {
      const r = requests[requests.length - 1]!
      r.complete = true
      r.trailers = [...trailers]
    },
    onError: (error) => {
      const r = requests[requests.length - 1]
      if (r !== undefined && !r.complete) r.error = error.status
      else headError = error.status
    },
  })
  parser.execute(input)
  const responses: Expected[] = []
  for (const r of requests) {
    const { head } = r
    try {
      buildEnviron(head.method, head.target, head.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0', head.headers, INFO, EMPTY_INPUT)
    } catch (error) {
      // The environ builder refuses an undecodable path with a 400 GatewayError.
      if (!(error instanceof ParseError) && !(error instanceof GatewayError)) throw error
      responses.push({ status: error.status, method: head.method })
      return { responses, closes: true, afterFin: null }
    }
    if (r.complete) {
      const trailers: Array<[string, string]> = []
      for (let i = 0; i < r.trailers.length; i += 2) trailers.push([r.trailers[i]!, r.trailers[i + 1]!])
      const meta = JSON.stringify([head.method, head.target, head.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0', trailers])
      responses.push({ status: 200, method: head.method, echo: Buffer.concat([Buffer.from(`${meta}\n`, 'utf8'), ...r.body]) })
      if (!head.keepAlive) return { responses, closes: true, afterFin: null }
    } else if (r.error !== null) {
      responses.push({ status: r.error, method: head.method })
      return { responses, closes: true, afterFin: null }
    } else {
      return { responses, closes: false, afterFin: { status: 400, method: head.method } }
    }
  }
  if (headError !== null) {
    responses.push({ status: headError, method: 'GET' })
    return { responses, closes: true, afterFin: null }
  }
  return { responses, closes: false, afterFin: parser.midRequest ? { status: 400, method: 'GET' } : null }
}

/** Throws unless `got` are exactly the `expected` responses (or, with `prefix`, the first of them). */
export function checkResponses(got: RawResponse[], expected: Expected[], context: () => string, prefix = false): void {
  const fail = (why: string): never => {
    throw new Error(`${why}\n${context()}`)
  }
  const count = (list: Array<{ status: number }>) => `${list.length} (${list.map((e) => e.status).join(', ')})`
  if (prefix ? got.length > expected.length : got.length !== expected.length) fail(`expected ${prefix ? 'at most ' : ''}${count(expected)} responses, got ${count(got)}`)
  for (let i = 0; i < got.length; i++) {
    const e = expected[i]!
    const r = got[i]!
    if (r.status !== e.status) fail(`response ${i}: status ${r.status}, expected ${e.status}`)
    if (!r.complete) fail(`response ${i} is truncated`)
    if (e.echo !== undefined && e.method !== 'HEAD' && !r.body.equals(e.echo)) fail(`response ${i}: echo ${printable(r.body)}, expected ${printable(e.echo)}`)
  }
}

// ---------- one fuzz connection ----------

export interface LiveCase {
  input: Buffer
  cuts: number[]
  mode: 'wait' | 'fin' | 'abort'
  abortAfterMs: number
}

export const liveCase: fc.Arbitrary<LiveCase> = fc.record({
  input: fc.oneof(
    { arbitrary: pipeline.map((p) => p.bytes), weight: 3 },
    { arbitrary: fc.tuple(pipeline, mutations).map(([p, ms]) => mutate(p.bytes, ms)), weight: 6 },
    { arbitrary: randomInput, weight: 1 },
    { arbitrary: atDefaultLimits.map((c) => c.bytes), weight: 1 },
  ),
  cuts: fc.array(fc.nat(20000), { maxLength: 5 }),
  mode: fc.oneof(
    { arbitrary: fc.constant('wait' as const), weight: 7 },
    { arbitrary: fc.constant('fin' as const), weight: 2 },
    { arbitrary: fc.constant('abort' as const), weight: 1 },
  ),
  abortAfterMs: fc.nat(20),
})

export interface LiveStats {
  cases: number
  modes: Record<LiveCase['mode'], number>
  pieces: number
  responses: number
  statuses: Map<number, number>
  /** `fin` cases where the server dropped owed responses (allowed: the client left). */
  dropped: number
}

export function newStats(): LiveStats {
  return { cases: 0, modes: { wait: 0, fin: 0, abort: 0 }, pieces: 0, responses: 0, statuses: new Map(), dropped: 0 }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** How long the server may take to answer or close. */
const WAIT_MS = 10_000

/** A client connection that gathers what it receives and lets the caller wait for a condition. */
class Conn {
  readonly socket: net.Socket
  data: Buffer = Buffer.alloc(0)
  closed = false
  private wake: (() => void) | null = null

  private constructor(socket: net.Socket) {
    this.socket = socket
    socket.on('data', (d: Buffer) => {
      this.data = this.data.length === 0 ? d : Buffer.concat([this.data, d])
      this.wake?.()
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
      this.wake?.()
    })
  }

  static async open(port: number): Promise<Conn> {
    const socket = net.connect({ port, host: '127.0.0.1' })
    socket.setNoDelay(true)
    const conn = new Conn(socket)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve())
      socket.once('error', reject)
    })
    return conn
  }

  /** Waits until `goal()` holds or the connection closes; false after `ms`. */
  async until(goal: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms
    while (!goal() && !this.closed) {
      const left = deadline - Date.now()
      if (left <= 0) return false
      await new Promise<void>((resolve) => {
        this.wake = resolve
        setTimeout(resolve, Math.min(left, 250))
      })
      this.wake = null
    }
    return true
  }
}

/** Runs one case against the server on `port`; throws when the server's answer is wrong. */
export async function exerciseCase(port: number, c: LiveCase, stats: LiveStats): Promise<void> {
  const conn = await Conn.open(port)
  const { socket } = conn
  stats.cases++
  stats.modes[c.mode]++
  const prediction = predict(c.input)
  const owed = prediction.responses
  const methods = [...owed, ...(prediction.afterFin === null ? [] : [prediction.afterFin])].map((e) => e.method)
  const pieces = splitAt(c.input, c.cuts)
  const context = () =>
    ` input ${printable(c.input)}\n mode ${c.mode}, pieces ${JSON.stringify(pieces.map((p) => p.length))}\n received ${printable(conn.data)}${conn.closed ? ' (closed)' : ''}`
  try {
    for (let i = 0; i < pieces.length; i++) {
      if (socket.destroyed || !socket.writable) break
      if (pieces[i]!.length > 0) socket.write(pieces[i]!)
      stats.pieces++
      if (i < pieces.length - 1) await sleep(1) // separate reads on the server
    }
    if (c.mode === 'abort') {
      await sleep(c.abortAfterMs)
      return
    }
    const parse = () => {
      try {
        return parseResponses(conn.data, methods, conn.closed)
      } catch (error) {
        if (error instanceof MalformedResponse) throw new Error(`malformed response: ${error.message}\n${context()}`)
        throw error
      }
    }
    if (c.mode === 'wait') {
      const answered = await conn.until(() => parse().responses.length >= owed.length, WAIT_MS)
      if (!answered) throw new Error(`no answer within ${WAIT_MS} ms\n${context()}`)
      if (prediction.closes && !(await conn.until(() => false, WAIT_MS)))
        throw new Error(`the server did not close within ${WAIT_MS} ms after a response that ends the connection\n${context()}`)
      const before = parse()
      if (before.responses.length < owed.length) throw new Error(`the server closed without answering\n${context()}`)
      checkResponses(before.responses, owed, context)
    }
    if (!socket.destroyed) socket.end()
    if (!(await conn.until(() => false, WAIT_MS))) throw new Error(`the server kept the connection open ${WAIT_MS} ms after the client's FIN\n${context()}`)
    const after = parse()
    if (after.partial !== undefined) throw new Error(`a response was cut short\n${context()}`)
    const mayGet = prediction.afterFin === null ? owed : [...owed, prediction.afterFin]
    if (c.mode === 'wait' && after.responses.length < owed.length) throw new Error(`owed responses missing\n${context()}`)
    checkResponses(after.responses, mayGet, context, true)
    if (after.responses.length < owed.length) stats.dropped++
    stats.responses += after.responses.length
    for (const r of after.responses) stats.statuses.set(r.status, (stats.statuses.get(r.status) ?? 0) + 1)
  } finally {
    socket.destroy()
  }
}

// ---------- the well-behaved client ----------

export interface ClientStats {
  requests: number
  connections: number
  latencies: number[]
  failure: Error | null
}

/**
 * Sends valid pipelines (sampled with `seed`) one after another on a
 * persistent connection until `stop()` says so, reconnecting only where the
 * server rightly closes (a request that asks for it); every answer must be
 * the exact echo within 5 s.
 */
export async function wellBehavedClient(port: number, seed: number, stop: () => boolean): Promise<ClientStats> {
  const stats: ClientStats = { requests: 0, connections: 0, latencies: [], failure: null }
  const pool = fc.sample(pipeline, { seed, numRuns: 500 }).map((p) => ({ bytes: p.bytes, prediction: predict(p.bytes) }))
  let conn: Conn | null = null
  try {
    for (let i = 0; !stop(); i = (i + 1) % pool.length) {
      const { bytes, prediction } = pool[i]!
      if (conn === null) {
        conn = await Conn.open(port)
        stats.connections++
      }
      const c: Conn = conn
      const context = () => ` request ${printable(bytes)}\n received ${printable(c.data)}${c.closed ? ' (closed)' : ''}`
      const started = performance.now()
      c.socket.write(bytes)
      const methods = prediction.responses.map((e) => e.method)
      const want = prediction.responses.length
      const done = () => parseResponses(c.data, methods, c.closed).responses.length >= want && (!prediction.closes || c.closed)
      if (!(await c.until(done, 5000))) throw new Error(`no complete answer within 5 s\n${context()}`)
      stats.latencies.push(performance.now() - started)
      if (!done()) throw new Error(`the server closed the connection before answering\n${context()}`)
      const outcome = parseResponses(c.data, methods, c.closed)
      checkResponses(outcome.responses, prediction.responses, context)
      if (outcome.consumed < c.data.length) throw new Error(`more bytes than the answers\n${context()}`)
      stats.requests += want
      c.data = Buffer.alloc(0)
      if (prediction.closes) {
        c.socket.destroy()
        conn = null
      }
    }
  } catch (error) {
    stats.failure = error instanceof Error ? error : new Error(String(error))
  } finally {
    conn?.socket.destroy()
  }
  return stats
}

// ---------- a whole live run ----------

export interface LiveOptions {
  /** Cases in all, shared among the runners. */
  cases: number
  runners: number
  /** Seed of runner i is `seedOf(i)`. */
  seedOf(runner: number): number
  /** Replay: run only this runner, along this fast-check path. */
  only?: { runner: number; path: string }
}

export interface RunnerFailure {
  runner: number
  seed: number
  path: string
  message: string
}

export interface LiveReport {
  stats: LiveStats
  client: ClientStats
  failures: RunnerFailure[]
  fds: { baseline: number; end: number; leaked: string[] }
  rss: { start: number; end: number }
  serverExit: ServerProcess['exit']
  serverStderr: string
  serverStderrLines: number
  ms: number
}

/** Starts a server process, runs the cases with the runners and the well-behaved client, and checks the process after. */
export async function runLive(options: LiveOptions): Promise<LiveReport> {
  const started = performance.now()
  const server = await startServerProcess(FUZZ_SERVER)
  const stats = newStats()
  const failures: RunnerFailure[] = []
  try {
    const baseline = fdCount(server.pid)
    const rssStart = rssBytes(server.pid)
    let done = false
    const client = wellBehavedClient(server.port, options.seedOf(-1), () => done || server.exit !== null)
    const runners = options.only !== undefined ? [options.only.runner] : Array.from({ length: options.runners }, (_, i) => i)
    const share = (i: number) => Math.floor(options.cases / options.runners) + (i < options.cases % options.runners ? 1 : 0)
    await Promise.all(
      runners.map(async (i) => {
        const seed = options.seedOf(i)
        const numRuns = options.only !== undefined ? Number.MAX_SAFE_INTEGER : share(i)
        if (numRuns === 0) return
        const details = await fc.check(
          fc.asyncProperty(liveCase, (c) => exerciseCase(server.port, c, stats)),
          { numRuns: options.only !== undefined ? 1 : numRuns, seed, ...(options.only !== undefined ? { path: options.only.path } : {}) },
        )
        if (details.failed) failures.push({ runner: i, seed, path: details.counterexamplePath ?? '', message: String(details.errorInstance) })
      }),
    )
    done = true
    const clientStats = await client
    const end = server.exit === null ? await settle(() => fdCount(server.pid), baseline, 10_000) : -1
    const leaked = end > baseline ? fdTargets(server.pid) : []
    const rssEnd = server.exit === null ? rssBytes(server.pid) : 0
    return {
      stats,
      client: clientStats,
      failures,
      fds: { baseline, end, leaked },
      rss: { start: rssStart, end: rssEnd },
      serverExit: server.exit,
      serverStderr: server.stderr(),
      serverStderrLines: server.stderrLines(),
      ms: performance.now() - started,
    }
  } finally {
    await server.stop()
  }
}

/** The problems a live report shows, one line each; empty when the run passed. */
export function liveProblems(report: LiveReport): string[] {
  const problems: string[] = []
  if (report.serverExit !== null) problems.push(`the server process exited (${String(report.serverExit.code ?? report.serverExit.signal)}): ${report.serverStderr.slice(-1500)}`)
  for (const f of report.failures) problems.push(`runner ${f.runner} (seed ${f.seed}, path ${f.path}): ${f.message}`)
  if (report.client.failure !== null) problems.push(`well-behaved client: ${report.client.failure.message}`)
  if (report.client.requests === 0) problems.push('the well-behaved client got no answer at all')
  if (report.fds.end > report.fds.baseline)
    problems.push(`server file descriptors ${report.fds.end}, baseline ${report.fds.baseline}, 10 s after the last client left:\n  ${report.fds.leaked.join('\n  ')}`)
  return problems
}
