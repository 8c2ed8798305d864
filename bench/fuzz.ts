/**
 * `npm run fuzz [-- --cases N] [--seed S] [--only NAME[,NAME…]] [--path P] [--runners R]`
 *
 * Property-based fuzzing of postern's HTTP/1.1 request parser and server,
 * with fast-check. The cases (1,000,000 by default) are shared out so that
 * most run in process, where they are cheap, and a bounded share goes over
 * real sockets to a real server process:
 *
 * | name       | share | what must hold                                                        |
 * | ---------- | ----- | --------------------------------------------------------------------- |
 * | `valid`    | 14 %  | valid pipelines parse to exactly what was generated, whole or split   |
 * | `bytewise` |  3 %  | the same, one byte per read                                           |
 * | `mutated`  | 33 %  | mutated pipelines: one verdict whole, split and bytewise; no throw    |
 * | `random`   | 15 %  | arbitrary bytes (alone or after a valid head): the same               |
 * | `limits`   |  2 %  | requests at each default limit: accepted up to it, refused past it    |
 * | `llhttp`   | 28 %  | Node's llhttp reads valid pipelines the same, or a documented class   |
 * | `live`     |  5 %  | a server process answers exactly as predicted, a well-behaved client  |
 * |            |       | alongside gets every answer, no crash, descriptors back to baseline   |
 *
 * (bench/fuzz-parser.ts, bench/fuzz-llhttp.ts and bench/fuzz-live.ts say
 * each property in full.) It prints a summary and exits 1 on any failure,
 * with the command that replays the shrunk counterexample: the base seed,
 * the property's name and fast-check's path.
 */
import { execFileSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import fc from 'fast-check'
import { parserProperties } from './fuzz-parser.js'
import { DIVERGENCES, Tally, differentialProperty } from './fuzz-llhttp.js'
import { liveProblems, runLive, type LiveReport } from './fuzz-live.js'
import { MiB } from './fuzz-process.js'
import { compactRuns as compact } from './fuzz-requests.js'

const SHARES = { valid: 0.14, bytewise: 0.03, mutated: 0.33, random: 0.15, limits: 0.02, llhttp: 0.28, live: 0.05 } as const
type Name = keyof typeof SHARES
const NAMES = Object.keys(SHARES) as Name[]

interface Row {
  name: string
  cases: number
  ms: number
  failure: string | null
  replay: string | null
}

/** FNV-1a: a stable number per property name, so each property's seed is fixed by the base seed. */
function hash(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h | 0
}

const fmt = (n: number) => n.toLocaleString('en-US')
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`

function commit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'lib/server'], { encoding: 'utf8' }).trim() !== ''
    return dirty ? `${head} (lib/server/ modified)` : head
  } catch {
    return 'unknown'
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string', default: '1000000' },
      seed: { type: 'string' },
      only: { type: 'string' },
      path: { type: 'string' },
      runners: { type: 'string', default: '8' },
    },
  })
  const total = Number(values.cases)
  const seed = values.seed === undefined ? (Math.random() * 2 ** 31) | 0 : Number(values.seed)
  const runners = Number(values.runners)
  if (!Number.isSafeInteger(total) || total < 0 || !Number.isSafeInteger(seed) || !Number.isSafeInteger(runners) || runners < 1) {
    process.stderr.write('usage: npm run fuzz -- [--cases N] [--seed S] [--only NAME[,NAME…]] [--path P] [--runners R]\n')
    return 2
  }
  const only = values.only?.split(',').map((s) => s.trim()) ?? null
  const path = values.path
  if (path !== undefined && (only === null || only.length !== 1)) {
    process.stderr.write('--path replays one property: give exactly one --only NAME\n')
    return 2
  }
  const seedOf = (name: string) => (seed ^ hash(name)) | 0
  const replayOf = (name: string, p: string) => `npm run fuzz -- --seed ${seed} --only ${name} --path ${p}`
  const selected = (name: Name) => only === null || only.includes(name) || (name === 'live' && only.some((o) => o.startsWith('live.')))
  const casesOf = (name: Name) => Math.round(total * SHARES[name])

  process.stdout.write(`postern fuzz · seed ${seed} · ${fmt(total)} cases · node ${process.version} · commit ${commit()}\n\n`)
  const started = performance.now()
  const rows: Row[] = []
  const tally = new Tally()
  let live: LiveReport | null = null

  for (const name of NAMES) {
    if (!selected(name)) continue
    const t0 = performance.now()
    if (name === 'live') {
      const runner = only?.find((o) => o.startsWith('live.'))
      live = await runLive({
        cases: casesOf('live'),
        runners,
        seedOf: (i) => seedOf(i < 0 ? 'live.client' : `live.${i}`),
        ...(runner !== undefined && path !== undefined ? { only: { runner: Number(runner.slice(5)), path } } : {}),
      })
      const problems = liveProblems(live)
      const failed = live.failures[0]
      rows.push({
        name,
        cases: live.stats.cases,
        ms: performance.now() - t0,
        failure: problems.length === 0 ? null : compact(problems.join('\n')),
        replay: failed === undefined ? null : replayOf(`live.${failed.runner}`, failed.path),
      })
      continue
    }
    const property = name === 'llhttp' ? differentialProperty(tally) : parserProperties[name]()
    const numRuns = path !== undefined ? 1 : casesOf(name)
    const details = fc.check(property as fc.IProperty<unknown[]>, { numRuns, seed: seedOf(name), ...(path !== undefined ? { path } : {}) })
    rows.push({
      name,
      cases: details.numRuns,
      ms: performance.now() - t0,
      failure: details.failed ? compact(String(details.errorInstance)) : null,
      replay: details.failed && details.counterexamplePath !== null ? replayOf(name, details.counterexamplePath) : null,
    })
  }

  // ---- summary ----
  const out: string[] = []
  out.push('property   cases        time      result')
  for (const r of rows) out.push(`${r.name.padEnd(10)} ${fmt(r.cases).padStart(10)}  ${secs(r.ms).padStart(8)}   ${r.failure === null ? 'ok' : 'FAILED'}`)
  const done = rows.reduce((n, r) => n + r.cases, 0)
  out.push(`${'total'.padEnd(10)} ${fmt(done).padStart(10)}  ${secs(performance.now() - started).padStart(8)}`)

  if (tally.cases > 0) {
    out.push(
      '',
      `llhttp differential: ${fmt(tally.cases)} cases; ${fmt(tally.agree)} read alike (${fmt(tally.messages)} messages compared field by field); ${fmt(tally.bothRefuse)} refused by both`,
    )
    out.push('  documented disagreements (first message where they part; shortest example):')
    for (const d of DIVERGENCES) {
      const seen = tally.classes.get(d.id)
      out.push(`  ${d.id.padEnd(21)} ${`${d.refuses} refuses (${d.with.join('/')})`.padEnd(58)} ${fmt(seen?.count ?? 0).padStart(8)}`)
      out.push(`      why: ${d.reason}`)
      if (seen !== undefined) out.push(`      e.g. ${compact(JSON.stringify(seen.example)).slice(0, 220)}`)
    }
  }

  if (live !== null) {
    const s = live.stats
    const lat = [...live.client.latencies].sort((a, b) => a - b)
    const pct = (p: number) => (lat.length === 0 ? 0 : lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]!)
    out.push(
      '',
      `live: ${fmt(s.cases)} connections (wait ${fmt(s.modes.wait)}, fin ${fmt(s.modes.fin)}, abort ${fmt(s.modes.abort)}), ${fmt(s.pieces)} writes, ${fmt(s.responses)} responses checked`,
      `  statuses: ${[...s.statuses]
        .sort((a, b) => a[0] - b[0])
        .map(([k, v]) => `${k}×${fmt(v)}`)
        .join(', ')}; owed responses dropped after a FIN: ${fmt(s.dropped)}`,
      `  well-behaved client: ${fmt(live.client.requests)} answers on ${fmt(live.client.connections)} connections, p50 ${pct(0.5).toFixed(1)} ms, p99 ${pct(0.99).toFixed(1)} ms, max ${pct(1).toFixed(1)} ms${live.client.failure === null ? '' : ' — FAILED'}`,
      `  server process: ${live.serverExit === null ? 'alive' : `EXITED ${String(live.serverExit.code ?? live.serverExit.signal)}`}; fds ${live.fds.baseline} at start, ${live.fds.end} at the end; RSS ${(live.rss.start / MiB).toFixed(0)} → ${(live.rss.end / MiB).toFixed(0)} MiB; ${live.serverStderrLines} lines on its stderr`,
    )
  }

  const failed = rows.filter((r) => r.failure !== null)
  for (const r of failed) {
    out.push('', `FAILED ${r.name}:`, r.failure!)
    if (r.replay !== null) out.push(`replay: ${r.replay}`)
  }
  out.push('', failed.length === 0 ? `ok: ${fmt(done)} cases, no failure` : `${failed.length} propert${failed.length === 1 ? 'y' : 'ies'} failed (seed ${seed})`)
  process.stdout.write(`${out.join('\n')}\n`)
  return failed.length === 0 ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
