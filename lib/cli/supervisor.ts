/**
 * The supervisor behind `postern --workers N`, in the spirit of gunicorn's
 * arbiter, on node:cluster (round-robin: the primary owns the listening
 * socket and hands each connection to a worker).
 *
 * - It keeps N workers alive. A worker that dies unexpectedly is logged
 *   (pid, exit code or signal) and replaced; one that dies before it was
 *   ready, or soon after, is replaced after an exponential back-off, and
 *   after {@link MAX_BOOT_FAILURES} workers in a row failed to boot it stops
 *   everything and exits {@link EXIT.bootFailed}, so a service manager sees
 *   the failure instead of a half-dead service.
 * - SIGHUP reloads with no downtime: one worker at a time, a new worker
 *   (a new process, so it imports the app's code afresh) is forked and
 *   waited for, then the old one drains. A new worker that cannot boot stops
 *   the reload and the old workers keep serving.
 * - SIGTERM, or SIGINT once, drains every worker within the drain deadline;
 *   the exit code is 0 only when every worker stopped cleanly. SIGINT again
 *   kills the workers at once and exits 1.
 *
 * If the supervisor itself dies, cluster workers exit when their IPC
 * channel closes, so none linger.
 */
import cluster, { type Worker } from 'node:cluster'
import { ECHO_MS } from './graceful.js'
import { EXIT, asWorkerMessage, type BootErrorMessage } from './supervisor-ipc.js'

export interface SupervisorOptions {
  /** How many workers to keep serving (≥ 1). */
  workers: number
  /** The workers' drain deadline, in ms: a stop waits this long (and a little more) before killing a worker. */
  drainTimeout: number
  /** The line printed on standard output once every worker is ready. */
  servingLine: (url: string, workers: number) => string
  /** Where log lines go; default standard error. */
  log?: (line: string) => void
  /** Called with the URL once every worker is ready (after the serving line). */
  onServing?: (url: string) => void
}

/** Consecutive workers that die before they are ready before the supervisor gives up. */
export const MAX_BOOT_FAILURES = 5
/** The first back-off delay; each early death in a row doubles it, up to the cap. */
const BACKOFF_BASE_MS = 100
const BACKOFF_CAP_MS = 5_000
/** A worker that served this long proves the code runs: the back-off starts over. */
const STABLE_MS = 1_000
/** A worker that is not listening after this long is hung at boot, and killed. */
const BOOT_TIMEOUT_MS = 30_000
/** Beyond the drain deadline, how long a draining worker gets before SIGKILL. */
const KILL_MARGIN_MS = 2_000

interface WorkerState {
  readonly worker: Worker
  readonly pid: number
  readyAt: number | null
  /** Asked to stop: its exit is expected and not replaced. */
  retiring: boolean
  /** Forked by a reload: failing to boot stops the reload, nothing more. */
  readonly candidate: boolean
  bootError: BootErrorMessage | null
  readonly timers: NodeJS.Timeout[]
  /** Called once with whether the worker got ready (false when it exited first). */
  onReady: ((ready: boolean) => void) | null
}

/** Runs the supervisor until it stops; resolves the exit code for the primary. */
export function supervise(options: SupervisorOptions): Promise<number> {
  return new Supervisor(options).run()
}

class Supervisor {
  private readonly options: SupervisorOptions
  private readonly log: (line: string) => void
  private readonly states = new Map<Worker, WorkerState>()
  private readonly pendingForks = new Set<NodeJS.Timeout>()
  private url: string | null = null
  private announced = false
  private everReady = false
  private bootFailures = 0
  private earlyDeaths = 0
  private lastBootError: string | null = null
  private reloading = false
  private reloadAgain = false
  private stopping = false
  private exitCode: number = EXIT.ok
  private firstInterrupt = 0
  private resolveExit: ((code: number) => void) | null = null

  constructor(options: SupervisorOptions) {
    if (!Number.isSafeInteger(options.workers) || options.workers < 1) throw new TypeError(`postern: workers must be a whole number ≥ 1, got ${String(options.workers)}`)
    this.options = options
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`))
  }

  run(): Promise<number> {
    const exited = new Promise<number>((resolve) => (this.resolveExit = resolve))
    cluster.schedulingPolicy = cluster.SCHED_RR
    process.on('SIGTERM', () => this.onStopSignal('SIGTERM'))
    process.on('SIGINT', () => this.onStopSignal('SIGINT'))
    process.on('SIGHUP', () => {
      if (this.stopping) return
      void this.reload()
    })
    for (let i = 0; i < this.options.workers; i++) this.fork(false)
    return exited
  }

  // ── workers ────────────────────────────────────────────────────────────

  private fork(candidate: boolean): WorkerState {
    const worker = cluster.fork()
    const state: WorkerState = {
      worker,
      pid: worker.process.pid ?? 0,
      readyAt: null,
      retiring: false,
      candidate,
      bootError: null,
      timers: [],
      onReady: null,
    }
    this.states.set(worker, state)
    this.log(`postern: worker ${state.pid} booting`)
    state.timers.push(
      setTimeout(() => {
        if (state.readyAt !== null) return
        this.log(`postern: worker ${state.pid} is not ready after ${BOOT_TIMEOUT_MS} ms; killing it`)
        worker.process.kill('SIGKILL')
      }, BOOT_TIMEOUT_MS),
    )
    worker.on('message', (message: unknown) => this.onMessage(state, message))
    worker.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.onExit(state, code, signal))
    worker.on('error', (error: Error) => this.log(`postern: worker ${state.pid}: ${error.message}`))
    return state
  }

  private onMessage(state: WorkerState, raw: unknown): void {
    const message = asWorkerMessage(raw)
    if (message === null) return
    if (message.postern === 'boot-error') {
      state.bootError = message
      return
    }
    if (state.readyAt !== null) return
    state.readyAt = Date.now()
    this.url ??= message.url
    this.everReady = true
    this.bootFailures = 0
    state.timers.push(
      setTimeout(() => {
        if (this.states.has(state.worker)) this.earlyDeaths = 0
      }, STABLE_MS),
    )
    const onReady = state.onReady
    state.onReady = null
    onReady?.(true)
    if (this.stopping) return
    if (!this.announced) {
      if (this.readyCount() >= this.options.workers) {
        this.announced = true
        process.stdout.write(`${this.options.servingLine(this.url, this.options.workers)}\n`)
        this.options.onServing?.(this.url)
      }
    } else if (!state.candidate) {
      this.log(`postern: worker ${state.pid} ready`)
    }
  }

  private onExit(state: WorkerState, code: number | null, signal: NodeJS.Signals | null): void {
    for (const timer of state.timers) clearTimeout(timer)
    this.states.delete(state.worker)
    const onReady = state.onReady
    state.onReady = null
    const how = signal !== null ? `killed by ${signal}` : `exit code ${code}`
    if (this.stopping) {
      // A worker stopped before it listened had nothing to drain, however it ended.
      const clean = code === EXIT.ok || (state.readyAt === null && signal === 'SIGTERM')
      if (!clean) {
        this.exitCode = Math.max(this.exitCode, EXIT.cut)
        if (signal !== null) this.log(`postern: worker ${state.pid} ${how}`)
      }
      onReady?.(false)
      if (this.states.size === 0) this.finish()
      return
    }
    if (state.retiring) {
      if (code !== EXIT.ok) this.log(`postern: old worker ${state.pid} stopped (${how})`)
      return
    }
    if (state.candidate && state.readyAt === null) {
      onReady?.(false)
      return
    }
    const now = Date.now()
    const booting = state.readyAt === null
    const early = booting || now - (state.readyAt ?? now) < STABLE_MS
    if (booting && state.bootError?.usage === true && !this.everReady) {
      // A typo in the module, the export or the port: no retry can fix it.
      this.log(`postern: ${state.bootError.message}`)
      this.halt(EXIT.usage)
      return
    }
    if (booting) this.bootFailures++
    if (early) this.earlyDeaths++
    const when = booting ? ', before it was ready' : early ? `, ${now - (state.readyAt ?? now)} ms after it was ready` : ''
    this.log(`postern: worker ${state.pid} died (${how}${when})${this.describeBootError(state)}`)
    if (this.bootFailures >= MAX_BOOT_FAILURES) {
      this.log(`postern: ${MAX_BOOT_FAILURES} workers in a row failed to boot; stopping (exit ${EXIT.bootFailed})`)
      this.halt(EXIT.bootFailed)
      return
    }
    const delay = early ? Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (this.earlyDeaths - 1)) : 0
    if (this.topUp(delay) > 0) this.log(`postern: replacing worker ${state.pid}${delay > 0 ? ` in ${delay} ms` : ''}`)
  }

  /** The boot error a worker reported, once in full; a repeat is only named. */
  private describeBootError(state: WorkerState): string {
    const message = state.bootError?.message
    if (message === undefined) return ''
    if (message === this.lastBootError) return ': the same error as before'
    this.lastBootError = message
    return `: ${message}`
  }

  /** Forks (after `delay`) as many workers as are missing; returns how many. */
  private topUp(delay: number): number {
    let live = this.pendingForks.size
    for (const state of this.states.values()) if (!state.retiring) live++
    const missing = Math.max(0, this.options.workers - live)
    for (let i = 0; i < missing; i++) {
      const timer = setTimeout(() => {
        this.pendingForks.delete(timer)
        if (!this.stopping) this.fork(false)
      }, delay)
      this.pendingForks.add(timer)
    }
    return missing
  }

  private readyCount(): number {
    let ready = 0
    for (const state of this.states.values()) if (state.readyAt !== null && !state.retiring) ready++
    return ready
  }

  /** Asks a worker to drain (SIGTERM), and kills it if it outlives the deadline. */
  private retire(state: WorkerState): void {
    if (state.retiring) return
    state.retiring = true
    state.worker.process.kill('SIGTERM')
    state.timers.push(
      setTimeout(() => {
        this.log(`postern: worker ${state.pid} still running ${this.options.drainTimeout + KILL_MARGIN_MS} ms after SIGTERM; killing it`)
        state.worker.process.kill('SIGKILL')
      }, this.options.drainTimeout + KILL_MARGIN_MS),
    )
  }

  // ── reload ─────────────────────────────────────────────────────────────

  private async reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true
      this.log('postern: SIGHUP: a reload is running; another will follow it')
      return
    }
    this.reloading = true
    try {
      do {
        this.reloadAgain = false
        const old = [...this.states.values()].filter((state) => !state.retiring)
        this.log(`postern: SIGHUP: reloading ${old.length} worker${old.length === 1 ? '' : 's'} one at a time`)
        for (const previous of old) {
          if (this.stopping) return
          // A worker that died meanwhile was replaced by a process that loaded the new code already.
          if (!this.states.has(previous.worker)) continue
          const fresh = this.fork(true)
          const ready = await new Promise<boolean>((resolve) => (fresh.onReady = resolve))
          if (this.stopping) return
          if (!ready) {
            this.log(`postern: reload stopped: new worker ${fresh.pid} failed to boot${this.describeBootError(fresh)}; the other workers keep serving`)
            this.topUp(0)
            return
          }
          if (this.states.has(previous.worker)) {
            this.retire(previous)
            this.log(`postern: worker ${fresh.pid} ready; worker ${previous.pid} drains and stops`)
          }
        }
        const pids = [...this.states.values()].filter((state) => !state.retiring).map((state) => state.pid)
        this.log(`postern: reload done: workers ${pids.join(', ')}`)
      } while (this.reloadAgain && !this.stopping)
    } finally {
      this.reloading = false
    }
  }

  // ── stopping ───────────────────────────────────────────────────────────

  private onStopSignal(signal: 'SIGTERM' | 'SIGINT'): void {
    if (!this.stopping) {
      if (signal === 'SIGINT') this.firstInterrupt = Date.now()
      this.log(
        `postern: ${signal}: stopping ${this.states.size} worker${this.states.size === 1 ? '' : 's'} (drain deadline ${this.options.drainTimeout} ms; SIGINT again stops at once)`,
      )
      this.stop(EXIT.ok)
      return
    }
    if (signal !== 'SIGINT') return
    if (this.firstInterrupt !== 0 && Date.now() - this.firstInterrupt < ECHO_MS) return
    this.log('postern: SIGINT again: killing the workers')
    this.exitCode = Math.max(this.exitCode, EXIT.cut)
    for (const state of this.states.values()) state.worker.process.kill('SIGKILL')
  }

  /** Gives up on keeping workers alive: drains the ones left and exits with `code`. */
  private halt(code: number): void {
    this.stop(code)
  }

  private stop(code: number): void {
    if (this.stopping) return
    this.stopping = true
    this.exitCode = Math.max(this.exitCode, code)
    for (const timer of this.pendingForks) clearTimeout(timer)
    this.pendingForks.clear()
    for (const state of this.states.values()) this.retire(state)
    if (this.states.size === 0) this.finish()
  }

  private finish(): void {
    const code = this.exitCode
    this.log(code === EXIT.ok ? 'postern: stopped' : `postern: stopped (exit ${code})`)
    this.resolveExit?.(code)
    this.resolveExit = null
  }
}
