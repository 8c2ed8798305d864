/**
 * A server in its own process, watched from outside: start it, learn its
 * port and pid from its first JSON line, read its open file descriptors and
 * resident memory from /proc (no cooperation from the server, so a leak
 * cannot hide), notice when it dies, and stop it. Used by the live fuzzer
 * and the soak, whose verdicts are "the process survived" and "its
 * descriptors came back to where they started".
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { createInterface } from 'node:readline'

export interface ServerProcess {
  port: number
  pid: number
  /** Set once the process has exited: how. */
  exit: { code: number | null; signal: string | null } | null
  /** The last few KB of its standard error. */
  stderr(): string
  /** Lines written to standard error so far. */
  stderrLines(): number
  /** Closes its stdin (it closes the server and exits), killing it after `graceMs`. */
  stop(graceMs?: number): Promise<void>
}

/** Starts `node [nodeArgs] --import tsx script args…` and waits for its `{"port":…}` line. */
export function startServerProcess(script: string, args: string[] = [], nodeArgs: string[] = []): Promise<ServerProcess> {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'production' },
  })
  let stderr = ''
  let lines = 0
  child.stderr.on('data', (d: Buffer) => {
    const text = d.toString()
    lines += text.split('\n').length - 1
    stderr = (stderr + text).slice(-8000)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${script} did not start within 30 s: ${stderr.slice(-500)}`))
    }, 30_000)
    let started = false
    const proc: ServerProcess = {
      port: 0,
      pid: child.pid ?? -1,
      exit: null,
      stderr: () => stderr,
      stderrLines: () => lines,
      async stop(graceMs = 5000) {
        if (proc.exit !== null) return
        child.stdin.end()
        const kill = setTimeout(() => child.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(kill)
      },
    }
    child.once('exit', (code, signal) => {
      proc.exit = { code, signal }
      clearTimeout(timer)
      if (!started) reject(new Error(`${script} exited (${String(code ?? signal)}) before listening: ${stderr.slice(-500)}`))
    })
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (started) return
      let message: { port?: unknown; error?: unknown }
      try {
        message = JSON.parse(line) as typeof message
      } catch {
        return
      }
      if (typeof message.error === 'string') return reject(new Error(`${script}: ${message.error}`))
      if (typeof message.port !== 'number') return
      started = true
      clearTimeout(timer)
      proc.port = message.port
      resolve(proc)
    })
  })
}

/** How many file descriptors process `pid` has open. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

/** What each of `pid`'s descriptors points at (`socket:[…]`, a path, …), for a report of leaks. */
export function fdTargets(pid: number): string[] {
  const out: string[] = []
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(`${fd} → ${readlinkSync(`/proc/${pid}/fd/${fd}`)}`)
    } catch {
      // closed while we looked
    }
  }
  return out
}

/** Resident set size of process `pid`, in bytes. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
  return m === null ? 0 : Number(m[1]) * 1024
}

/** Polls `read` until it is at most `target` or `timeoutMs` passed; returns the last reading. */
export async function settle(read: () => number, target: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = read()
    if (value <= target || Date.now() >= deadline) return value
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export const MiB = 1024 * 1024
