/**
 * {@link CheckedCall}: one validated call, seen from both ends of the body.
 * It hands the app a checking `startResponse` and hands the server a
 * checking body. The app's side is checked with the rule code of
 * lib/gateway/rules.ts that every server runs ([status-form] [header-form]
 * [hop-by-hop] [chunk-type] [content-length]), plus what only a wrapper sees
 * ([start-response-order] [app-result] [environ-changed]); the server's use
 * of the body is checked too: `close()` exactly once, no iteration after it
 * [close-called]. A WebSocket offer in the environ is wrapped to check the
 * extension's order too (validate-websocket.ts) [ws-app].
 */
import type { AppResult, Body, Chunk, Environ, StartResponse, Write } from './spec.js'
import { GatewayViolation, checkHeaders, checkStatus, chunkLength, hasNoBody } from './rules.js'
import { FIXED_KEYS, isUsableErrors, isUsableInput } from './validate-server.js'
import { sameOrWrapping, wrapErrors, wrapInput } from './validate-input.js'
import { describe, isObject, type Reporter } from './validate-report.js'
import { WEBSOCKET_KEY, checkOffer, wrapOffer, type OfferWatch } from './validate-websocket.js'

/** Raises the alarm for a body the server dropped without calling `close()`. */
const unclosed = new FinalizationRegistry<() => void>((alarm) => alarm())

type ClosableBody = Body & { close(): void | Promise<void> }

/** The state of one call, shared by the wrappers handed to the app and the server. */
export class CheckedCall {
  private readonly method: string
  /** Whether startResponse has been called (and accepted by the server). */
  private started = false
  private code = 0
  /** The app's Content-Length, when it set a valid one; -1 when none. */
  private declared = -1
  /** Body bytes produced so far, by write() and the body. */
  private produced = 0
  private finished = false
  private closeCalls = 0
  private iteratedAfterClose = false
  private changeReported = false
  private readonly snapshot: Array<[string, unknown]>
  /** The WebSocket offer's side of the call: whether the app accepted. */
  private readonly watch: OfferWatch

  constructor(
    private readonly environ: Environ,
    private readonly reporter: Reporter,
  ) {
    this.method = typeof environ.REQUEST_METHOD === 'string' ? environ.REQUEST_METHOD : ''
    // Input and errors are wrapped in place (as wsgiref does), so the app's
    // reads and writes are checked; the server keeps its own references.
    const input = environ['gateway.input']
    if (isUsableInput(input)) environ['gateway.input'] = wrapInput(input, reporter)
    const errors = environ['gateway.errors']
    if (isUsableErrors(errors)) environ['gateway.errors'] = wrapErrors(errors, reporter)
    const call = this
    this.watch = {
      get started() {
        return call.started
      },
      accepted: false,
    }
    const offer = checkOffer(environ, reporter)
    if (offer !== null) environ[WEBSOCKET_KEY] = wrapOffer(offer, this.watch, reporter)
    this.snapshot = FIXED_KEYS.filter((key) => key in environ).map((key) => [key, environ[key]])
  }

  // -- startResponse ---------------------------------------------------------

  /** The `startResponse` the app gets: checks its arguments before the server sees them. */
  startResponse(serverStartResponse: StartResponse): StartResponse {
    const reporter = this.reporter
    return (status, headers, ...rest) => {
      const error = rest[0]
      if (this.watch.accepted) reporter.report('ws-app', 'startResponse called after accept(): an accepted WebSocket has no HTTP response')
      else if (this.started && error === undefined) {
        reporter.report('start-response-order', 'startResponse was called a second time without an error: only an error may replace the response')
      }
      const code = reporter.check(-1, () => checkStatus(status))
      const declared = reporter.check(-1, () => checkHeaders(headers, code).declaredLength)
      if (code === 204 && declared >= 0) reporter.report('content-length', 'a 204 response must not have a Content-Length (RFC 9110 §8.6)')
      const write = (serverStartResponse as (...args: unknown[]) => unknown)(status, headers, ...rest)
      this.started = true
      this.code = code
      this.declared = declared
      this.produced = 0 // the server accepted a replacement: what came before is discarded
      if (typeof write !== 'function') {
        reporter.report('start-response', `startResponse must return a write function, got ${describe(write)}`)
        return write as Write
      }
      return (chunk: Chunk) => {
        this.chunk(chunk, 'write()')
        return (write as Write)(chunk)
      }
    }
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
    if (this.watch.accepted && !(Array.isArray(body) && body.length === 0)) {
      this.reporter.report('ws-app', `the app returned a body after accept(): it must return [], got ${describe(body)}`)
    }
    if (Array.isArray(body)) return this.arrayBody(body as Chunk[] & { close?: () => void | Promise<void> })
    const record = body as unknown as Record<symbol, unknown>
    const isSync = isObject(body) && typeof record[Symbol.iterator] === 'function'
    const isAsync = isObject(body) && typeof record[Symbol.asyncIterator] === 'function'
    if (!isSync && !isAsync) {
      const hint = typeof body === 'string' ? ' (a string would be sent one character at a time: return [string])' : ''
      this.reporter.report('app-result', `the app must return an iterable or async iterable of chunks, or a promise of one; got ${describe(body)}${hint}`)
      return body
    }
    // The wrapper speaks the same protocols as the body: a sync body stays sync.
    const wrapped = { close: () => this.close(body) } as ClosableBody
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
      this.reporter.report('close-called', 'the server iterated the body after calling its close()')
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
    const length = this.reporter.check(-1, () => chunkLength(chunk))
    if (length < 0) return
    if (!this.started && !this.watch.accepted) this.reporter.report('start-response-order', `the app produced a ${via} chunk before calling startResponse`)
    this.produced += length
    if (this.declared >= 0 && this.produced > this.declared) {
      this.reporter.report('content-length', `the app set Content-Length: ${this.declared} but produced at least ${this.produced} bytes`)
      this.declared = -1 // once is enough
    }
  }

  /** The body ended: the response must have been started and be complete. */
  private finish(): void {
    if (this.finished) return
    this.finished = true
    if (!this.started && !this.watch.accepted) this.reporter.report('start-response-order', 'the body ended without startResponse being called')
    const declared = this.declared
    if (declared >= 0 && this.produced !== declared) {
      // A HEAD, 204 or 304 response carries no body: none produced is fine.
      const bodiless = this.produced === 0 && hasNoBody(this.method, this.code)
      if (!bodiless) this.reporter.report('content-length', `the app set Content-Length: ${declared} but produced ${this.produced} bytes`)
    }
    this.checkEnvironUnchanged()
  }

  // -- close -----------------------------------------------------------------

  private close(body: Body): void | Promise<void> {
    this.closeCalls++
    if (this.closeCalls > 1) {
      this.reporter.report('close-called', `the server called the body's close() ${this.closeCalls} times; it must call it exactly once`)
      return
    }
    unclosed.unregister(this)
    this.checkEnvironUnchanged()
    if (typeof body.close === 'function') return body.close()
  }

  /**
   * Arranges to hear of the body being dropped without close() [close-called].
   * The alarm must not hold the body, or it would never be collected.
   */
  private watchClose(body: object): void {
    const errors = this.environ['gateway.errors']
    const reporter = this.reporter
    const closeCalls = () => this.closeCalls
    unclosed.register(
      body,
      () => {
        if (closeCalls() > 0) return
        reporter.late(new GatewayViolation('close-called', 'the server dropped the body without calling its close()'), errors)
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
        this.reporter.report('environ-changed', `the app removed environ['${key}']`)
        return
      }
      if (!sameOrWrapping(this.environ[key], value)) {
        this.changeReported = true
        this.reporter.report('environ-changed', `the app changed environ['${key}'] from ${describe(value)} to ${describe(this.environ[key])}`)
        return
      }
    }
  }
}
