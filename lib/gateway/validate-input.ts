/**
 * The `gateway.input` and `gateway.errors` that `validate()` puts in the
 * environ in place of the server's (as wsgiref does), so that both sides of
 * every read and write are checked: the app reads the body once
 * [input-read] and writes strings to the log [errors-write]; the server's
 * input yields bytes that agree with its `length` [input] and honours the
 * `limit` of `bytes()`/`text()` [input-limit].
 */
import type { ErrorStream, GatewayInput } from './spec.js'
import { statusOf } from './errors.js'
import { describe, isObject, type Reporter } from './validate-report.js'

/**
 * Our wrappers, mapped to what they wrap: a validator nested in another one
 * then sees the outer wrapper as the same `gateway.input`, not a changed one.
 */
const wrapperOf = new WeakMap<object, unknown>()

/** Whether `current` is `expected`, or one of our wrappers around it (a nested validator's). */
export function sameOrWrapping(current: unknown, expected: unknown): boolean {
  for (let value = current; ; value = wrapperOf.get(value as object)) {
    if (Object.is(value, expected)) return true
    if (!isObject(value) || !wrapperOf.has(value)) return false
  }
}

/** A limit the app passed to `bytes()`/`text()`, when it is one (else the server's default applies). */
function limitOf(args: [limit?: number]): number | null {
  const limit = args[0]
  return typeof limit === 'number' && limit >= 0 && Number.isFinite(limit) ? limit : null
}

/** Wraps the server's input: the app's reads and what the server gives back are checked. */
export function wrapInput(input: GatewayInput, reporter: Reporter): GatewayInput {
  let reads = 0
  const read = (how: string): void => {
    if (++reads > 1) reporter.report('input-read', `the app read gateway.input again (${how}) after an earlier read: the body can be read once`)
  }
  const expect = input.length

  /**
   * A rejected `bytes(limit)`/`text(limit)` [input-limit]: a body declared
   * over the limit must be refused with 413, one declared within it must not.
   */
  const checkRejection = (how: string, limit: number | null, error: unknown): void => {
    if (limit === null || expect === null) return
    const status = statusOf(error)
    if (expect > limit && status !== 413) {
      reporter.report('input-limit', `gateway.input.${how}(${limit}) of a body of ${expect} bytes must reject with a 413 GatewayError, got ${describe(error)}`)
    } else if (expect <= limit && status === 413) {
      reporter.report('input-limit', `gateway.input.${how}(${limit}) refused a body of ${expect} bytes with 413: it is within the limit`)
    }
  }

  const wrapped: GatewayInput = {
    [Symbol.asyncIterator]() {
      read('by iterating it')
      const iterator = input[Symbol.asyncIterator]()
      let received = 0
      let badChunk = false
      const it: AsyncIterableIterator<Uint8Array> = {
        async next(...args: [] | [unknown]) {
          const result = await iterator.next(...args)
          if (!isObject(result)) return result
          if (!result.done) {
            if (result.value instanceof Uint8Array) received += result.value.byteLength
            else {
              badChunk = true
              reporter.report('input', `gateway.input must yield Uint8Array chunks, got ${describe(result.value)}`)
            }
          } else if (expect !== null && received !== expect && !badChunk) {
            reporter.report('input', `gateway.input yielded ${received} bytes but its length is ${expect}`)
          }
          return result
        },
        [Symbol.asyncIterator]() {
          return it
        },
      }
      if (typeof iterator.return === 'function') it.return = async (value?: unknown) => iterator.return!(value)
      return it
    },
    async bytes(...args: [limit?: number]) {
      read('bytes()')
      const limit = limitOf(args)
      let bytes: unknown
      try {
        bytes = await input.bytes(...args)
      } catch (error) {
        checkRejection('bytes', limit, error)
        throw error
      }
      if (!(bytes instanceof Uint8Array)) reporter.report('input', `gateway.input.bytes() must resolve to a Uint8Array, got ${describe(bytes)}`)
      else if (limit !== null && bytes.byteLength > limit) {
        reporter.report('input-limit', `gateway.input.bytes(${limit}) gave ${bytes.byteLength} bytes: over the limit it must reject with a 413 GatewayError`)
      } else if (expect !== null && bytes.byteLength !== expect) {
        reporter.report('input', `gateway.input.bytes() gave ${bytes.byteLength} bytes but its length is ${expect}`)
      }
      return bytes as Uint8Array
    },
    async text(...args: [limit?: number]) {
      read('text()')
      const limit = limitOf(args)
      let text: unknown
      try {
        text = await input.text(...args)
      } catch (error) {
        checkRejection('text', limit, error)
        throw error
      }
      if (typeof text !== 'string') reporter.report('input', `gateway.input.text() must resolve to a string, got ${describe(text)}`)
      else if (limit !== null && text.length > limit) {
        // UTF-8 decoding never makes more UTF-16 code units than there were bytes.
        reporter.report(
          'input-limit',
          `gateway.input.text(${limit}) gave ${text.length} characters, so more than ${limit} bytes: over the limit it must reject with a 413 GatewayError`,
        )
      }
      return text as string
    },
    get length() {
      return input.length
    },
    get trailers() {
      return input.trailers
    },
  }
  wrapperOf.set(wrapped, input)
  return wrapped
}

/** Wraps the server's error stream: the app must write strings [errors-write]. */
export function wrapErrors(errors: ErrorStream, reporter: Reporter): ErrorStream {
  const wrapped: ErrorStream = {
    write: (message: string) => {
      if (typeof message !== 'string') reporter.report('errors-write', `gateway.errors.write() takes a string, got ${describe(message)}`)
      return errors.write(message)
    },
    flush: () => errors.flush(),
  }
  wrapperOf.set(wrapped, errors)
  return wrapped
}
