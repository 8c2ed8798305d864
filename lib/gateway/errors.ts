/**
 * The error policy, in one place for every server, adapter and the
 * framework: which status an error answers with, what the client may read
 * of it, how it is described in the log (whatever was thrown), and where the
 * log goes by default.
 */
import type { ErrorStream, GatewayError } from './spec.js'
import { STATUS_TEXT } from './headers.js'

/**
 * An error's own status: its `status` (or `statusCode`) when that is an
 * integer 400–599, else 0. A {@link GatewayError} carries one; so do the
 * errors of http-errors, Fastify and most libraries. Never throws, whatever
 * was thrown.
 */
export function statusOf(error: unknown): number {
  try {
    if (error === null || typeof error !== 'object') return 0
    const e = error as { status?: unknown; statusCode?: unknown }
    const status = typeof e.status === 'number' ? e.status : e.statusCode
    return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599 ? status : 0
  } catch {
    return 0 // a Proxy whose traps throw
  }
}

/** The status an error answers with before the response started: its own (see {@link statusOf}), else 500. */
export function errorStatus(error: unknown): number {
  return statusOf(error) || 500
}

/**
 * What the client may read of an error answered with `status`: an `Error`'s
 * own message for a 4xx unless its `expose` is false; the status text for a
 * 5xx (unless `expose` is true), whose message could leak internals.
 */
export function publicMessage(error: unknown, status: number): string {
  try {
    if (error instanceof Error) {
      const expose = (error as { expose?: unknown }).expose
      if (expose === true || (status < 500 && expose !== false)) return String(error.message)
    }
  } catch {
    // a Proxy or a throwing getter: say nothing of it
  }
  return STATUS_TEXT[status] ?? 'Error'
}

/** The answer to an error raised before the response started: its status and public message. */
export function errorAnswer(error: unknown): { status: number; message: string } {
  const status = errorStatus(error)
  return { status, message: publicMessage(error, status) }
}

/**
 * Describes a thrown value for the error log, whatever it is: a value without
 * a prototype, an error whose `stack` or `toString` throws, a Proxy whose
 * every trap throws. Servers must keep serving whatever an app throws, so
 * printing the error must never throw in turn.
 */
export function describeError(error: unknown): string {
  try {
    if (error instanceof Error) {
      const stack = error.stack
      if (typeof stack === 'string' && stack !== '') return stack
      return `${String(error.name)}: ${String(error.message)}`
    }
    return String(error)
  } catch {
    try {
      return `[unprintable ${error === null ? 'null' : typeof error}: ${Object.prototype.toString.call(error)}]`
    } catch {
      return '[unprintable thrown value]'
    }
  }
}

/** Writes one message to an error stream; a broken error log must not break the response, so this never throws. */
export function writeLog(errors: ErrorStream, message: string): void {
  try {
    errors.write(message)
  } catch {
    // nowhere left to report it
  }
}

/**
 * Writes `postern: <what>: <error>` to an error stream, one message ending
 * in a newline. A broken error log must not break the response, so this
 * never throws.
 */
export function reportError(errors: ErrorStream, what: string, error: unknown): void {
  try {
    errors.write(`postern: ${what}: ${describeError(error)}\n`)
    errors.flush()
  } catch {
    // nowhere left to report it
  }
}

/** The default error stream: standard error, one line per message. */
export const stderrStream: ErrorStream = {
  write(message: string) {
    process.stderr.write(message.endsWith('\n') ? message : `${message}\n`)
  },
  flush() {},
}
