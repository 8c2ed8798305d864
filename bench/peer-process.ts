/**
 * Starting a peer in its own process (bench/serve.ts) and talking to it:
 * the harness side of the stdin/stdout line protocol. Servers are pinned to
 * one core with taskset, so every peer gets the same single core and the
 * load generator another.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { PeerUnsupported, runtimeBinary, type PeerInfo } from './peer.js'
import type { Route } from './scenarios.js'

export interface MemoryUsage {
  rss: number
  heapTotal: number
  heapUsed: number
  external: number
  arrayBuffers: number
}

export interface PeerProcess {
  peer: PeerInfo
  port: number
  pid: number
  /** Memory after a GC (when started with exposeGc). */
  memory(): Promise<MemoryUsage>
  /** CPU time used so far, microseconds (user + system). */
  cpuMicros(): Promise<number>
  stop(): Promise<void>
}

export interface StartOptions {
  /** Path of taskset, or null to run unpinned. */
  taskset: string | null
  core: number
  keepAliveTimeout?: number
  exposeGc?: boolean
  /** Raise the child's open-file limit to its hard limit (for many idle connections). */
  raiseFdLimit?: boolean
}

const SERVE = fileURLToPath(new URL('./serve.ts', import.meta.url))

/** The taskset binary when it exists and the machine has at least two cores, else null. */
export function findTaskset(cores: number): string | null {
  if (cores < 2) return null
  const probe = spawnSync('taskset', ['-c', '0', 'true'])
  return probe.error === undefined && probe.status === 0 ? 'taskset' : null
}

/**
 * The command that runs bench/serve.ts on the peer's runtime. Bun and Deno
 * load the TypeScript themselves; Deno gets the permissions a server needs and
 * sloppy imports (the sources import `./x.js` for `./x.ts`), as the adapter
 * tests start it.
 */
function serveCommand(peer: PeerInfo, exposeGc: boolean): string[] {
  const binary = runtimeBinary(peer.runtime)
  switch (peer.runtime) {
    case 'node':
      return [process.execPath, ...(exposeGc ? ['--expose-gc'] : []), '--import', 'tsx', SERVE]
    case 'bun':
      return [binary ?? 'bun', 'run', SERVE]
    case 'deno':
      return [
        binary ?? 'deno',
        'run',
        '--quiet',
        '--allow-net',
        '--allow-read',
        '--allow-env',
        '--allow-sys',
        '--unstable-sloppy-imports',
        '--no-lock',
        '--no-check',
        ...(exposeGc ? ['--v8-flags=--expose-gc'] : []),
        SERVE,
      ]
  }
}

export function startPeer(peer: PeerInfo, route: Route, options: StartOptions): Promise<PeerProcess> {
  const node = [...serveCommand(peer, options.exposeGc === true), peer.name, route]
  if (options.keepAliveTimeout !== undefined) node.push(String(options.keepAliveTimeout))
  const argv = options.raiseFdLimit === true ? ['/bin/sh', '-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', ...node] : node
  const [command = process.execPath, ...args] = argv
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'production', NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000)
  })
  const waiting: Array<(value: Record<string, unknown>) => void> = []
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))

  return new Promise<PeerProcess>((resolve, reject) => {
    let started = false
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${peer.name} did not start within 30 s: ${stderr.trim().slice(-300)}`))
    }, 30_000)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (!started) reject(new Error(`${peer.name} exited (${String(code ?? signal)}) before listening: ${firstError(stderr)}`))
    })
    createInterface({ input: child.stdout }).on('line', (line) => {
      let message: Record<string, unknown>
      try {
        message = JSON.parse(line) as Record<string, unknown>
      } catch {
        return // a peer printing to stdout: not ours
      }
      if (!started) {
        if (typeof message['error'] === 'string') return reject(new Error(`${peer.name}: ${message['error']}`))
        if (typeof message['unsupported'] === 'string') return reject(new PeerUnsupported(message['unsupported']))
        if (typeof message['port'] !== 'number') return
        started = true
        clearTimeout(timer)
        const port = message['port']
        // Pinned once started: start-up (module loading, compiling) runs on any core, so many peers start
        // in parallel; every thread that exists now is moved, and threads made later inherit the main thread's core.
        if (options.taskset !== null && child.pid !== undefined) spawnSync(options.taskset, ['-a', '-p', '-c', String(options.core), String(child.pid)], { stdio: 'ignore' })
        const ask = (command: string): Promise<Record<string, unknown>> =>
          new Promise((answer, fail) => {
            if (child.exitCode !== null) return fail(new Error(`${peer.name} has exited`))
            waiting.push(answer)
            child.stdin.write(`${command}\n`)
          })
        resolve({
          peer,
          port,
          pid: child.pid ?? -1,
          memory: async () => (await ask('mem'))['mem'] as MemoryUsage,
          cpuMicros: async () => {
            const cpu = (await ask('cpu'))['cpu'] as { user: number; system: number }
            return cpu.user + cpu.system
          },
          stop: async () => {
            if (child.exitCode === null && child.signalCode === null) {
              child.stdin.end()
              const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
              await exited
              clearTimeout(timer)
            }
          },
        })
        return
      }
      waiting.shift()?.(message)
    })
  })
}

/** The most telling line of a crashed child's stderr. */
function firstError(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  return lines.find((l) => /Error|error:|Cannot find/.test(l)) ?? lines[0] ?? 'no output'
}
