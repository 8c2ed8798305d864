/**
 * The harness: for each scenario it starts every peer in its own pinned
 * process, checks one response from each, warms each up, then measures them
 * in interleaved rounds (A, B, C, A, B, C, …) so that noise on the machine
 * falls on all peers alike. Each cell keeps every round; the report shows the
 * median and the spread.
 */
import http from 'node:http'
import type { LoadResult, LoadTool } from './load.js'
import { PeerUnsupported, missingFor, type PeerInfo } from './peer.js'
import { startPeer, type PeerProcess } from './peer-process.js'
import type { Scenario } from './scenarios.js'
import { verifyWebSocket } from './ws-check.js'

export interface SuiteOptions {
  scenarios: readonly Scenario[]
  peers: readonly PeerInfo[]
  /** Seconds per measured run. */
  duration: number
  /** Seconds of warm-up per peer and scenario (0: none). */
  warmup: number
  rounds: number
  connections: number
  pipelining: number
  tool: LoadTool
  /** The load tool of the WebSocket scenarios (bench/ws-tool.ts). */
  wsTool?: LoadTool
  taskset: string | null
  /** Core the servers are pinned to. */
  serverCore: number
  /** Called with a one-line status before each step. */
  progress?: (line: string) => void
}

export interface Round {
  /** req/s, or MB/s for a streaming scenario. */
  value: number
  requests: number
  seconds: number
  p50: number
  p99: number
  clientCpu: number
  /** Server CPU time over the run, as a fraction of one core. */
  serverCpu: number
  errors: number
  timeouts: number
  non2xx: number
}

export interface Cell {
  scenario: string
  peer: string
  unit: Scenario['unit']
  connections: number
  pipelining: number
  rounds: Round[]
  /** Median, min and max of the rounds' values (NaN when nothing was measured). */
  median: number
  min: number
  max: number
  /** Median of the rounds' p50 and p99 latency, milliseconds. */
  p50: number
  p99: number
  /** Highest client CPU share of any round. */
  clientCpu: number
  /** The load generator used ≥ 90 % of a core in some round: the cell measures the client too. */
  clientSaturated: boolean
  serverCpu: number
  /**
   * Median over the rounds of the server's CPU time per unit measured, in
   * µs (per request, per message, or per MB): what the server spends
   * whether or not the client kept up, so a peer is compared fairly with
   * one whose client saturated (the ⚠ cells).
   */
  serverCpuPerUnit: number
  /** Why the cell has no number, or what went wrong in it (errors, non-2xx). */
  problem?: string
}

export interface Skipped {
  peer: string
  scenario?: string
  reason: string
}

export interface SuiteResult {
  cells: Cell[]
  skipped: Skipped[]
}

export const SATURATED = 0.9

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2
}

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  /** The body as received (not decoded). */
  body: Buffer
}

/** One request on a fresh connection; the answer, or a problem (a string). */
function request(port: number, scenario: Scenario, headers: Record<string, string>): Promise<Answer | string> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: scenario.method,
        path: scenario.path,
        headers: scenario.body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(scenario.body) },
        agent: false,
        timeout: 10_000,
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (c: Buffer) => chunks.push(c))
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }))
        response.on('error', (e) => resolve(`response error: ${e.message}`))
      },
    )
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', (e) => resolve(`request error: ${e.message}`))
    req.end(scenario.body)
  })
}

/**
 * Sends one request the way the load generator will and checks the answer,
 * then the scenario's probes (each a request of its own); returns the first
 * problem or null.
 */
export async function verify(port: number, scenario: Scenario): Promise<string | null> {
  const checks = [{ what: '', headers: scenario.headers, check: scenario.check }, ...(scenario.probes ?? [])]
  for (const { what, headers, check } of checks) {
    const answer = await request(port, scenario, headers)
    const problem = typeof answer === 'string' ? answer : check(answer.status, answer.headers['content-type'] ?? '', answer.body, answer.headers)
    if (problem !== null) return what === '' ? problem : `${what}: ${problem}`
  }
  return null
}

function summarize(scenario: Scenario, peer: PeerInfo, connections: number, pipelining: number, rounds: Round[], problem: string | undefined): Cell {
  const values = rounds.map((r) => r.value)
  const clientCpu = Math.max(0, ...rounds.map((r) => r.clientCpu))
  const failures = rounds.reduce((n, r) => n + r.errors + r.timeouts + r.non2xx, 0)
  const what = scenario.unit === 'msg/s' ? 'errors/timeouts/refused handshakes over' : 'errors/timeouts/non-2xx over'
  const trouble = problem ?? (failures > 0 ? `${failures} ${what} ${rounds.reduce((n, r) => n + r.requests, 0)} ${scenario.unit === 'msg/s' ? 'echoes' : 'responses'}` : undefined)
  return {
    scenario: scenario.id,
    peer: peer.name,
    unit: scenario.unit,
    connections,
    pipelining,
    rounds,
    median: median(values),
    min: values.length === 0 ? NaN : Math.min(...values),
    max: values.length === 0 ? NaN : Math.max(...values),
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    clientCpu,
    clientSaturated: clientCpu >= SATURATED,
    serverCpu: median(rounds.map((r) => r.serverCpu)),
    serverCpuPerUnit: median(rounds.filter((r) => r.value > 0).map((r) => (r.serverCpu * 1e6) / r.value)),
    ...(trouble === undefined ? {} : { problem: trouble }),
  }
}

export async function runSuite(options: SuiteOptions): Promise<SuiteResult> {
  const skipped: Skipped[] = []
  const available: PeerInfo[] = []
  for (const peer of options.peers) {
    const missing = missingFor(peer)
    if (missing === null) available.push(peer)
    else skipped.push({ peer: peer.name, reason: missing })
  }
  /** The available peers that serve a scenario; the others are noted as skipped for it. */
  const peersOf = (scenario: Scenario): PeerInfo[] => {
    const serving: PeerInfo[] = []
    for (const peer of available) {
      if (scenario.peers !== undefined && !scenario.peers.includes(peer.name))
        skipped.push({ peer: peer.name, scenario: scenario.id, reason: `does not serve this scenario (served by ${scenario.peers.join(', ')})` })
      else if (peer.routes !== undefined && !peer.routes.includes(scenario.route))
        skipped.push({ peer: peer.name, scenario: scenario.id, reason: `serves only the ${peer.routes.join(', ')} route${peer.routes.length === 1 ? '' : 's'}` })
      else serving.push(peer)
    }
    return serving
  }
  const cells: Cell[] = []
  const servedBy = options.scenarios.map((scenario) => peersOf(scenario))
  const cellCount = servedBy.reduce((n, list) => n + list.length, 0)
  const totalRuns = cellCount * options.rounds
  const perRun = options.duration + 0.3
  let runsDone = 0
  let warmupsLeft = options.warmup > 0 ? cellCount : 0
  const say = (what: string): void => {
    const left = Math.round((totalRuns - runsDone) * perRun + warmupsLeft * (options.warmup + 0.3))
    options.progress?.(`[${runsDone}/${totalRuns} runs] ${what} · ~${left} s left`)
  }

  for (const [index, scenario] of options.scenarios.entries()) {
    const peers = servedBy[index] ?? []
    if (peers.length === 0) continue
    const connections = scenario.connections ?? options.connections
    const pipelining = scenario.pipelining ?? options.pipelining
    say(`scenario ${scenario.id} (${scenario.title}): starting ${peers.length} servers`)
    const started = await Promise.allSettled(peers.map((peer) => startPeer(peer, scenario.route, { taskset: options.taskset, core: options.serverCore })))
    const live: PeerProcess[] = []
    const rounds = new Map<string, Round[]>()
    const problems = new Map<string, string>()
    const unsupported = new Set<string>()
    started.forEach((s, i) => {
      const peer = peers[i]
      if (peer === undefined) return
      if (s.status === 'fulfilled') live.push(s.value)
      else if (s.reason instanceof PeerUnsupported) {
        // The peer's stack lacks what the scenario needs (yet): listed as skipped, with its reason, not as a failure.
        unsupported.add(peer.name)
        skipped.push({ peer: peer.name, scenario: scenario.id, reason: s.reason.message })
      } else problems.set(peer.name, `did not start: ${s.reason instanceof Error ? s.reason.message : String(s.reason)}`)
    })
    try {
      const measured: PeerProcess[] = []
      const websocket = scenario.protocol === 'websocket'
      const tool = websocket ? options.wsTool : options.tool
      if (tool === undefined) throw new Error(`scenario ${scenario.id} needs the WebSocket load tool`)
      for (const server of live) {
        try {
          const problem = await (websocket ? verifyWebSocket(server.port, scenario) : verify(server.port, scenario))
          if (problem === null) measured.push(server)
          else problems.set(server.peer.name, `wrong response: ${problem}`)
        } catch (error) {
          if (!(error instanceof PeerUnsupported)) throw error
          unsupported.add(server.peer.name)
          skipped.push({ peer: server.peer.name, scenario: scenario.id, reason: error.message })
        }
      }
      const skippedRuns = (peers.length - measured.length) * options.rounds
      runsDone += skippedRuns
      if (options.warmup > 0) warmupsLeft -= peers.length - measured.length

      const job = (server: PeerProcess, duration: number) => ({
        url: `${websocket ? 'ws' : 'http'}://127.0.0.1:${server.port}${scenario.path}`,
        method: scenario.method,
        headers: scenario.headers,
        ...(scenario.body === undefined ? {} : { body: scenario.body }),
        connections,
        pipelining,
        duration,
      })
      if (options.warmup > 0) {
        for (const server of measured) {
          say(`scenario ${scenario.id} · ${server.peer.name} · warm-up`)
          await tool.run(job(server, options.warmup)).catch(() => undefined)
          warmupsLeft--
        }
      }
      for (let round = 1; round <= options.rounds; round++) {
        for (const server of measured) {
          say(`scenario ${scenario.id} · ${server.peer.name} · round ${round}/${options.rounds}`)
          try {
            const cpu0 = await server.cpuMicros()
            const t0 = performance.now()
            const result: LoadResult = await tool.run(job(server, options.duration))
            const serverCpu = (await server.cpuMicros()) - cpu0
            const wallMs = performance.now() - t0
            const value = scenario.unit === 'MB/s' ? result.bytes / result.seconds / 1e6 : result.requests / result.seconds
            const list = rounds.get(server.peer.name) ?? []
            list.push({
              value,
              requests: result.requests,
              seconds: result.seconds,
              p50: result.p50,
              p99: result.p99,
              clientCpu: result.clientCpu,
              serverCpu: serverCpu / 1000 / wallMs,
              errors: result.errors,
              timeouts: result.timeouts,
              non2xx: result.non2xx,
            })
            rounds.set(server.peer.name, list)
          } catch (error) {
            problems.set(server.peer.name, `run failed: ${error instanceof Error ? error.message : String(error)}`)
          }
          runsDone++
        }
      }
    } finally {
      await Promise.all(live.map((server) => server.stop()))
    }
    for (const peer of peers) if (!unsupported.has(peer.name)) cells.push(summarize(scenario, peer, connections, pipelining, rounds.get(peer.name) ?? [], problems.get(peer.name)))
  }
  options.progress?.(`[${runsDone}/${totalRuns} runs] done`)
  return { cells, skipped }
}
