/**
 * `npm run bench` — the benchmark suite's command line.
 *
 *   npm run bench                         full matrix: 8 scenarios × the peers that serve each, 3 rounds × 5 s
 *   npm run bench -- --quick              reduced matrix (scenarios 2 and 4, 1 s rounds): about a minute
 *   npm run bench -- --only 1,7 --peers raw,fastify,postern
 *   npm run bench -- --tool wrk           wrk instead of autocannon (falls back when wrk is absent)
 *   npm run bench -- --check              start every peer, check one response per scenario, no load
 *   npm run bench -- --only 9             the WebSocket echo (bench/ws-load.ts as the client; --ws-client bun|node)
 *   npm run bench -- --micro              parser/router/serializer/dispatch microbenchmarks (bench/micro.ts)
 *   npm run bench -- --memory             RSS/heap growth and RSS per idle connection (bench/memory.ts)
 *
 * Options: --duration s, --warmup s, --rounds n, --connections n,
 * --pipelining n, --record, --out dir, --no-write.
 *
 * Reports go to bench/results/runs/ (git-ignored), so a run leaves the working
 * tree clean; only --record rewrites the tracked bench/results/latest.md and
 * adds the dated reports beside it.
 */
import os from 'node:os'
import { parseArgs } from 'node:util'
import { runSuite, type SuiteResult } from './harness.js'
import { autocannonTool, type LoadTool } from './load.js'
import { PEERS, peerByName, type PeerInfo } from './peer.js'
import { findTaskset } from './peer-process.js'
import { machine, markdown, resultsDir, versions, writeReport, type Report } from './report.js'
import { QUICK_SCENARIOS, SCENARIOS, scenarioById, type Scenario } from './scenarios.js'
import { wrkTool, wrkVersion } from './wrk.js'
import { pickWsClient, wsTool } from './ws-tool.js'

const HELP = `usage: npm run bench -- [options]
  --quick              reduced matrix (scenarios ${QUICK_SCENARIOS.join(',')}, 1 s × 3 rounds, 0.5 s warm-up)
  --only <ids>         scenarios, e.g. 1,2,7 (${SCENARIOS.map((s) => `${s.id} ${s.title}`).join('; ')})
  --peers <names>      peers, e.g. raw,node,fastify (${PEERS.map((p) => p.name).join(', ')})
  --duration <s>       seconds per measured run (default 5; quick 1)
  --warmup <s>         seconds of warm-up per peer and scenario (default 2; quick 0.5)
  --rounds <n>         interleaved rounds (default 3)
  --connections <n>    connections (default 100; scenario 6 uses 1000)
  --pipelining <n>     pipelined requests per connection (default 1; scenario 5 uses 10)
  --tool <name>        autocannon (default) or wrk
  --ws-client <name>   the WebSocket scenario's client runtime: bun (default when installed) or node (the ws client)
  --record             write the reports of record: bench/results/<date>.md, .json and latest.md (tracked)
  --out <dir>          where reports go (default bench/results/runs, git-ignored)
  --no-write           print the table only
  --check              only check that every peer answers every selected scenario correctly (no load)
  --micro              microbenchmarks (bench/micro.ts)
  --memory             memory benchmarks (bench/memory.ts)`

function list(value: string | undefined): string[] | undefined {
  return value === undefined
    ? undefined
    : value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${JSON.stringify(value)}`)
  return n
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  // The micro and memory benches have options of their own.
  if (argv.includes('--micro')) return (await import('./micro.js')).main(argv.filter((a) => a !== '--micro'))
  if (argv.includes('--memory')) return (await import('./memory.js')).main(argv.filter((a) => a !== '--memory'))
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      peers: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      connections: { type: 'string' },
      pipelining: { type: 'string' },
      tool: { type: 'string', default: 'autocannon' },
      'ws-client': { type: 'string' },
      out: { type: 'string' },
      record: { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: false,
    strict: true,
  })
  const str = (key: keyof typeof values): string | undefined => (typeof values[key] === 'string' ? (values[key] as string) : undefined)
  if (values.help === true) return void console.log(HELP)
  // Checked before any peer starts: a bad combination should not cost a whole run.
  const outDir = resultsDir({ record: values.record === true, out: str('out') })

  const quick = values.quick === true
  const onlyIds = list(str('only')) ?? (quick ? [...QUICK_SCENARIOS] : SCENARIOS.map((s) => s.id))
  const scenarios: Scenario[] = onlyIds.map((id) => {
    const s = scenarioById(id)
    if (s === undefined) throw new Error(`unknown scenario ${JSON.stringify(id)}; known: ${SCENARIOS.map((x) => x.id).join(', ')}`)
    return s
  })
  const peers: PeerInfo[] = (list(str('peers')) ?? PEERS.map((p) => p.name)).map((name) => {
    const p = peerByName(name)
    if (p === undefined) throw new Error(`unknown peer ${JSON.stringify(name)}; known: ${PEERS.map((x) => x.name).join(', ')}`)
    return p
  })
  const duration = positive('duration', str('duration'), quick ? 1 : 5)
  const warmup = positive('warmup', str('warmup'), quick ? 0.5 : 2)
  const check = values.check === true
  const rounds = check ? 0 : Math.max(1, Math.round(positive('rounds', str('rounds'), 3)))
  const connections = Math.max(1, Math.round(positive('connections', str('connections'), 100)))
  const pipelining = Math.max(1, Math.round(positive('pipelining', str('pipelining'), 1)))

  const notes: string[] = []
  const cores = os.cpus().length
  const taskset = findTaskset(cores)
  if (taskset === null)
    notes.push(cores < 2 ? 'One core only: servers and load generator share it (numbers are indicative only).' : 'taskset not found: processes are not pinned to cores.')
  let tool: LoadTool
  if (str('tool') === 'wrk') {
    const version = wrkVersion()
    if (version === null) {
      notes.push('wrk was asked for but is not installed: autocannon measured every cell instead.')
      tool = autocannonTool(taskset, 1)
    } else {
      tool = wrkTool(version, taskset, 1)
      notes.push('wrk measured every cell (one thread; pipelining through a Lua script; latency with pipelining is per batch).')
    }
  } else if (str('tool') === 'autocannon') {
    tool = autocannonTool(taskset, 1)
    notes.push('autocannon measured every cell.')
  } else {
    throw new Error(`--tool must be autocannon or wrk, got ${JSON.stringify(str('tool'))}`)
  }
  let wsLoad: LoadTool | undefined
  if (scenarios.some((s) => s.protocol === 'websocket')) {
    wsLoad = wsTool(pickWsClient(str('ws-client')), taskset, 1)
    notes.push(`The WebSocket scenario is measured by bench/${wsLoad.name}.ts ${wsLoad.version}, ${wsLoad.placement} (wrk and autocannon speak no WebSocket).`)
  }
  if (rounds < 3 && !check) notes.push(`Only ${rounds} round${rounds === 1 ? '' : 's'}: the spread says little.`)

  const date = new Date()
  const tty = process.stderr.isTTY === true
  let result: SuiteResult
  try {
    result = await runSuite({
      scenarios,
      peers,
      duration,
      warmup: check ? 0 : warmup,
      rounds,
      connections,
      pipelining,
      tool,
      ...(wsLoad === undefined ? {} : { wsTool: wsLoad }),
      taskset,
      serverCore: 0,
      progress: (line) => process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`),
    })
  } finally {
    await tool.close()
    await wsLoad?.close()
  }
  if (tty) process.stderr.write('\n')
  if (check) {
    for (const cell of result.cells) console.log(`scenario ${cell.scenario} · ${cell.peer}: ${cell.problem ?? 'ok'}`)
    for (const s of result.skipped) console.log(`${s.scenario === undefined ? '' : `scenario ${s.scenario} · `}${s.peer}: skipped (${s.reason})`)
    if (result.cells.some((c) => c.problem !== undefined)) process.exitCode = 1
    return
  }
  const starved = result.cells.filter((c) => c.rounds.length > 0 && !c.clientSaturated && c.serverCpu < 0.75)
  if (starved.length > 0) {
    notes.push(
      `In ${starved.length} of ${result.cells.length} cells the server used under 75 % of its core while the client was not saturated: ` +
        'the machine was probably busy with other work (or the server waits on something); treat those numbers as unreliable.',
    )
  }
  const report: Report = {
    meta: {
      date: date.toISOString(),
      ...machine(),
      tool: { name: tool.name, version: tool.version, placement: tool.placement },
      servers: taskset === null ? 'each in its own process, unpinned' : 'each in its own process pinned to core 0',
      options: { duration, warmup, rounds, connections, pipelining, quick },
      versions: versions(),
      notes,
    },
    scenarios: scenarios.map(({ id, title, unit, method, path }) => ({ id, title, unit, method, path })),
    peers: peers.map(({ name, label, runtime }) => ({ name, label, runtime })),
    cells: result.cells,
    skipped: result.skipped,
  }
  console.log(markdown(report))
  if (values['no-write'] !== true) {
    const paths = writeReport(report, outDir, date)
    process.stderr.write(`wrote ${paths.md}, ${paths.json} and ${paths.latest}\n`)
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
})
