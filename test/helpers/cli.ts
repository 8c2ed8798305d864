/**
 * Runs the real `postern` command (bin/postern.js) as a child process, for
 * the CLI tests: to completion for calls that must fail, or in the
 * background for calls that serve, with its output and the processes it
 * started observable from outside (/proc, so Linux only). Every wait is
 * bounded, and a test that ends with the command still running kills it
 * and every process it started.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const BIN = fileURLToPath(new URL('../../bin/postern.js', import.meta.url))

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A fresh folder in the system's temp folder, removed when the test ends. */
export function tempDir(t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the command to completion (for the calls that must fail fast); one that serves instead is killed after a minute. */
export async function runPostern(args: string[], cwd = ROOT): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const [code] = (await once(child, 'exit')) as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface Postern {
  child: ChildProcess
  pid: number
  /** Standard output and standard error, interleaved as they came. */
  output(): string
  /** Resolves the first match of `pattern` in the output from `from` on, waiting for it (bounded). */
  waitFor(pattern: RegExp, options?: { from?: number; ms?: number }): Promise<RegExpExecArray>
  /** Every process started by the command so far, at any depth. */
  descendants(): number[]
  /** Sends SIGTERM (once) and resolves how the command exited. */
  stop(): Promise<Exit>
  exit: Promise<Exit>
}

/** Starts the command in the background; `cwd` defaults to the repository. */
export function startPostern(t: Test, args: string[], cwd = ROOT): Postern {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const waiters = new Set<() => void>()
  const onData = (d: Buffer) => {
    out += d.toString()
    for (const check of waiters) check()
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  const exit = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  // Children are remembered as they are seen: once the command is gone, /proc no longer links them to it.
  const seen = new Set<number>()
  const descendants = () => {
    for (const pid of descendantsOf(child.pid!)) seen.add(pid)
    return [...seen]
  }
  const waitFor = (pattern: RegExp, options: { from?: number; ms?: number } = {}) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const { from = 0, ms = 60_000 } = options
      const timer = setTimeout(() => done(new Error(`no ${pattern} within ${ms} ms in:\n${out}`)), ms)
      const check = () => {
        const match = pattern.exec(out.slice(from))
        if (match !== null) done(null, match)
      }
      const done = (error: Error | null, match?: RegExpExecArray) => {
        clearTimeout(timer)
        waiters.delete(check)
        if (error !== null) reject(error)
        else resolve(match!)
      }
      waiters.add(check)
      void exit.then(() => setImmediate(() => waiters.has(check) && done(new Error(`postern exited before ${pattern}:\n${out}`))))
      check()
    })
  let stopping: Promise<Exit> | null = null
  const stop = () => {
    descendants()
    if (stopping === null) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      stopping = exit
    }
    return stopping
  }
  t.teardown(async () => {
    // A failed test must not leave processes behind for the next one.
    const pids = descendants()
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exit
    }
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL')
  })
  return { child, pid: child.pid!, output: () => out, waitFor, descendants, stop, exit }
}

/** Whether `pid` is a running process (a zombie has ended: only its exit status is left to collect). */
export function alive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`
  if (!existsSync(stat)) return false
  try {
    return readFileSync(stat, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z'
  } catch {
    return false
  }
}

/** The processes below `root` (children, grandchildren, …), from /proc. */
export function descendantsOf(root: number): number[] {
  const parentOf = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // The fourth field of /proc/PID/stat, after the parenthesised command name, is the parent pid.
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8')
        .replace(/^.*\) /s, '')
        .split(' ')
      parentOf.set(Number(entry), Number(fields[1]))
    } catch {
      // The process ended while the list was read.
    }
  }
  const found: number[] = []
  const frontier = [root]
  while (frontier.length > 0) {
    const parent = frontier.pop()!
    for (const [pid, ppid] of parentOf) {
      if (ppid === parent) {
        found.push(pid)
        frontier.push(pid)
      }
    }
  }
  return found
}

/** Maps `items` through `fn`, at most `limit` at a time: each call starts a process, and test machines are often small. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

/** Waits until none of `pids` runs (bounded), and returns the ones still running. */
export async function stillRunning(pids: number[], ms = 5_000): Promise<number[]> {
  const until = Date.now() + ms
  while (pids.some(alive) && Date.now() < until) await sleep(50)
  return pids.filter(alive)
}
