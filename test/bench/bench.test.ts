/**
 * The benchmark harness end to end, in its smallest form: one scenario, one
 * 1-second round, two or three peers, through the real command line. It
 * checks that every selected peer got a number and that the written report
 * is a well-formed table; it asserts nothing about speed.
 */
import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { RECORD_DIR, RUNS_DIR, resultsDir } from '../../bench/report.js'
import { parseWrk, luaScript, wrkVersion } from '../../bench/wrk.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const PEERS = ['raw', 'node', ...(existsSync(join(ROOT, 'lib/server/index.ts')) ? ['postern'] : [])]

interface CellJson {
  scenario: string
  peer: string
  median: number | null
  serverCpuPerUnit: number
  rounds: Array<{ value: number; requests: number }>
  problem?: string
}
interface ReportJson {
  meta: { node: string; cores: number; tool: { name: string }; versions: Record<string, string> }
  cells: CellJson[]
}

function bench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/run.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** The rows of the first Markdown table after `heading`, split into cells. */
function table(markdown: string, heading: RegExp): string[][] {
  const lines = markdown.split('\n')
  const start = lines.findIndex((l) => heading.test(l))
  const rows: string[][] = []
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i] ?? ''
    if (line.startsWith('|'))
      rows.push(
        line
          .slice(1, -1)
          .split(' | ')
          .map((c) => c.trim()),
      )
    else if (rows.length > 0) break
  }
  return rows
}

/** A subtest, as tap passes it to `t.test` callbacks. */
type Test = Parameters<Parameters<typeof t.test>[0]>[0]

async function runAndCheck(t: Test, tool: string): Promise<void> {
  const out = mkdtempSync(join(tmpdir(), 'postern-bench-test-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const { code, stdout, stderr } = await bench([
    '--quick',
    '--only',
    '2',
    '--peers',
    PEERS.join(','),
    '--duration',
    '1',
    '--rounds',
    '1',
    '--warmup',
    '0',
    '--tool',
    tool,
    '--out',
    out,
  ])
  t.equal(code, 0, `bench exits 0 (stderr: ${stderr.slice(-500)})`)

  const files = readdirSync(out)
  const json = files.find((f) => f.endsWith('.json'))
  t.ok(json, 'a JSON report was written')
  t.ok(
    files.some((f) => f.endsWith('.md') && f !== 'latest.md'),
    'a dated Markdown report was written',
  )
  t.ok(files.includes('latest.md'), 'latest.md was written')
  const report = JSON.parse(readFileSync(join(out, json ?? ''), 'utf8')) as ReportJson
  t.equal(report.meta.node, process.version)
  t.ok(report.meta.cores >= 1)
  t.equal(report.meta.tool.name, tool)
  t.match(report.meta.versions, { fastify: /^\d+\.\d+\.\d+$/, postern: /^\d+\.\d+\.\d+/ })
  t.same(report.cells.map((c) => c.peer).sort(), [...PEERS].sort(), 'one cell per selected peer')
  for (const cell of report.cells) {
    t.equal(cell.scenario, '2')
    t.equal(cell.problem, undefined, `${cell.peer} answered correctly without errors`)
    t.equal(cell.rounds.length, 1, `${cell.peer} ran one round`)
    t.ok(typeof cell.median === 'number' && cell.median > 0, `${cell.peer} has a positive req/s (${String(cell.median)})`)
    t.ok((cell.rounds[0]?.requests ?? 0) > 0, `${cell.peer} completed requests`)
  }

  const markdown = readFileSync(join(out, 'latest.md'), 'utf8')
  t.equal(stdout.trim(), markdown.trim(), 'the printed table is the written report')
  for (const heading of [/^## Summary/, /^## 2 · /]) {
    const rows = table(markdown, heading)
    t.ok(rows.length === 2 + PEERS.length, `${String(heading)} table has a header, a separator and one row per peer`)
    const width = rows[0]?.length ?? 0
    t.ok(width >= 2)
    for (const row of rows) t.equal(row.length, width, `row has ${width} cells: ${row.join(' | ')}`)
    t.ok(
      rows[1]?.every((c) => /^:?-+:?$/.test(c)),
      'second row is the separator',
    )
    for (const row of rows.slice(2)) t.match(row[1] ?? '', /^[\d,]+( ⚠)?$/, `${row[0] ?? ''} has a number`)
  }
}

t.test('quick run with autocannon: a number per peer, a well-formed table', (t) => runAndCheck(t, 'autocannon'))

t.test('quick run with wrk, when installed', { skip: wrkVersion() === null ? 'wrk is not installed' : false }, (t) => runAndCheck(t, 'wrk'))

t.test('reports go to a git-ignored directory unless --record asks for the tracked one', async (t) => {
  t.equal(resultsDir({ record: false }), RUNS_DIR, 'by default: bench/results/runs')
  t.equal(resultsDir({ record: true }), RECORD_DIR, '--record: bench/results')
  t.equal(resultsDir({ record: false, out: '/somewhere' }), '/somewhere', '--out wins')
  t.throws(() => resultsDir({ record: true, out: '/somewhere' }), /--record/, '--record and --out together are refused')
  t.equal(RUNS_DIR, join(ROOT, 'bench/results/runs'))
  t.equal(RECORD_DIR, join(ROOT, 'bench/results'))

  let inGit = true
  try {
    execFileSync('git', ['rev-parse', '--is-inside-work-tree'], { cwd: ROOT, stdio: 'ignore' })
  } catch {
    inGit = false
  }
  if (inGit) {
    // check-ignore exits 0 when the path is ignored, 1 when it is not.
    t.doesNotThrow(() => execFileSync('git', ['check-ignore', '-q', join(RUNS_DIR, 'latest.md')], { cwd: ROOT }), 'git ignores bench/results/runs')
    t.throws(() => execFileSync('git', ['check-ignore', '-q', join(RECORD_DIR, 'latest.md')], { cwd: ROOT }), 'git tracks bench/results/latest.md')
  }

  const { code, stderr } = await bench(['--record', '--out', join(tmpdir(), 'postern-bench-never')])
  t.equal(code, 1, 'the command line refuses --record with --out')
  t.equal(stderr.trim(), 'bench: --record writes to bench/results; --out names another directory: give one of them', 'and says why, before any peer started')
})

t.test('wrk support: Lua script and output parsing', async (t) => {
  const script = luaScript({
    url: 'http://127.0.0.1:1/echo?a=1',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"a":[[1]]}',
    connections: 1,
    pipelining: 10,
    duration: 1,
  })
  t.match(script, 'wrk.method = [[POST]]')
  t.match(script, 'wrk.headers[ [[content-type]] ] = [[application/json]]')
  t.match(script, 'wrk.body = [=[{"a":[[1]]}]=]', 'a body holding ]] gets a long string of a higher level')
  t.match(script, 'local depth = 10')
  t.match(script, 'wrk.format(nil, [[/echo?a=1]])')
  const output = [
    'Running 1s test @ http://127.0.0.1:1/hello',
    '  1 threads and 100 connections',
    '  Latency Distribution',
    '     50%  750.00us',
    '     99%    2.50ms',
    '  41234 requests in 1.00s, 5.50MB read',
    '  Non-2xx or 3xx responses: 3',
    '  Socket errors: connect 1, read 2, write 0, timeout 4',
    'Requests/sec:  41234.00',
    'Transfer/sec:      5.50MB',
    '0m0.01s 0m0.00s',
    '0m0.50s 0m0.25s',
  ].join('\n')
  t.same(parseWrk(output, 1), {
    requests: 41234,
    seconds: 1,
    bytes: Math.round(5.5 * 1024 * 1024),
    p50: 0.75,
    p99: 2.5,
    errors: 3,
    timeouts: 4,
    non2xx: 3,
    clientCpu: 0.75,
  })
})

/** The Bun and Deno peers, by runtime; a runtime whose binary (from its npm package) is missing is skipped, saying so. */
const RUNTIME_PEERS = {
  bun: ['bun', 'bun-hono', 'bun-elysia', 'bun-postern'],
  deno: ['deno', 'deno-hono', 'deno-postern'],
} as const
const missingBinary = (runtime: 'bun' | 'deno'): string | false => {
  const binary = join(ROOT, 'node_modules/.bin', runtime)
  return existsSync(binary) ? false : `${runtime} is not installed (${binary} missing): its peers are not covered`
}

for (const runtime of ['bun', 'deno'] as const) {
  const peers = RUNTIME_PEERS[runtime]
  t.test(`on ${runtime}: every peer answers scenarios 1–5 correctly; scenario 8 is skipped`, { skip: missingBinary(runtime) }, async (t) => {
    const { code, stdout, stderr } = await bench(['--check', '--only', '1,2,3,4,5,8', '--peers', peers.join(',')])
    t.equal(code, 0, `--check exits 0 (stderr: ${stderr.slice(-500)})`)
    const lines = stdout.trim().split('\n')
    for (const scenario of ['1', '2', '3', '4', '5']) for (const peer of peers) t.ok(lines.includes(`scenario ${scenario} · ${peer}: ok`), `scenario ${scenario} · ${peer}: ok`)
    for (const peer of peers)
      t.ok(
        lines.some((l) => l.startsWith(`scenario 8 · ${peer}: skipped (does not serve this scenario`)),
        `${peer} is listed as skipped for scenario 8`,
      )
  })
}

t.test(
  'quick run with Node, Bun and Deno peers: grouped by runtime, ratios to the runtime’s bare server',
  { skip: missingBinary('bun') && missingBinary('deno') ? 'neither bun nor deno is installed' : false },
  async (t) => {
    // A runtime whose binary is missing is left out of the run, and the test says so.
    const runtimes = (['bun', 'deno'] as const).filter((runtime) => {
      const missing = missingBinary(runtime)
      if (missing !== false) t.comment(`skipped: ${missing}`)
      return missing === false
    })
    const out = mkdtempSync(join(tmpdir(), 'postern-bench-test-'))
    t.teardown(() => rmSync(out, { recursive: true, force: true }))
    const peers = ['node', ...runtimes.flatMap((runtime) => RUNTIME_PEERS[runtime])]
    const { code, stderr } = await bench(['--quick', '--only', '2', '--peers', peers.join(','), '--duration', '1', '--rounds', '1', '--warmup', '0', '--out', out])
    t.equal(code, 0, `bench exits 0 (stderr: ${stderr.slice(-500)})`)
    const json = readdirSync(out).find((f) => f.endsWith('.json'))
    const report = JSON.parse(readFileSync(join(out, json ?? ''), 'utf8')) as ReportJson & { peers: Array<{ name: string; runtime: string }> }
    t.same(
      report.peers.map((p) => `${p.name}:${p.runtime}`),
      peers.map((name) => `${name}:${name.startsWith('bun') ? 'bun' : name.startsWith('deno') ? 'deno' : 'node'}`),
      'every peer carries its runtime',
    )
    for (const runtime of runtimes) t.match(report.meta.versions[runtime], /^\d+\.\d+\.\d+/, `${runtime}'s version is recorded`)
    t.match(report.meta.versions, { elysia: /^\d+\.\d+\.\d+/ }, 'and Elysia’s')
    for (const cell of report.cells) {
      t.equal(cell.problem, undefined, `${cell.peer} answered correctly without errors`)
      t.ok(typeof cell.median === 'number' && cell.median > 0, `${cell.peer} has a positive req/s (${String(cell.median)})`)
      // Server CPU per request: fractions of a core over req/s, a few µs to a few hundred on any machine.
      t.ok(cell.serverCpuPerUnit > 0.5 && cell.serverCpuPerUnit < 5000, `${cell.peer} has a plausible server CPU per request (${cell.serverCpuPerUnit.toFixed(2)} µs)`)
    }
    const markdown = readFileSync(join(out, 'latest.md'), 'utf8')
    for (const [runtime, name, bare] of [
      ['bun', 'Bun', 'Bun.serve (bare)'],
      ['deno', 'Deno', 'Deno.serve (bare)'],
    ] as const) {
      if (!runtimes.includes(runtime)) continue
      const rows = table(markdown.slice(markdown.indexOf('## 2 · ')), new RegExp(`^On ${name} \\d+\\.\\d+\\.\\d+`))
      t.same(
        rows[0],
        ['peer', 'median', 'min–max', 'p99 ms', `vs ${bare}`, 'vs Hono', 'client CPU', 'server CPU', 'server µs/req'],
        `${name}'s table compares with its bare server and Hono`,
      )
      t.equal(rows.length, 2 + RUNTIME_PEERS[runtime].length, `${name}'s table has one row per ${name} peer`)
      t.same(rows[2]?.slice(0, 1), [bare], 'the bare server comes first')
      t.equal(rows[2]?.[4], '1.00×', 'and is its own base')
      for (const row of rows.slice(3)) t.match(row[4] ?? '', /^\d+\.\d\d×$/, `${row[0] ?? ''} has a ratio to ${bare}`)
      for (const row of rows.slice(2)) t.match(row[8] ?? '', /^\d+\.\d\d$/, `${row[0] ?? ''} shows its server CPU per request`)
    }
    const summary = table(markdown, /^## Summary/)
    t.same(
      summary.slice(2).map((r) => r[0]),
      ['node:http (bare)'],
      'the Node group stays the first summary table, as before',
    )
  },
)
