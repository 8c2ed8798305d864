/**
 * wrk as the load generator (`--tool wrk`): one thread, pinned like the
 * autocannon child, driven by a small Lua script written to a temporary file
 * that sets method, headers and body and, for pipelining, sends N requests
 * in one write. Its CPU time comes from the shell's `times` builtin, which
 * reports the user and system time of the shell's finished children.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { LoadJob, LoadResult, LoadTool } from './load.js'

/** wrk's version, or null when it is not installed. */
export function wrkVersion(): string | null {
  const probe = spawnSync('wrk', ['-v'], { encoding: 'utf8' })
  if (probe.error !== undefined) return null
  const match = /wrk\s+(\S+)/.exec(`${probe.stdout}${probe.stderr}`)
  return match?.[1] ?? 'unknown'
}

/** A Lua long string that cannot be closed by its content. */
function luaString(value: string): string {
  let level = ''
  while (value.includes(`]${level}]`)) level += '='
  return `[${level}[${value}]${level}]`
}

export function luaScript(job: LoadJob): string {
  const path = new URL(job.url).pathname + new URL(job.url).search
  const lines = [`wrk.method = ${luaString(job.method)}`]
  for (const [name, value] of Object.entries(job.headers)) lines.push(`wrk.headers[ ${luaString(name)} ] = ${luaString(value)}`)
  if (job.body !== undefined) lines.push(`wrk.body = ${luaString(job.body)}`)
  lines.push(
    `local depth = ${job.pipelining}`,
    'local batch',
    'init = function(args)',
    '  local r = {}',
    `  for i = 1, depth do r[i] = wrk.format(nil, ${luaString(path)}) end`,
    '  batch = table.concat(r)',
    'end',
    'request = function() return batch end',
  )
  return `${lines.join('\n')}\n`
}

const UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 }
const SIZES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }

/** Parses wrk's report (with `--latency`) and the `times` lines after it. */
export function parseWrk(output: string, wallSeconds: number): LoadResult {
  const ms = (pct: string): number => {
    const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(output)
    return m === null ? NaN : Number(m[1]) * (UNITS[m[2] ?? 'ms'] ?? 1)
  }
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB|TB) read/.exec(output)
  if (total === null) throw new Error(`cannot read wrk output: ${output.slice(0, 300)}`)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output)
  const times = [...output.matchAll(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/g)]
  const children = times.at(-1)
  const cpuSeconds = children === undefined ? NaN : Number(children[1]) * 60 + Number(children[2]) + Number(children[3]) * 60 + Number(children[4])
  const seconds = (Number(total[2]) * (UNITS[total[3] ?? 's'] ?? 1000)) / 1000
  return {
    requests: Number(total[1]),
    seconds,
    bytes: Math.round(Number(total[4]) * (SIZES[total[5] ?? 'B'] ?? 1)),
    p50: ms('50'),
    p99: ms('99'),
    errors: socket === null ? 0 : Number(socket[1]) + Number(socket[2]) + Number(socket[3]),
    timeouts: socket === null ? 0 : Number(socket[4]),
    non2xx: non2xx === null ? 0 : Number(non2xx[1]),
    clientCpu: cpuSeconds / wallSeconds,
  }
}

export function wrkTool(version: string, taskset: string | null, core: number): LoadTool {
  const dir = mkdtempSync(join(tmpdir(), 'postern-wrk-'))
  let n = 0
  return {
    name: 'wrk',
    version,
    placement: taskset === null ? 'one thread, unpinned' : `one thread pinned to core ${core}`,
    run(job) {
      const script = join(dir, `job-${n++}.lua`)
      writeFileSync(script, luaScript(job))
      const args = ['-t1', `-c${job.connections}`, `-d${job.duration}s`, '--timeout', '10s', '--latency', '-s', script, job.url]
      const command = [...(taskset === null ? [] : [taskset, '-c', String(core)]), 'wrk', ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ')
      const t0 = performance.now()
      return new Promise<LoadResult>((resolve, reject) => {
        const child = spawn('/bin/sh', ['-c', `${command}; status=$?; times; exit $status`], { stdio: ['ignore', 'pipe', 'pipe'] })
        let out = ''
        child.stdout.on('data', (d: Buffer) => (out += d.toString()))
        child.stderr.on('data', (d: Buffer) => (out += d.toString()))
        child.on('error', reject)
        child.on('close', (code) => {
          if (code !== 0) return reject(new Error(`wrk exited with ${String(code)}: ${out.slice(0, 300)}`))
          // wrk reports a Lua error and carries on with its default request: that would measure the wrong thing.
          const scriptError = out.split('\n').find((line) => line.startsWith(`${script}:`))
          if (scriptError !== undefined) return reject(new Error(`wrk script error: ${scriptError}`))
          try {
            resolve(parseWrk(out, (performance.now() - t0) / 1000))
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)))
          }
        })
      })
    },
    close() {
      rmSync(dir, { recursive: true, force: true })
      return Promise.resolve()
    },
  }
}
