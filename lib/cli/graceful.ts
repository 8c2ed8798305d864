/**
 * How one serving process (alone, or a supervised worker) answers signals:
 * SIGTERM or SIGINT drains (the server stops accepting, requests in flight
 * finish within the drain deadline) and exits 0, or 1 when requests had to
 * be cut; a second SIGINT exits at once with 1. SIGHUP never kills a
 * serving process: a worker leaves reloading to its supervisor, a lone
 * process says that reloading needs `--workers`.
 */
import { EXIT } from './supervisor-ipc.js'

export interface GracefulOptions {
  /** Prefix of log lines: `postern`, or `postern: worker <pid>`. */
  name: string
  /** Workers stay quiet about the stop itself: the supervisor speaks for them. */
  quiet: boolean
  /** Milliseconds the server lets requests finish, for the log line. */
  drainTimeout: number
  /** Logged on SIGHUP; null ignores it silently. */
  hangup: string | null
  /** Where log lines go; default standard error. */
  log?: (line: string) => void
  /** Called once draining began: the listening socket is closed, so another process may take the port. */
  onDrain?: () => void
}

/**
 * A terminal's Ctrl-C reaches every process of the foreground group, and
 * `npm run` forwards the signal it got too, so one key press can arrive as
 * two SIGINTs a few milliseconds apart. A repeat closer than this is that
 * echo, not a second press.
 */
export const ECHO_MS = 150

/** The stop state of this process; {@link draining} feeds the health endpoint. */
export class Graceful {
  /** True once a stop began: health checks answer 503 so balancers move on. */
  draining = false
  private close: (() => Promise<{ cut: number }>) | null = null
  private firstInterrupt = 0
  private readonly options: GracefulOptions
  private readonly log: (line: string) => void

  constructor(options: GracefulOptions) {
    this.options = options
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`))
  }

  /** Takes over SIGTERM, SIGINT and SIGHUP; until {@link serving}, a stop has nothing to drain and exits at once. */
  install(): void {
    process.on('SIGTERM', () => this.stop('SIGTERM'))
    process.on('SIGINT', () => this.stop('SIGINT'))
    process.on('SIGHUP', () => {
      if (this.options.hangup !== null) this.log(`${this.options.name}: SIGHUP: ${this.options.hangup}`)
    })
  }

  /** The server is up: a stop from now on drains it through `close`. */
  serving(close: () => Promise<{ cut: number }>): void {
    this.close = close
  }

  private stop(signal: 'SIGTERM' | 'SIGINT'): void {
    const { name, quiet } = this.options
    if (this.draining) {
      if (signal !== 'SIGINT') return
      if (this.firstInterrupt !== 0 && Date.now() - this.firstInterrupt < ECHO_MS) return
      if (!quiet) this.log(`${name}: SIGINT again: stopping at once`)
      process.exit(EXIT.cut)
    }
    this.draining = true
    if (signal === 'SIGINT') this.firstInterrupt = Date.now()
    if (this.close === null) process.exit(EXIT.ok)
    if (!quiet) this.log(`${name}: ${signal}: draining (deadline ${this.options.drainTimeout} ms; SIGINT again stops at once)`)
    this.drain()
  }

  private drain(): void {
    const close = this.close
    if (close === null) return
    const closed = close()
    this.options.onDrain?.()
    closed.then(
      ({ cut }) => {
        if (cut > 0) this.log(`${this.options.name}: cut ${cut} request${cut === 1 ? '' : 's'} still in flight at the ${this.options.drainTimeout} ms drain deadline`)
        process.exit(cut > 0 ? EXIT.cut : EXIT.ok)
      },
      (error: unknown) => {
        this.log(`${this.options.name}: closing failed: ${error instanceof Error ? error.message : String(error)}`)
        process.exit(EXIT.cut)
      },
    )
  }
}
