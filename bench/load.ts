/**
 * The load generators. Both give the same {@link LoadResult} so the harness
 * and the report need not care which one measured a cell; each also reports
 * how much CPU the generator itself burned, because a saturated client
 * measures the client, not the server.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export interface LoadJob {
  url: string
  method: string
  headers: Record<string, string>
  body?: string
  connections: number
  pipelining: number
  /** Seconds. */
  duration: number
  /** Stop after this many requests instead (autocannon only; the memory bench uses it). */
  amount?: number
}

export interface LoadResult {
  /** Completed responses. */
  requests: number
  /** Wall time of the run, seconds. */
  seconds: number
  /** Response bytes received (head and body). */
  bytes: number
  /** Latency percentiles, milliseconds. */
  p50: number
  p99: number
  /** Connection errors, timeouts and non-2xx responses. */
  errors: number
  timeouts: number
  non2xx: number
  /** CPU time the load generator used over the run, as a fraction of one core. */
  clientCpu: number
}

export interface LoadTool {
  name: string
  version: string
  /** Where the generator runs, for the report. */
  placement: string
  run(job: LoadJob): Promise<LoadResult>
  close(): Promise<void>
}

/** Messages between the harness and bench/load-worker.ts. */
export type WorkerRequest = { type: 'run'; id: number; job: LoadJob }
export type WorkerReply = { type: 'result'; id: number; result: LoadResult } | { type: 'error'; id: number; message: string }

export function packageVersion(name: string): string {
  try {
    const url = new URL(`../node_modules/${name}/package.json`, import.meta.url)
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version
  } catch {
    return 'not installed'
  }
}

/**
 * autocannon, driven through its API in a child process of its own (pinned
 * to `core` when taskset is available), so its CPU time is measured apart
 * from the harness's and the servers'.
 */
export function autocannonTool(taskset: string | null, core: number): LoadTool {
  const worker = fileURLToPath(new URL('./load-worker.ts', import.meta.url))
  const child: ChildProcess =
    taskset === null
      ? fork(worker, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      : fork(worker, [], { execPath: taskset, execArgv: ['-c', String(core), process.execPath, '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let next = 0
  const pending = new Map<number, { resolve: (r: LoadResult) => void; reject: (e: Error) => void }>()
  child.on('message', (message: WorkerReply) => {
    const waiter = pending.get(message.id)
    if (waiter === undefined) return
    pending.delete(message.id)
    if (message.type === 'result') waiter.resolve(message.result)
    else waiter.reject(new Error(message.message))
  })
  child.on('exit', (code) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`load generator exited with ${String(code)}`))
    pending.clear()
  })
  return {
    name: 'autocannon',
    version: packageVersion('autocannon'),
    placement: taskset === null ? 'child process, unpinned' : `child process pinned to core ${core}`,
    run(job) {
      const id = next++
      return new Promise<LoadResult>((resolve, reject) => {
        pending.set(id, { resolve, reject })
        const request: WorkerRequest = { type: 'run', id, job }
        child.send(request)
      })
    },
    close() {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
      return new Promise<void>((resolve) => {
        child.once('exit', () => resolve())
        child.disconnect()
      })
    },
  }
}
