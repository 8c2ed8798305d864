/**
 * `validate(app)`: a conformance checker for the postern Gateway Interface,
 * in the spirit of Python's `wsgiref.validate`. It wraps an app and checks
 * BOTH sides of every call against the rules of lib/gateway.ts that can be
 * checked at run time: the server (the `environ` and `startResponse` it
 * passes in, and how it treats the body) and the app (what it passes to
 * `startResponse`, what it returns, how it reads the input).
 *
 * A conforming app behaves exactly as it would without the wrapper: same
 * status, headers and bytes, and a synchronous array body stays a synchronous
 * array. So it can wrap any app on a real server, in tests or in development.
 *
 * Each violation is a {@link GatewayViolation} whose `rule` names the broken
 * rule. By default it is thrown: inside the app call that makes the server
 * answer 500 and log it, which is the point. With `onViolation` it is
 * reported there instead and the call goes on unchanged (useful to test a
 * server, or to collect violations without breaking responses).
 *
 * ## Rules checked
 *
 * App side (ids from lib/gateway.ts):
 * - `status-form`: the status is `'200 OK'`-like, code 200–599.
 * - `header-form`: headers are an array of `[name, value]` string pairs,
 *   names tokens, values free of CR, LF, NUL and other controls.
 * - `hop-by-hop`: no `Connection`, `Transfer-Encoding`, `Keep-Alive`, ….
 * - `start-response-order`: `startResponse` is called before the first body
 *   chunk (or `write`) and before the body ends; a second call only with
 *   `error`.
 * - `app-result`: the app returns an iterable or async iterable object (or a
 *   promise of one). A bare string is refused: it would be sent one character
 *   at a time; return `[string]`.
 * - `chunk-type`: body and `write()` chunks are `Uint8Array` or `string`.
 * - `content-length`: a `Content-Length` header is one run of digits (if
 *   repeated, with the same value), not on a 204, and the body produces exactly that many bytes (a
 *   `HEAD` request or a 304 response may produce none).
 *
 * App side (ids added here):
 * - `environ-changed`: the app removed or replaced a CGI or `gateway.*` key.
 * - `input-read`: the app read `gateway.input` more than once (a second
 *   iteration, or `bytes()`/`text()` after a read began).
 * - `errors-write`: the app wrote a non-string to `gateway.errors`.
 *
 * Server side (ids added here):
 * - `environ-type`: `environ` is not an object, or a key has the wrong type
 *   or form (`REQUEST_METHOD` a token, `SCRIPT_NAME` `''` or `/…` but not
 *   `/`, `PATH_INFO` `''` or `/…`, `SERVER_PROTOCOL` `HTTP/1.0|1.1`,
 *   `SERVER_PORT` digits, `CONTENT_LENGTH` `''` or digits, `HTTP_*` strings
 *   with upper-case names and no CR/LF/NUL, `gateway.version` `[1, n]`,
 *   `gateway.url_scheme` `http|https`, `gateway.multithread|multiprocess|
 *   run_once` booleans).
 * - `environ-key`: a required key is missing, or `HTTP_CONTENT_TYPE` /
 *   `HTTP_CONTENT_LENGTH` is present (they are `CONTENT_TYPE`/`CONTENT_LENGTH`).
 * - `fresh-call`: the server passed an `environ` or `startResponse` it had
 *   already passed to this app.
 * - `input`: `gateway.input` is not an async iterable with `bytes()`,
 *   `text()`, `length` and `trailers`, its `length` disagrees with
 *   `CONTENT_LENGTH`, or it yields something other than `Uint8Array` or a
 *   different number of bytes than `length`.
 * - `errors`: `gateway.errors` has no `write()` and `flush()`.
 * - `start-response`: `startResponse` is not a function, or returns no `write`
 *   function.
 * - `close-called`: the server calls the body's `close()` exactly once. The
 *   wrapped body always has a `close()`; calling it twice, iterating the body
 *   after it, or dropping the body without calling it is reported. The last
 *   can only be seen when the body is garbage-collected (like wsgiref's
 *   `__del__` check); it is then reported to `onViolation`, or else written
 *   to `gateway.errors`, as there is no caller left to throw to.
 */
import { Buffer } from 'node:buffer'
import { isUint8Array } from 'node:util/types'
import type { AppResult, Body, Chunk, Environ, ErrorStream, GatewayApp, GatewayInput, StartResponse, Write } from './spec.js'
import { GATEWAY_VERSION } from './spec.js'
import { checkHeader, isHopByHop, isToken, parseStatus } from './headers.js'

/** The id of a rule, as named in lib/gateway.ts (`[status-form]`) or in the list above. */
export type ViolationRule =
  | 'status-form'
  | 'header-form'
  | 'hop-by-hop'
  | 'start-response-order'
  | 'app-result'
  | 'chunk-type'
  | 'content-length'
  | 'environ-changed'
  | 'input-read'
  | 'errors-write'
  | 'environ-type'
  | 'environ-key'
  | 'fresh-call'
  | 'input'
  | 'errors'
  | 'start-response'
  | 'close-called'

/** A broken rule of the gateway interface; `rule` says which one. */
export class GatewayViolation extends Error {
  readonly rule: ViolationRule
  constructor(rule: ViolationRule, message: string) {
    super(`gateway violation [${rule}]: ${message}`)
    this.name = 'GatewayViolation'
    this.rule = rule
  }
}

export interface ValidateOptions {
  /** Receives each violation instead of it being thrown. */
  onViolation?: (violation: GatewayViolation) => void
}

type Report = (rule: ViolationRule, message: string) => void

/** The CGI keys every environ holds, as strings. */
const CGI_KEYS = [
  'REQUEST_METHOD',
  'SCRIPT_NAME',
  'PATH_INFO',
  'QUERY_STRING',
  'REQUEST_URI',
  'CONTENT_TYPE',
  'CONTENT_LENGTH',
  'SERVER_NAME',
  'SERVER_PORT',
  'SERVER_PROTOCOL',
  'REMOTE_ADDR',
  'REMOTE_PORT',
] as const

const GATEWAY_KEYS = [
  'gateway.version',
  'gateway.url_scheme',
  'gateway.input',
  'gateway.errors',
  'gateway.multithread',
  'gateway.multiprocess',
  'gateway.run_once',
] as const

/** The keys an app must leave as the server set them [environ-changed]. */
const FIXED_KEYS: readonly string[] = [...CGI_KEYS, ...GATEWAY_KEYS]

const DIGITS = /^\d+$/
/** What follows `HTTP_`: an upper-cased token with `-` turned into `_`. */
const HTTP_KEY = /^HTTP_[!#$%&'*+.^_`|~0-9A-Z]+$/
const REQUEST_TARGET = /^[^\x00-\x20\x7f]+$/
const BAD_VALUE_CHAR = /[\r\n\0]/

/**
 * Our wrappers of `gateway.input` / `gateway.errors`, mapped to what they
 * wrap: a validator nested in another one then sees the outer wrapper as the
 * same key, not as a changed one.
 */
const wrapperOf = new WeakMap<object, unknown>()

/** Raises the alarm for a body the server dropped without calling `close()`. */
const unclosed = new FinalizationRegistry<() => void>((alarm) => alarm())

/** Wraps `app` so that every call is checked against the gateway interface. */
export function validate(app: GatewayApp, options: ValidateOptions = {}): GatewayApp {
  const { onViolation } = options
  const seen = new WeakSet<object>()
  const report: Report = (rule, message) => {
    const violation = new GatewayViolation(rule, message)
    if (onViolation) onViolation(violation)
    else throw violation
  }

  return function validated(environ: Environ, startResponse: StartResponse): AppResult {
    if (!checkServerCall(environ, startResponse, seen, report)) return app(environ, startResponse)
    const exchange = new Exchange(environ, report, onViolation)
    const result = app(environ, exchange.startResponse(startResponse))
    return exchange.result(result)
  }
}

// ---------------------------------------------------------------------------
// Server side: the call itself

/**
 * Checks what the server passes in. Returns false when `environ` is not an
 * object at all (only possible with `onViolation`): the call is then passed
 * through unchecked.
 */
function checkServerCall(environ: unknown, startResponse: unknown, seen: WeakSet<object>, report: Report): environ is Environ {
  if (typeof startResponse !== 'function') report('start-response', `startResponse must be a function, got ${describe(startResponse)}`)
  else if (seen.has(startResponse)) report('fresh-call', 'the server passed a startResponse it had already passed to this app')
  else seen.add(startResponse)

  if (typeof environ !== 'object' || environ === null || Array.isArray(environ)) {
    report('environ-type', `environ must be a plain object, got ${describe(environ)}`)
    return false
  }
  if (seen.has(environ)) report('fresh-call', 'the server passed an environ it had already passed to this app')
  else seen.add(environ)
  checkEnviron(environ as Record<string, unknown>, report)
  return true
}

/** The forms of the CGI keys; each returns what is wrong, or null. */
const CGI_FORMS: Partial<Record<(typeof CGI_KEYS)[number], (value: string) => string | null>> = {
  REQUEST_METHOD: (v) => (isToken(v) ? null : 'must be a method token'),
  SCRIPT_NAME: (v) => (v === '/' ? "must be '' at the root, not '/'" : v === '' || v.startsWith('/') ? null : "must be '' or start with '/'"),
  PATH_INFO: (v) => (v === '' || v.startsWith('/') ? null : "must be '' or start with '/'"),
  REQUEST_URI: (v) => (REQUEST_TARGET.test(v) ? null : 'must be a non-empty request target without spaces or control characters'),
  CONTENT_LENGTH: (v) => (v === '' || DIGITS.test(v) ? null : "must be '' or digits"),
  CONTENT_TYPE: (v) => (BAD_VALUE_CHAR.test(v) ? 'must hold no CR, LF or NUL' : null),
  SERVER_NAME: (v) => (v === '' ? 'must not be empty' : null),
  SERVER_PORT: (v) => (DIGITS.test(v) ? null : 'must be digits'),
  SERVER_PROTOCOL: (v) => (v === 'HTTP/1.1' || v === 'HTTP/1.0' ? null : "must be 'HTTP/1.1' or 'HTTP/1.0'"),
  REMOTE_PORT: (v) => (v === '' || DIGITS.test(v) ? null : "must be '' or digits"),
}

function checkEnviron(environ: Record<string, unknown>, report: Report): void {
  for (const key of CGI_KEYS) {
    const value = environ[key]
    if (!(key in environ)) report('environ-key', `environ.${key} is missing`)
    else if (typeof value !== 'string') report('environ-type', `environ.${key} must be a string, got ${describe(value)}`)
    else {
      const wrong = CGI_FORMS[key]?.(value)
      if (wrong) report('environ-type', `environ.${key} ${wrong}, got ${JSON.stringify(value)}`)
    }
  }
  for (const key of Object.keys(environ)) {
    if (!key.startsWith('HTTP_')) continue
    const value = environ[key]
    if (key === 'HTTP_CONTENT_TYPE' || key === 'HTTP_CONTENT_LENGTH') {
      report('environ-key', `environ.${key} must not exist: the header is environ.${key.slice(5)}`)
    } else if (!HTTP_KEY.test(key)) {
      report('environ-type', `environ key ${JSON.stringify(key)} is not HTTP_ + an upper-cased header name`)
    } else if (typeof value !== 'string') {
      report('environ-type', `environ.${key} must be a string, got ${describe(value)}`)
    } else if (BAD_VALUE_CHAR.test(value)) {
      report('environ-type', `environ.${key} must hold no CR, LF or NUL, got ${JSON.stringify(value)}`)
    }
  }
  for (const key of GATEWAY_KEYS) if (!(key in environ)) report('environ-key', `environ['${key}'] is missing`)

  const version = environ['gateway.version']
  if ('gateway.version' in environ && !(Array.isArray(version) && version.length === 2 && version.every((n) => Number.isSafeInteger(n) && n >= 0) && version[0] === GATEWAY_VERSION[0])) {
    report('environ-type', `environ['gateway.version'] must be [${GATEWAY_VERSION[0]}, minor], got ${describe(version)}`)
  }
  const scheme = environ['gateway.url_scheme']
  if ('gateway.url_scheme' in environ && scheme !== 'http' && scheme !== 'https') {
    report('environ-type', `environ['gateway.url_scheme'] must be 'http' or 'https', got ${describe(scheme)}`)
  }
  for (const key of ['gateway.multithread', 'gateway.multiprocess', 'gateway.run_once'] as const) {
    if (key in environ && typeof environ[key] !== 'boolean') report('environ-type', `environ['${key}'] must be a boolean, got ${describe(environ[key])}`)
  }
  if ('gateway.input' in environ) checkInput(environ['gateway.input'], environ['CONTENT_LENGTH'], report)
  if ('gateway.errors' in environ) checkErrors(environ['gateway.errors'], report)
}

function checkInput(input: unknown, contentLength: unknown, report: Report): input is GatewayInput {
  if (!isObject(input)) {
    report('input', `environ['gateway.input'] must be an object, got ${describe(input)}`)
    return false
  }
  const record = input as Record<string | symbol, unknown>
  const wrong: string[] = []
  if (typeof record[Symbol.asyncIterator] !== 'function') wrong.push('must be async iterable')
  if (typeof record['bytes'] !== 'function') wrong.push('must have a bytes() method')
  if (typeof record['text'] !== 'function') wrong.push('must have a text() method')
  if (!Array.isArray(record['trailers'])) wrong.push('must have an array of trailers')
  const length = record['length']
  if (length !== null && !(typeof length === 'number' && Number.isSafeInteger(length) && length >= 0)) {
    wrong.push(`length must be null or a byte count, got ${describe(length)}`)
  } else if (typeof contentLength === 'string' && DIGITS.test(contentLength) && length !== Number(contentLength)) {
    wrong.push(`length must be ${contentLength} as CONTENT_LENGTH says, got ${describe(length)}`)
  } else if (contentLength === '' && length !== null && length !== 0) {
    wrong.push(`length must be null or 0 when CONTENT_LENGTH is '', got ${describe(length)}`)
  }
  if (wrong.length > 0) report('input', `environ['gateway.input'] ${wrong.join('; ')}`)
  return wrong.length === 0
}

function checkErrors(errors: unknown, report: Report): errors is ErrorStream {
  const ok = isObject(errors) && typeof (errors as Record<string, unknown>)['write'] === 'function' && typeof (errors as Record<string, unknown>)['flush'] === 'function'
  if (!ok) report('errors', `environ['gateway.errors'] must have write() and flush() methods, got ${describe(errors)}`)
  return ok
}

// ---------------------------------------------------------------------------
// One call: the app's use of startResponse, its body, its input

/** The state of one call, shared by the wrappers handed to the app and the server. */
class Exchange {
  private readonly method: string
  /** Whether startResponse has been called (and accepted by the server). */
  private started = false
  private code = 0
  /** The app's Content-Length, when it set a valid one. */
  private contentLength: number | null = null
  /** Body bytes produced so far, by write() and the body. */
  private produced = 0
  private finished = false
  private closeCalls = 0
  private iteratedAfterClose = false
  private inputReads = 0
  private changeReported = false
  private readonly snapshot: Array<[string, unknown]>

  constructor(
    private readonly environ: Environ,
    private readonly report: Report,
    private readonly onViolation: ((v: GatewayViolation) => void) | undefined,
  ) {
    this.method = typeof environ.REQUEST_METHOD === 'string' ? environ.REQUEST_METHOD : ''
    // Input and errors are wrapped in place (as wsgiref does), so the app's
    // reads and writes are checked; the server keeps its own references.
    const input = environ['gateway.input']
    if (checkInputQuietly(input)) environ['gateway.input'] = this.wrapInput(input)
    const errors = environ['gateway.errors']
    if (checkErrorsQuietly(errors)) environ['gateway.errors'] = this.wrapErrors(errors)
    this.snapshot = FIXED_KEYS.filter((key) => key in environ).map((key) => [key, environ[key]])
  }

  // -- startResponse ---------------------------------------------------------

  startResponse(serverStartResponse: StartResponse): StartResponse {
    return (status, headers, ...rest) => {
      const error = rest[0]
      if (this.started && error === undefined) {
        this.report('start-response-order', 'startResponse was called a second time without an error: only an error may replace the response')
      }
      const code = parseStatus(status)
      if (code === -1) this.report('status-form', `status must be three digits 200–599, a space and a reason phrase, like '200 OK'; got ${describe(status)}`)
      const contentLength = this.checkHeaders(headers, code)
      const write = (serverStartResponse as (...args: unknown[]) => unknown)(status, headers, ...rest)
      this.started = true
      this.code = code
      this.contentLength = contentLength
      this.produced = 0 // the server accepted a replacement: what came before is discarded
      if (typeof write !== 'function') {
        this.report('start-response', `startResponse must return a write function, got ${describe(write)}`)
        return write as Write
      }
      return (chunk: Chunk) => {
        this.chunk(chunk, 'write()')
        return (write as Write)(chunk)
      }
    }
  }

  /** Checks headers [header-form] [hop-by-hop]; returns the valid Content-Length or null. */
  private checkHeaders(headers: unknown, code: number): number | null {
    if (!Array.isArray(headers)) {
      this.report('header-form', `headers must be an array of [name, value] pairs, got ${describe(headers)}`)
      return null
    }
    const lengths: string[] = []
    for (const pair of headers as unknown[]) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        this.report('header-form', `each header must be a [name, value] pair, got ${describe(pair)}`)
        continue
      }
      const [name, value] = pair as [unknown, unknown]
      const wrong = checkHeader(name, value)
      if (wrong !== null) {
        this.report('header-form', wrong)
        continue
      }
      const header = name as string
      if (isHopByHop(header)) this.report('hop-by-hop', `header ${JSON.stringify(header)} is hop-by-hop: framing and connections are the server's job`)
      if (header.toLowerCase() === 'content-length') lengths.push(value as string)
    }
    if (lengths.length === 0) return null
    const value = lengths[0] as string
    if (lengths.some((other) => other !== value)) {
      this.report('content-length', `Content-Length headers differ: ${lengths.join(', ')}`)
      return null
    }
    if (!DIGITS.test(value) || !Number.isSafeInteger(Number(value))) {
      this.report('content-length', `Content-Length must be a byte count, got ${JSON.stringify(value)}`)
      return null
    }
    if (code === 204) this.report('content-length', 'a 204 response must not have a Content-Length (RFC 9110 §8.6)')
    return Number(value)
  }

  // -- the body --------------------------------------------------------------

  /** Checks what the app returned [app-result] and wraps the body to watch it. */
  result(result: AppResult): AppResult {
    if (isObject(result) && typeof (result as { then?: unknown }).then === 'function') {
      return Promise.resolve(result).then((body: Body) => this.body(body))
    }
    return this.body(result as Body)
  }

  private body(body: Body): Body {
    this.checkEnvironUnchanged()
    if (Array.isArray(body)) return this.arrayBody(body as Chunk[] & { close?: () => void | Promise<void> })
    const record = body as unknown as Record<symbol, unknown>
    const isSync = isObject(body) && typeof record[Symbol.iterator] === 'function'
    const isAsync = isObject(body) && typeof record[Symbol.asyncIterator] === 'function'
    if (!isSync && !isAsync) {
      const hint = typeof body === 'string' ? ' (a string would be sent one character at a time: return [string])' : ''
      this.report('app-result', `the app must return an iterable or async iterable of chunks, or a promise of one; got ${describe(body)}${hint}`)
      return body
    }
    // The wrapper speaks the same protocols as the body: a sync body stays sync.
    const wrapped = { close: () => this.close(body) } as Body & { close(): void | Promise<void> }
    if (isSync) {
      ;(wrapped as Iterable<Chunk>)[Symbol.iterator] = () => this.syncIterator((body as Iterable<Chunk>)[Symbol.iterator]())
    }
    if (isAsync) {
      ;(wrapped as AsyncIterable<Chunk>)[Symbol.asyncIterator] = () => this.asyncIterator((body as AsyncIterable<Chunk>)[Symbol.asyncIterator]())
    }
    this.watchClose(wrapped)
    return wrapped
  }

  /**
   * An array body is checked at once (it is complete) and handed on as a
   * copy that is still an array, so the server can frame it the same way,
   * with a `close()` (and an iterator) that watch the server.
   */
  private arrayBody(body: Chunk[] & { close?: () => void | Promise<void> }): Body {
    for (const chunk of body) this.chunk(chunk, 'body')
    this.finish()
    const copy = body.slice()
    const self = this
    Object.defineProperty(copy, 'close', { value: () => this.close(body), configurable: true, writable: true })
    Object.defineProperty(copy, Symbol.iterator, {
      configurable: true,
      writable: true,
      value: function* () {
        for (let i = 0; i < copy.length; i++) {
          self.beforeNext()
          yield copy[i] as Chunk
        }
      },
    })
    this.watchClose(copy)
    return copy
  }

  private syncIterator(iterator: Iterator<Chunk>): IterableIterator<Chunk> {
    const wrapped: IterableIterator<Chunk> = {
      next: (...args: [] | [unknown]) => {
        this.beforeNext()
        return this.afterNext(iterator.next(...args))
      },
      [Symbol.iterator]() {
        return wrapped
      },
    }
    if (typeof iterator.return === 'function') wrapped.return = (value?: unknown) => iterator.return!(value)
    if (typeof iterator.throw === 'function') wrapped.throw = (error?: unknown) => iterator.throw!(error)
    return wrapped
  }

  private asyncIterator(iterator: AsyncIterator<Chunk>): AsyncIterableIterator<Chunk> {
    const wrapped: AsyncIterableIterator<Chunk> = {
      next: async (...args: [] | [unknown]) => {
        this.beforeNext()
        return this.afterNext(await iterator.next(...args))
      },
      [Symbol.asyncIterator]() {
        return wrapped
      },
    }
    if (typeof iterator.return === 'function') wrapped.return = async (value?: unknown) => iterator.return!(value)
    if (typeof iterator.throw === 'function') wrapped.throw = async (error?: unknown) => iterator.throw!(error)
    return wrapped
  }

  private beforeNext(): void {
    if (this.closeCalls > 0 && !this.iteratedAfterClose) {
      this.iteratedAfterClose = true
      this.report('close-called', 'the server iterated the body after calling its close()')
    }
  }

  private afterNext<R extends IteratorResult<Chunk>>(result: R): R {
    if (!isObject(result)) return result
    if (result.done) this.finish()
    else this.chunk(result.value, 'body')
    return result
  }

  /** Checks one chunk from the body or write() [chunk-type] [start-response-order] [content-length]. */
  private chunk(chunk: unknown, via: 'body' | 'write()'): void {
    if (typeof chunk !== 'string' && !isUint8Array(chunk)) {
      this.report('chunk-type', `${via} chunks must be Uint8Array or string, got ${describe(chunk)}`)
      return
    }
    if (!this.started) this.report('start-response-order', `the app produced a ${via} chunk before calling startResponse`)
    this.produced += typeof chunk === 'string' ? Buffer.byteLength(chunk, 'utf8') : chunk.byteLength
    if (this.contentLength !== null && this.produced > this.contentLength) {
      this.report('content-length', `the app set Content-Length: ${this.contentLength} but produced at least ${this.produced} bytes`)
      this.contentLength = null // once is enough
    }
  }

  /** The body ended: the response must have been started and be complete. */
  private finish(): void {
    if (this.finished) return
    this.finished = true
    if (!this.started) this.report('start-response-order', 'the body ended without startResponse being called')
    const length = this.contentLength
    if (length !== null && this.produced !== length) {
      const bodiless = this.produced === 0 && (this.method === 'HEAD' || this.code === 304)
      if (!bodiless) this.report('content-length', `the app set Content-Length: ${length} but produced ${this.produced} bytes`)
    }
    this.checkEnvironUnchanged()
  }

  // -- close -----------------------------------------------------------------

  private close(body: Body): void | Promise<void> {
    this.closeCalls++
    if (this.closeCalls > 1) {
      this.report('close-called', `the server called the body's close() ${this.closeCalls} times; it must call it exactly once`)
      return
    }
    unclosed.unregister(this)
    this.checkEnvironUnchanged()
    if (typeof body.close === 'function') return body.close()
  }

  /** Arranges to hear of the body being dropped without close() [close-called]. */
  private watchClose(body: object): void {
    const environ = this.environ
    const report = this.onViolation
    const closeCalls = () => this.closeCalls
    unclosed.register(
      body,
      () => {
        if (closeCalls() > 0) return
        const violation = new GatewayViolation('close-called', "the server dropped the body without calling its close()")
        if (report) return report(violation)
        try {
          ;(environ['gateway.errors'] as ErrorStream).write(violation.message + '\n')
        } catch {
          // no log to report to: nothing more can be done from a finalizer
        }
      },
      this,
    )
  }

  // -- environ ---------------------------------------------------------------

  /** The app must not remove or replace the CGI and gateway keys [environ-changed]. */
  private checkEnvironUnchanged(): void {
    if (this.changeReported) return
    for (const [key, value] of this.snapshot) {
      if (!(key in this.environ)) {
        this.changeReported = true
        return this.report('environ-changed', `the app removed environ['${key}']`)
      }
      if (!sameOrWrapping(this.environ[key], value)) {
        this.changeReported = true
        return this.report('environ-changed', `the app changed environ['${key}'] from ${describe(value)} to ${describe(this.environ[key])}`)
      }
    }
  }

  // -- gateway.input and gateway.errors --------------------------------------

  /** Wraps the input so that the app's reads, and what the server yields, are checked. */
  private wrapInput(input: GatewayInput): GatewayInput {
    const self = this
    const read = (how: string): void => {
      if (++this.inputReads > 1) this.report('input-read', `the app read gateway.input again (${how}) after an earlier read: the body can be read once`)
    }
    const expect = input.length
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
              if (isUint8Array(result.value)) received += result.value.byteLength
              else {
                badChunk = true
                self.report('input', `gateway.input must yield Uint8Array chunks, got ${describe(result.value)}`)
              }
            } else if (expect !== null && received !== expect && !badChunk) {
              self.report('input', `gateway.input yielded ${received} bytes but its length is ${expect}`)
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
        const bytes: unknown = await input.bytes(...args)
        if (!isUint8Array(bytes)) self.report('input', `gateway.input.bytes() must resolve to a Uint8Array, got ${describe(bytes)}`)
        else if (expect !== null && bytes.byteLength !== expect) self.report('input', `gateway.input.bytes() gave ${bytes.byteLength} bytes but its length is ${expect}`)
        return bytes as Uint8Array
      },
      async text(...args: [limit?: number]) {
        read('text()')
        const text: unknown = await input.text(...args)
        if (typeof text !== 'string') self.report('input', `gateway.input.text() must resolve to a string, got ${describe(text)}`)
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

  private wrapErrors(errors: ErrorStream): ErrorStream {
    const wrapped: ErrorStream = {
      write: (message: string) => {
        if (typeof message !== 'string') this.report('errors-write', `gateway.errors.write() takes a string, got ${describe(message)}`)
        return errors.write(message)
      },
      flush: () => errors.flush(),
    }
    wrapperOf.set(wrapped, errors)
    return wrapped
  }
}

// ---------------------------------------------------------------------------
// Helpers

function isObject(value: unknown): value is object {
  return (typeof value === 'object' && value !== null) || typeof value === 'function'
}

/** Whether the input looks usable enough to wrap (its faults were reported already). */
function checkInputQuietly(input: unknown): input is GatewayInput {
  return checkInput(input, undefined, () => {})
}

function checkErrorsQuietly(errors: unknown): errors is ErrorStream {
  return checkErrors(errors, () => {})
}

/** Whether `current` is `expected`, or one of our wrappers around it (a nested validator's). */
function sameOrWrapping(current: unknown, expected: unknown): boolean {
  for (let value = current; ; value = wrapperOf.get(value as object)) {
    if (Object.is(value, expected)) return true
    if (!isObject(value) || !wrapperOf.has(value)) return false
  }
}

/** A short description of a value for messages. */
function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 60) + '…' : value)
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`
  if (typeof value === 'undefined' || typeof value === 'symbol') return typeof value
  if (typeof value === 'function') return 'a function'
  if (Array.isArray(value)) return value.length <= 4 ? `[${value.map(describe).join(', ')}]` : `an array of ${value.length}`
  const name = (value as { constructor?: { name?: string } }).constructor?.name
  return name ? `a ${name}` : 'an object'
}
