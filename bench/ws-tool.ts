/**
 * The WebSocket load tool: one bench/ws-load.ts process for the whole run,
 * pinned to the load generator's core and fed one job a line (so its
 * start-up is outside every measured run), on Bun with its native client
 * (about a quarter less CPU per echo than the `ws` client on Node, measured
 * on this bench's 2-core machine: the client should not be the bottleneck)
 * or on Node with `ws` when Bun is not installed or `--ws-client node` asks.
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { LoadResult, LoadTool } from './load.js'
import { packageVersion } from './load.js'
import { runtimeBinary } from './peer.js'

export type WsClient = 'bun' | 'node'

const LOAD = fileURLToPath(new URL('./ws-load.ts', import.meta.url))

/** The client to use: the one asked for, else Bun's when its binary is installed, else Node's. */
export function pickWsClient(asked: string | undefined): WsClient {
  if (asked !== undefined && asked !== 'bun' && asked !== 'node') throw new Error(`--ws-client must be bun or node, got ${JSON.stringify(asked)}`)
  const bun = runtimeBinary('bun')
  const hasBun = bun !== null && existsSync(bun)
  if (asked === 'bun' && !hasBun) throw new Error(`--ws-client bun: ${bun ?? 'bun'} is missing (npm ci installs it)`)
  return (asked as WsClient | undefined) ?? (hasBun ? 'bun' : 'node')
}

/** `bun --version`, or 'unknown'. */
function bunVersion(): string {
  try {
    return execFileSync(runtimeBinary('bun') ?? 'bun', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return 'unknown'
  }
}

type Answer = { result: LoadResult } | { error: string }

export function wsTool(client: WsClient, taskset: string | null, core: number): LoadTool {
  const command = client === 'bun' ? [runtimeBinary('bun') ?? 'bun', 'run', LOAD] : [process.execPath, '--import', 'tsx', LOAD]
  const [file = process.execPath, ...args] = [...(taskset === null ? [] : [taskset, '-c', String(core)]), ...command]
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)))
  const waiting: Array<{ resolve: (r: LoadResult) => void; reject: (e: Error) => void }> = []
  createInterface({ input: child.stdout }).on('line', (line) => {
    let answer: Answer
    try {
      answer = JSON.parse(line) as Answer
    } catch {
      return // not ours
    }
    const waiter = waiting.shift()
    if ('result' in answer) waiter?.resolve(answer.result)
    else waiter?.reject(new Error(`ws-load: ${answer.error}`))
  })
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      for (const waiter of waiting.splice(0)) waiter.reject(new Error(`ws-load exited with ${String(code)}: ${stderr.trim().slice(-300)}`))
      resolve()
    }),
  )
  child.on('error', () => {})
  return {
    name: 'ws-load',
    version: client === 'bun' ? `(Bun ${bunVersion()} native client)` : `(ws ${packageVersion('ws')} client on Node)`,
    placement: taskset === null ? 'one process, unpinned' : `one process pinned to core ${core}`,
    run(job) {
      return new Promise<LoadResult>((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`ws-load has exited: ${stderr.trim().slice(-300)}`))
        waiting.push({ resolve, reject })
        child.stdin.write(`${JSON.stringify(job)}\n`)
      })
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin.end()
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      }
    },
  }
}
