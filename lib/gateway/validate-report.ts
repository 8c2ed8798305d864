/**
 * How `validate()` reports a broken rule, and how it words the values it
 * names. One {@link Reporter} per validated app: each violation is thrown
 * (inside the call, so the server answers 500 and logs it) or, with
 * `onViolation`, handed there while the call goes on unchanged.
 */
import type { ErrorStream } from './spec.js'
import { GatewayViolation, type RuleId } from './rules.js'

export class Reporter {
  constructor(private readonly onViolation: ((violation: GatewayViolation) => void) | undefined) {}

  /** Reports that `rule` was broken. */
  report(rule: RuleId, message: string): void {
    this.raise(new GatewayViolation(rule, message))
  }

  /** Throws `violation`, or hands it to `onViolation`. */
  raise(violation: GatewayViolation): void {
    if (this.onViolation) this.onViolation(violation)
    else throw violation
  }

  /**
   * Runs one check of lib/gateway/rules.ts (the code every server runs), so
   * the rule id and wording are the server's; a violation it throws is
   * reported and `fallback` returned.
   */
  check<T>(fallback: T, run: () => T): T {
    try {
      return run()
    } catch (error) {
      if (!(error instanceof GatewayViolation)) throw error
      this.raise(error)
      return fallback
    }
  }

  /**
   * Reports a violation seen where no caller is left to throw to (a
   * finalizer): to `onViolation`, else as one line to the request's error
   * stream. Never throws.
   */
  late(violation: GatewayViolation, errors: unknown): void {
    try {
      if (this.onViolation) this.onViolation(violation)
      else (errors as ErrorStream).write(`${violation.message}\n`)
    } catch {
      // no log to report to: nothing more can be done from a finalizer
    }
  }
}

/** Whether a value may hold properties (an object or a function). */
export function isObject(value: unknown): value is object {
  return (typeof value === 'object' && value !== null) || typeof value === 'function'
}

/** A short description of a value for messages: its type, and what it is when short. */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`
  if (typeof value === 'undefined' || typeof value === 'symbol') return typeof value
  if (typeof value === 'function') return 'a function'
  if (Array.isArray(value)) return value.length <= 4 ? `[${value.map(describe).join(', ')}]` : `an array of ${value.length}`
  const name = (value as { constructor?: { name?: string } }).constructor?.name
  return name ? `a ${name}` : 'an object'
}
