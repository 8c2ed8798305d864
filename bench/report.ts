/**
 * The report: what was measured, on what, with what, as Markdown (one
 * summary table, one table per scenario with spread, latency, ratios to
 * Fastify and to the raw socket ceiling, and client/server CPU) and as JSON
 * with every round, so later runs can be compared number by number.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import type { Cell, SuiteResult } from './harness.js'
import { SATURATED } from './harness.js'
import { packageVersion } from './load.js'
import { PEERS, ROOT, RUNTIMES, runtimeBinary, type Runtime } from './peer.js'
import type { Scenario } from './scenarios.js'

export interface Meta {
  date: string
  node: string
  v8: string
  platform: string
  cpu: string
  cores: number
  tool: { name: string; version: string; placement: string }
  servers: string
  options: { duration: number; warmup: number; rounds: number; connections: number; pipelining: number; quick: boolean }
  versions: Record<string, string>
  notes: string[]
}

export interface Report {
  meta: Meta
  scenarios: Array<Pick<Scenario, 'id' | 'title' | 'unit' | 'method' | 'path'>>
  peers: Array<{ name: string; label: string; runtime: Runtime }>
  cells: Cell[]
  skipped: SuiteResult['skipped']
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return 'unknown'
  }
}

/** `bun --version` / `deno --version` of the installed binary, or null when it is missing or fails. */
function runtimeVersion(runtime: Runtime): string | null {
  const binary = runtimeBinary(runtime)
  if (binary === null) return null
  try {
    const text = execFileSync(binary, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, NO_COLOR: '1' } })
    return /(\d+\.\d+\.\d+\S*)/.exec(text)?.[1] ?? null
  } catch {
    return null
  }
}

/** Versions of the runtimes, of every peer's packages, of the load generator, and of postern itself. */
export function versions(): Record<string, string> {
  const out: Record<string, string> = {}
  for (const { runtime } of RUNTIMES) {
    const version = runtimeVersion(runtime)
    if (version !== null) out[runtime] = version
  }
  for (const peer of PEERS) for (const name of peer.packages) out[name] = packageVersion(name)
  const own = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
  out['postern'] = `${own.version} (${gitCommit()})`
  return out
}

export function machine(): Pick<Meta, 'node' | 'v8' | 'platform' | 'cpu' | 'cores'> {
  const cpus = os.cpus()
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
  }
}

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
const one = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })

function value(v: number, unit: Cell['unit']): string {
  if (!Number.isFinite(v)) return '—'
  return unit === 'MB/s' ? one.format(v) : int.format(v)
}

function pct(v: number): string {
  return Number.isFinite(v) ? `${Math.round(v * 100)} %` : '—'
}

function ratio(v: number, base: number | undefined): string {
  return base !== undefined && Number.isFinite(v) && Number.isFinite(base) && base > 0 ? `${(v / base).toFixed(2)}×` : '—'
}

/** Milliseconds, two decimals under 10. */
function ms(v: number | null | undefined): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(v < 10 ? 2 : 1) : '—'
}

function row(cells: readonly string[]): string {
  return `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`
}

export function markdown(report: Report): string {
  const { meta } = report
  const lines: string[] = []
  const labels = new Map(report.peers.map((p) => [p.name, p.label]))
  lines.push('# postern benchmarks', '')
  lines.push(`- Date: ${meta.date} · Node ${meta.node} (V8 ${meta.v8}) · ${meta.platform} · ${meta.cores} × ${meta.cpu}`)
  lines.push(`- Load generator: ${meta.tool.name} ${meta.tool.version}, ${meta.tool.placement} · servers: ${meta.servers}`)
  const o = meta.options
  lines.push(
    `- ${o.rounds} interleaved round${o.rounds === 1 ? '' : 's'} × ${o.duration} s per cell, ${o.warmup > 0 ? `after ${o.warmup} s warm-up` : 'no warm-up'} · ${o.connections} connections, pipelining ${o.pipelining} unless the scenario says otherwise${o.quick ? ' · quick run (reduced matrix: indicative only)' : ''}`,
  )
  lines.push(
    `- Versions: ${Object.entries(meta.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(' · ')}`,
  )
  for (const note of meta.notes) lines.push(`- ${note}`)
  lines.push('')

  const scenarios = report.scenarios.filter((s) => report.cells.some((c) => c.scenario === s.id))
  const peers = report.peers.filter((p) => report.cells.some((c) => c.peer === p.name))
  const cellOf = (scenario: string, peer: string): Cell | undefined => report.cells.find((c) => c.scenario === scenario && c.peer === peer)

  lines.push('## Summary: median of rounds (req/s; MB/s or msg/s where the scenario says so)', '')
  const groups = RUNTIMES.map((r) => ({ ...r, peers: peers.filter((p) => p.runtime === r.runtime) })).filter((g) => g.peers.length > 0)
  const runtimeName = (g: (typeof groups)[number]): string => `${g.name}${meta.versions[g.runtime] === undefined ? '' : ` ${meta.versions[g.runtime]}`}`
  for (const [i, group] of groups.entries()) {
    // The Node group comes first and keeps its historical shape; each other runtime gets its own table after it.
    if (i > 0 || group.runtime !== 'node') lines.push(`On ${runtimeName(group)}:`, '')
    lines.push(row(['peer', ...scenarios.map((s) => `${s.id} · ${s.title}${s.unit === 'req/s' ? '' : ` (${s.unit})`}`)]))
    lines.push(row([':--', ...scenarios.map(() => '--:')]))
    for (const peer of group.peers) {
      lines.push(
        row([
          labels.get(peer.name) ?? peer.name,
          ...scenarios.map((s) => {
            const cell = cellOf(s.id, peer.name)
            if (cell === undefined) return '—'
            return `${value(cell.median, cell.unit)}${cell.clientSaturated ? ' ⚠' : ''}${cell.problem !== undefined ? ' ✗' : ''}`
          }),
        ]),
      )
    }
    lines.push('')
  }
  const legend: string[] = []
  if (report.cells.some((c) => c.clientSaturated))
    legend.push(`⚠ the load generator used ≥ ${Math.round(SATURATED * 100)} % of a core in some round: the client may be the bottleneck`)
  if (report.cells.some((c) => c.problem !== undefined)) legend.push("✗ see the note under the scenario's table")
  if (legend.length > 0) lines.push(legend.join(' · '), '')

  for (const s of scenarios) {
    const first = report.cells.find((c) => c.scenario === s.id)
    lines.push(`## ${s.id} · ${s.title}: ${s.unit}, ${first?.connections ?? '?'} connections, pipelining ${first?.pipelining ?? '?'}`, '')
    const notes: string[] = []
    for (const group of groups) {
      const cells = group.peers.map((p) => cellOf(s.id, p.name)).filter((c): c is Cell => c !== undefined)
      if (cells.length === 0) continue
      const node = group.runtime === 'node'
      // WebSocket echoes have no raw ceiling: the Node group compares with `ws` on node:http instead, and shows the median latency too.
      const ws = s.unit === 'msg/s'
      const ceiling = node && !ws
      // Node: ratios to Fastify and to the raw socket ceiling; Bun and Deno: to the runtime's bare server and to Hono on it.
      const base = cellOf(s.id, node ? 'fastify' : group.bare)?.median
      const second = cellOf(s.id, node ? (ws ? 'ws' : 'raw') : `${group.runtime}-hono`)?.median
      if (!node) lines.push(`On ${runtimeName(group)}:`, '')
      lines.push(
        row([
          'peer',
          'median',
          'min–max',
          ...(ws ? ['p50 ms'] : []),
          'p99 ms',
          node ? 'vs Fastify' : `vs ${labels.get(group.bare) ?? group.bare}`,
          ceiling ? 'of ceiling' : node ? 'vs ws' : 'vs Hono',
          'client CPU',
          'server CPU',
          `server µs/${s.unit === 'msg/s' ? 'msg' : s.unit === 'MB/s' ? 'MB' : 'req'}`,
        ]),
      )
      lines.push(row([':--', '--:', '--:', ...(ws ? ['--:'] : []), '--:', '--:', '--:', '--:', '--:', '--:']))
      for (const c of cells) {
        lines.push(
          row([
            labels.get(c.peer) ?? c.peer,
            value(c.median, c.unit),
            c.rounds.length === 0 ? '—' : `${value(c.min, c.unit)}–${value(c.max, c.unit)}`,
            ...(ws ? [ms(c.p50)] : []),
            ms(c.p99),
            ratio(c.median, base),
            ceiling ? (second !== undefined && Number.isFinite(second) && Number.isFinite(c.median) ? pct(c.median / second) : '—') : ratio(c.median, second),
            `${pct(c.clientCpu)}${c.clientSaturated ? ' ⚠' : ''}`,
            pct(c.serverCpu),
            Number.isFinite(c.serverCpuPerUnit) ? c.serverCpuPerUnit.toFixed(2) : '—',
          ]),
        )
        if (c.problem !== undefined) notes.push(`- ✗ ${labels.get(c.peer) ?? c.peer}: ${c.problem}`)
      }
      lines.push('')
    }
    if (notes.length > 0) lines.push(...notes, '')
  }

  if (report.skipped.length > 0) {
    lines.push('## Skipped', '')
    for (const s of report.skipped) lines.push(`- ${labels.get(s.peer) ?? s.peer}${s.scenario === undefined ? '' : ` (scenario ${s.scenario})`}: ${s.reason}`)
    lines.push('')
  }
  return lines.join('\n')
}

/** `2026-11-25-1340`: sorts by time, safe in a file name. */
export function stamp(date: Date): string {
  const iso = date.toISOString()
  return `${iso.slice(0, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}`
}

/** Where the reports of record live: tracked in git, rewritten only by `--record`. */
export const RECORD_DIR = join(ROOT, 'bench', 'results')
/** Where every other run's reports go: git-ignored, so a run leaves the working tree clean. */
export const RUNS_DIR = join(RECORD_DIR, 'runs')

/**
 * The directory a run writes to: `--out` when given, the tracked results with
 * `--record`, otherwise the git-ignored runs directory.
 */
export function resultsDir(options: { record: boolean; out?: string | undefined }): string {
  if (options.record && options.out !== undefined) throw new Error('--record writes to bench/results; --out names another directory: give one of them')
  if (options.out !== undefined) return options.out
  return options.record ? RECORD_DIR : RUNS_DIR
}

/** Writes <stamp>.md, <stamp>.json and latest.md into `dir`; returns the paths. */
export function writeReport(report: Report, dir: string, date: Date): { md: string; json: string; latest: string } {
  mkdirSync(dir, { recursive: true })
  const base = join(dir, stamp(date))
  const text = markdown(report)
  const paths = { md: `${base}.md`, json: `${base}.json`, latest: join(dir, 'latest.md') }
  writeFileSync(paths.md, text)
  writeFileSync(paths.json, `${JSON.stringify(report, null, 2)}\n`)
  writeFileSync(paths.latest, text)
  return paths
}
