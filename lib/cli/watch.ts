/**
 * `postern app.ts:app --watch`: this process watches the app's folder and
 * runs the server as a child process, the same command without `--watch`,
 * so each start is a fresh process that loads the app's modules afresh.
 * When files change (a burst of saves counts once) it restarts the server:
 * the old one stops accepting and drains its requests in flight while the
 * new one starts on the same port. A server that cannot load (a syntax
 * error mid-edit) has said why; the watcher waits for the next change.
 *
 * The server tells the watcher, over the IPC channel, when it serves
 * (`ready`, with its URL: a `--port 0` server keeps its port across
 * restarts) and when it has let go of the port (`closed`, as its drain
 * begins). If the watcher dies, the channel closes and the server drains
 * and exits, so none is left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { isAbsolute, relative } from 'node:path'
import { ECHO_MS } from './graceful.js'
import { EXIT, type ReadyMessage } from './supervisor-ipc.js'
import { watchTrees, type TreeWatcher } from './watch-files.js'

/** Set in the server's environment by the watcher. */
const WATCHED_ENV = 'POSTERN_WATCHED'
/** A burst of saves (an editor's write and rename, a formatter, a checkout) within this quiet time is one change. */
export const DEBOUNCE_MS = 100
/** Beyond the drain deadline, how long a stopping server gets before SIGKILL. */
const KILL_MARGIN_MS = 2_000

/** The server let go of its listening socket: a new one can bind the port. */
export interface ClosedMessage {
  postern: 'closed'
}

/** The parts of node:util parseArgs' tokens the server's command line is rebuilt from. */
export type ArgToken =
  | { kind: 'option'; name: string; rawName: string; value: string | undefined; inlineValue: boolean | undefined }
  | { kind: 'positional'; value: string }
  | { kind: 'option-terminator' }

/** The command line without the options named in `drop` (so without `--watch`, and the port the watcher pins). */
export function commandWithout(tokens: readonly ArgToken[], drop: readonly string[]): string[] {
  const args: string[] = []
  for (const token of tokens) {
    if (token.kind === 'option-terminator') args.push('--')
    else if (token.kind === 'positional') args.push(token.value)
    else if (drop.includes(token.name)) continue
    else if (token.value === undefined) args.push(token.rawName)
    else if (token.inlineValue === true) args.push(token.rawName.startsWith('--') ? `${token.rawName}=${token.value}` : `${token.rawName}${token.value}`)
    else args.push(token.rawName, token.value)
  }
  return args
}

// ── the server's side ────────────────────────────────────────────────────

let watched: boolean | undefined

/** True in a server the watcher started. The variable is then removed, so the app's own child processes do not take it. */
export function isWatchedServer(): boolean {
  if (watched === undefined) {
    watched = process.env[WATCHED_ENV] === '1' && typeof process.send === 'function'
    delete process.env[WATCHED_ENV]
  }
  return watched
}

/** In a watched server: stop (as SIGTERM does: drain, then exit) when the watcher is gone. */
export function followWatcher(): void {
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'))
}

/** In a watched server: tell the watcher the port is free. */
export function reportClosed(): void {
  const message: ClosedMessage = { postern: 'closed' }
  if (process.connected) process.send?.(message)
}

// ── the watcher's side ───────────────────────────────────────────────────

export interface WatchOptions {
  /** Folders to watch (absolute), recursively. */
  roots: readonly string[]
  /** The server's command line (arguments after the script), listening on `port`. */
  serverArgs: (port: number) => string[]
  /** The port asked for; 0 picks one at the first start and keeps it. */
  port: number
  /** The server's drain deadline, in ms. */
  drainTimeout: number
  /** Paths in log lines are shown relative to this folder. */
  cwd: string
  /** Where log lines go; default standard error. */
  log?: (line: string) => void
}

interface Server {
  readonly child: ChildProcess
  readonly pid: number
  /** Asked to stop (SIGTERM sent). */
  stopping: boolean
  /** Resolves once the port is free: the server said `closed`, or exited. */
  readonly released: Promise<void>
  release(): void
  readonly timers: NodeJS.Timeout[]
}

/** Runs the watcher until it is stopped; resolves the exit code. */
export function watch(options: WatchOptions): Promise<number> {
  return new Watcher(options).run()
}

class Watcher {
  private readonly options: WatchOptions
  private readonly log: (line: string) => void
  private readonly servers = new Set<Server>()
  private current: Server | null = null
  private files: TreeWatcher | null = null
  private port: number
  private readonly changed = new Set<string>()
  private debounce: NodeJS.Timeout | null = null
  /** Counts restarts: a restart waiting for the port gives way to a later one. */
  private generation = 0
  private stopping = false
  private firstInterrupt = 0
  private exitCode: number = EXIT.ok
  private resolveExit: ((code: number) => void) | null = null

  constructor(options: WatchOptions) {
    this.options = options
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`))
    this.port = options.port
  }

  run(): Promise<number> {
    const exited = new Promise<number>((resolve) => (this.resolveExit = resolve))
    process.on('SIGTERM', () => this.onStopSignal('SIGTERM'))
    process.on('SIGINT', () => this.onStopSignal('SIGINT'))
    process.on('SIGHUP', () => {
      if (!this.stopping) void this.restart('SIGHUP')
    })
    this.files = watchTrees(this.options.roots, (path) => this.onChange(path))
    this.start()
    return exited
  }

  private onChange(path: string): void {
    if (this.stopping) return
    this.changed.add(path)
    if (this.debounce !== null) clearTimeout(this.debounce)
    this.debounce = setTimeout(() => {
      this.debounce = null
      const paths = [...this.changed]
      this.changed.clear()
      const first = this.show(paths[0]!)
      const others = paths.length - 1
      void this.restart(others === 0 ? `${first} changed` : `${first} and ${others} other file${others === 1 ? '' : 's'} changed`)
    }, DEBOUNCE_MS)
  }

  private async restart(reason: string): Promise<void> {
    const generation = ++this.generation
    this.log(`postern: ${reason}; restarting`)
    const old = this.current
    this.current = null
    if (old !== null) this.retire(old)
    // The new server binds the port: wait until every older one has let go of it.
    await Promise.all([...this.servers].map((server) => server.released))
    if (this.stopping || generation !== this.generation) return
    this.start()
  }

  private start(): void {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...this.options.serverArgs(this.port)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, [WATCHED_ENV]: '1' },
    })
    let release = () => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    const server: Server = { child, pid: child.pid ?? 0, stopping: false, released, release, timers: [] }
    this.servers.add(server)
    this.current = server
    child.on('message', (message: unknown) => this.onMessage(server, message))
    child.on('error', (error) => this.log(`postern: cannot start the server: ${error.message}`))
    child.on('exit', (code, signal) => this.onExit(server, code, signal))
  }

  private onMessage(server: Server, message: unknown): void {
    if (message === null || typeof message !== 'object') return
    const kind = (message as { postern?: unknown }).postern
    if (kind === 'closed') server.release()
    else if (kind === 'ready' && this.port === 0) {
      // Later servers take the same port, so the URL the user opened keeps working.
      const url = (message as Partial<ReadyMessage>).url
      const port = typeof url === 'string' && URL.canParse(url) ? Number(new URL(url).port) : 0
      if (Number.isSafeInteger(port) && port > 0) this.port = port
    }
  }

  private onExit(server: Server, code: number | null, signal: NodeJS.Signals | null): void {
    for (const timer of server.timers) clearTimeout(timer)
    this.servers.delete(server)
    server.release()
    if (this.stopping) {
      if (code !== EXIT.ok) this.exitCode = Math.max(this.exitCode, EXIT.cut)
      if (this.servers.size === 0) this.finish()
      return
    }
    if (server !== this.current) return // an old server done draining
    this.current = null
    const how = signal !== null ? `killed by ${signal}` : `exit code ${code}`
    this.log(`postern: the server stopped (${how}); waiting for a file change to restart`)
  }

  /** Asks a server to drain (SIGTERM), and kills it if it outlives the deadline. */
  private retire(server: Server): void {
    if (server.stopping) return
    server.stopping = true
    server.child.kill('SIGTERM')
    const limit = this.options.drainTimeout + KILL_MARGIN_MS
    server.timers.push(
      setTimeout(() => {
        this.log(`postern: server ${server.pid} still running ${limit} ms after SIGTERM; killing it`)
        server.child.kill('SIGKILL')
      }, limit),
    )
  }

  private onStopSignal(signal: 'SIGTERM' | 'SIGINT'): void {
    if (!this.stopping) {
      this.stopping = true
      if (signal === 'SIGINT') this.firstInterrupt = Date.now()
      if (this.debounce !== null) clearTimeout(this.debounce)
      this.files?.close()
      if (this.servers.size === 0) {
        this.finish()
        return
      }
      this.log(`postern: ${signal}: draining (deadline ${this.options.drainTimeout} ms; SIGINT again stops at once)`)
      for (const server of this.servers) this.retire(server)
      return
    }
    if (signal !== 'SIGINT') return
    if (this.firstInterrupt !== 0 && Date.now() - this.firstInterrupt < ECHO_MS) return
    this.log('postern: SIGINT again: stopping at once')
    this.exitCode = EXIT.cut
    for (const server of this.servers) server.child.kill('SIGKILL')
  }

  private finish(): void {
    this.resolveExit?.(this.exitCode)
    this.resolveExit = null
  }

  private show(path: string): string {
    const rel = relative(this.options.cwd, path)
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path
  }
}
