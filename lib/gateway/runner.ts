/**
 * How a server calls an app, written once (in the spirit of wsgiref's
 * `BaseHandler`): postern's HTTP/1.1 server, the node and fetch adapters and
 * `inject` each subclass {@link GatewayCall} and implement its sink methods,
 * which only move bytes. Everything the spec asks of a server between the
 * request and the bytes is here:
 *
 * - `startResponse` and its rules [status-form] [header-form] [hop-by-hop]
 *   [start-response-order]: replaceable with an error until the first byte;
 * - the result [app-result]: a body or a promise of one, sync or async
 *   iterable; an array is sent whole with its length known;
 * - chunks [chunk-type], the app's Content-Length [content-length], no body
 *   for HEAD/204/304 (still iterated and closed), no Content-Length on a 204;
 * - `close()` exactly once, whatever happened [close-called];
 * - the error policy (errors.ts): an error before the first byte is answered
 *   (500, or the error's own status), after it the response is cut;
 * - the WebSocket extension's order [ws-app]: the server's `accept()` calls
 *   {@link GatewayCall.markUpgraded}, after which the call has no response:
 *   `startResponse` throws, the body (which should be `[]`) is closed and a
 *   non-empty one logged and discarded, and an app error closes the socket
 *   with 1011 (a `send()` rejected because the socket closed is not
 *   reported as one).
 *
 * The hot path makes no promise: a sync app that returns an array runs from
 * `run()` to `sendWhole()` in one call. A streamed body costs one sink call
 * per chunk and a promise only when the sink says to wait.
 */
import type { Body, Chunk, Environ, GatewayApp, Headers, StartResponse, Write } from './spec.js'
import { describeError as describe, errorAnswer } from './errors.js'
import { WebSocketClosedError } from './websocket-transport.js'
import { GatewayViolation, checkHeaders, checkStatus, chunkLength, hasNoBody, lengthHeadersFor, type HeaderFacts } from './rules.js'

const NEW = 0
const STARTED = 1
const COMMITTED = 2
const DONE = 3

/** What the runner needs of an accepted WebSocket: closing it with a server's code. */
export interface UpgradedSocket {
  closeFromServer(code: number, reason: string): void
}

/** Sync bodies are gathered up to this many bytes, so they go out whole with their length. */
const GATHER_LIMIT = 64 * 1024

const EMPTY_BODY: object = Object.freeze([])
/** The headers before `startResponse`: one shared empty list, not an array per call. */
const NO_HEADERS: Headers = []

/**
 * One call of an app for one request. A server makes one per request,
 * calls {@link run}, and implements the sink methods below; it calls
 * {@link abandon} when the client goes away.
 */
export abstract class GatewayCall {
  /** The request method, which decides whether the response has a body. */
  readonly method: string
  /** The request target, for the error log. */
  readonly target: string
  /** The response's status code, once `startResponse` was called. */
  code = 0
  /** The status line's text (`'200 OK'`), once `startResponse` was called. */
  status = ''
  /** The app's headers, checked; a 204's Content-Length and repeated identical lengths removed. */
  headers: Headers = NO_HEADERS
  /** What the headers say (declared length, Date, Server, ASCII). */
  facts: HeaderFacts | null = null
  /** Whether the response carries no body: HEAD, 204, 304. */
  noBody = false
  /** Body bytes produced so far. */
  written = 0
  /** The client went away: no more output. */
  gone = false
  private state = NEW
  /** The body being streamed, so that it can be closed as soon as the client leaves. */
  private streaming: Body | null = null
  private bodyClosed = false
  private writeFn: Write | null = null
  /** The WebSocket the app accepted: the call then has no HTTP response. */
  private upgraded: UpgradedSocket | null = null
  readonly startResponse: StartResponse

  constructor(method: string, target: string) {
    this.method = method
    this.target = target
    this.startResponse = startResponseFor(this)
  }

  // --- the sink: what a server implements ---------------------------------

  /** Sends the head and the whole body, whose length is `total` (chunks checked; none sent when `noBody`). */
  protected abstract sendWhole(chunks: readonly Chunk[], total: number, strings: boolean): void
  /** Sends the head of a body that will stream (its length unknown unless the app declared it). */
  protected abstract sendHead(): void
  /** Sends one non-empty chunk of a streamed body (never called when `noBody`). */
  protected abstract sendChunk(chunk: Chunk, length: number): void
  /** Ends a streamed body that was complete. */
  protected abstract sendEnd(): void
  /** Answers with an error before anything was sent: plain text `message`, status `status`. */
  protected abstract sendError(status: number, message: string): void
  /** Ends a started response abnormally (the connection cut, the stream errored): the client must see it truncated. */
  protected abstract cut(error: unknown): void
  /** Whether the body should wait before producing more (backpressure). */
  protected abstract mustWait(): boolean
  /** Resolves when more output may be produced, or the client is gone. */
  protected abstract waitWritable(): Promise<void>
  /** Writes one line to the server's error log. */
  protected abstract log(message: string): void
  /** The call is over: the response was sent whole, answered with an error, or cut. Nothing to do by default. */
  protected finished(): void {}

  // --- state ----------------------------------------------------------------

  get done(): boolean {
    return this.state === DONE
  }

  /** Whether any byte of the response was produced: it can no longer be replaced. */
  get committed(): boolean {
    return this.state >= COMMITTED
  }

  /** Whether the app accepted a WebSocket upgrade on this call. */
  get isUpgraded(): boolean {
    return this.upgraded !== null
  }

  /**
   * The app called `accept()`: called by the server before it sends the 101.
   * Throws a {@link GatewayViolation} [ws-app] when the order is wrong
   * (`accept()` twice, or after `startResponse`, or after the call ended);
   * the server then sends nothing. From now on the call has no response.
   */
  markUpgraded(socket: UpgradedSocket): void {
    if (this.upgraded !== null) throw new GatewayViolation('ws-app', 'accept() called a second time')
    if (this.state !== NEW) {
      throw new GatewayViolation('ws-app', this.state === DONE || this.gone ? 'accept() called after the request was answered' : 'accept() called after startResponse')
    }
    this.upgraded = socket
    this.state = COMMITTED
  }

  // --- running the app ------------------------------------------------------

  /** Calls the app and sends its response through the sink. */
  run(app: GatewayApp, environ: Environ): void {
    let result: unknown
    let then: unknown
    try {
      result = app(environ, this.startResponse)
      // Reading `then` runs the app's code too (a getter, a Proxy): a throw there is the app's fault.
      then = result !== null && typeof result === 'object' ? (result as PromiseLike<unknown>).then : undefined
    } catch (error) {
      this.fail(error)
      return
    }
    if (typeof then === 'function') {
      try {
        ;(then as PromiseLike<unknown>['then']).call(
          result,
          (body) => this.respond(body),
          (error: unknown) => this.fail(error),
        )
      } catch (error) {
        this.fail(error)
      }
      return
    }
    this.respond(result)
  }

  /** `startResponse`, with the spec's rules. */
  start(status: string, headers: unknown, error?: unknown): Write {
    if (this.upgraded !== null) {
      if (error !== undefined) throw error
      throw new GatewayViolation('ws-app', 'startResponse called after accept(): an accepted WebSocket has no HTTP response')
    }
    if (this.state !== NEW) {
      if (error === undefined) throw new GatewayViolation('start-response-order', 'startResponse called a second time without an error')
      if (this.state >= COMMITTED || this.gone) throw error
    }
    const code = checkStatus(status)
    let facts = checkHeaders(headers, code)
    let list = headers as Headers
    if (facts.declaredLength >= 0) {
      list = lengthHeadersFor(list, code)
      if (code === 204) facts = { ...facts, declaredLength: -1 }
    }
    this.code = code
    this.status = status
    this.headers = list
    this.facts = facts
    this.state = STARTED
    this.noBody = hasNoBody(this.method, code)
    if (this.writeFn === null) this.writeFn = (chunk: Chunk) => this.legacyWrite(chunk)
    return this.writeFn
  }

  private respond(result: unknown): void {
    if (this.state === DONE) {
      this.closeBody(result)
      return
    }
    if (this.upgraded !== null) {
      this.endUpgraded(result)
      return
    }
    // Everything below touches the app's objects (getters, Proxies, iterators): any throw is the app's fault.
    try {
      this.dispatch(result)
    } catch (error) {
      this.closeBody(result)
      this.fail(error)
    }
  }

  /** Sends a body by its kind: an array at once, a sync iterable gathered, an async iterable pumped. */
  private dispatch(result: unknown): void {
    if (Array.isArray(result)) {
      this.respondWhole(result, result)
      return
    }
    if (result === null || typeof result !== 'object') {
      this.fail(new GatewayViolation('app-result', `the app must return an iterable or async iterable body, got ${result === null ? 'null' : typeof result}`))
      return
    }
    const body = result as Body
    const asyncIter = (body as AsyncIterable<Chunk>)[Symbol.asyncIterator]
    if (typeof asyncIter === 'function') {
      void this.pump(body, asyncIter.call(body), false)
      return
    }
    const syncIter = (body as Iterable<Chunk>)[Symbol.iterator]
    if (typeof syncIter !== 'function') {
      this.closeBody(body)
      this.fail(new GatewayViolation('app-result', 'the app must return an iterable or async iterable body'))
      return
    }
    const iterator: Iterator<Chunk> = syncIter.call(body)
    const gathered: unknown[] = []
    let bytes = 0
    for (;;) {
      const r = iterator.next()
      if (r.done === true) {
        this.respondWhole(gathered, body)
        return
      }
      const value: unknown = r.value
      gathered.push(value)
      bytes += typeof value === 'string' ? value.length : value instanceof Uint8Array ? value.byteLength : 0
      if (bytes > GATHER_LIMIT) break
    }
    // A long synchronous body: send what was gathered, then stream the rest.
    for (const chunk of gathered) this.push(chunk)
    void this.pump(body, iterator, true)
  }

  /** A body whose chunks are all known: its length is known, one sink call. */
  private respondWhole(chunks: unknown[], body: object): void {
    try {
      if (this.state === NEW) throw new GatewayViolation('start-response-order', 'the app returned its body without calling startResponse')
      let total = 0
      let strings = true
      for (let i = 0; i < chunks.length; i++) {
        const chunk = chunks[i]
        if (typeof chunk !== 'string') strings = false
        total += chunkLength(chunk)
      }
      if (this.state === STARTED) {
        const declared = this.facts!.declaredLength
        if (declared >= 0 && declared !== total && !this.noBody) {
          throw new GatewayViolation('content-length', `the app set Content-Length: ${declared} but its body has ${total} bytes`)
        }
        this.state = COMMITTED
        this.written = total
        this.sendWhole(chunks as Chunk[], total, strings)
      } else {
        // write() already committed the head: the chunks continue that stream.
        for (const chunk of chunks) this.push(chunk)
        this.closeBody(body)
        this.finishStream()
        return
      }
    } catch (error) {
      this.closeBody(body)
      this.fail(error)
      return
    }
    this.closeBody(body)
    this.complete()
  }

  /** Streams a body chunk by chunk, waiting whenever the sink says so. */
  private async pump(body: Body, iterator: Iterator<Chunk> | AsyncIterator<Chunk>, sync: boolean): Promise<void> {
    this.streaming = body
    let ended = false
    try {
      for (;;) {
        if (this.gone || this.state === DONE) break
        const r = sync ? (iterator as Iterator<Chunk>).next() : await iterator.next()
        if (r.done === true) {
          ended = true
          break
        }
        if (this.gone) break
        this.push(r.value)
        if (this.mustWait()) await this.waitWritable()
      }
    } catch (error) {
      this.closeBody(body)
      this.fail(error)
      return
    }
    if (!ended) {
      try {
        if (typeof iterator.return === 'function') await iterator.return()
      } catch {
        // the body is being abandoned; its own cleanup errors are not the client's concern
      }
    }
    this.closeBody(body)
    if (ended && !this.gone) {
      try {
        this.finishStream()
      } catch (error) {
        this.fail(error)
      }
    }
  }

  private legacyWrite(chunk: Chunk): void {
    if (this.state === NEW) throw new GatewayViolation('start-response-order', 'write() called before startResponse')
    if (this.state === DONE || this.gone) return
    this.push(chunk)
  }

  /** One chunk of a streamed body: checked, counted, and the head committed on the first non-empty one. */
  private push(chunk: unknown): void {
    const length = chunkLength(chunk)
    if (this.state === NEW) throw new GatewayViolation('start-response-order', 'the body produced a chunk before startResponse was called')
    if (length === 0) return
    const declared = this.facts!.declaredLength
    if (declared >= 0 && this.written + length > declared && !this.noBody) {
      throw new GatewayViolation('content-length', `the app set Content-Length: ${declared} but its body has more bytes`)
    }
    if (this.state === STARTED) {
      this.state = COMMITTED
      this.sendHead()
    }
    this.written += length
    if (!this.noBody) this.sendChunk(chunk as Chunk, length)
  }

  /** Ends a streamed body: the sink's end, or a cut when the declared length was not met. */
  private finishStream(): void {
    if (this.state === DONE) return
    if (this.state === STARTED) {
      this.respondWhole([], EMPTY_BODY)
      return
    }
    const declared = this.facts!.declaredLength
    if (declared >= 0 && this.written !== declared && !this.noBody) {
      const error = new GatewayViolation('content-length', `the app set Content-Length: ${declared} but sent ${this.written} bytes; cutting the response`)
      this.log(`postern: ${error.message}\n`)
      this.cut(error)
    } else {
      this.sendEnd()
    }
    this.complete()
  }

  /** The app returned after `accept()`: its body should be `[]`; anything else is logged and discarded [ws-app]. */
  private endUpgraded(result: unknown): void {
    let empty: boolean
    try {
      empty = Array.isArray(result) && result.length === 0
    } catch {
      empty = false // a Proxy that throws: not an empty array
    }
    if (!empty) {
      this.log(`postern: [ws-app] the app returned a body after accept(); it is discarded (return []): ${this.method} ${this.target}\n`)
    }
    this.closeBody(result)
    this.complete()
  }

  private complete(): void {
    this.state = DONE
    this.finished()
  }

  // --- faults ---------------------------------------------------------------

  /**
   * The app failed. Before any byte was sent the client gets the error
   * policy's answer (errors.ts); after, the response is cut so the client
   * sees it truncated, never a wrong one.
   */
  fail(error: unknown): void {
    if (this.state === DONE) return
    const upgraded = this.upgraded
    if (upgraded !== null) {
      // A send() rejected because the socket closed (the client left, or the server closed it) is no app error.
      if (!(error instanceof WebSocketClosedError)) {
        this.log(`postern: app error after accept(): ${describe(error)}\n    while answering ${this.method} ${this.target}; closing the WebSocket with 1011\n`)
      }
      upgraded.closeFromServer(1011, 'Internal Error')
      this.complete()
      return
    }
    const { status, message } = errorAnswer(error)
    if ((status >= 500 || this.state >= COMMITTED) && !this.gone) {
      const when = this.state >= COMMITTED ? ' after the response started' : ''
      this.log(`postern: app error${when}: ${describe(error)}\n    while answering ${this.method} ${this.target}\n`)
    }
    if (this.gone || this.state >= COMMITTED) {
      this.cut(error)
      this.complete()
      return
    }
    this.state = COMMITTED
    this.sendError(status, message)
    this.complete()
  }

  /**
   * Answers a request the app never sees with the error policy's answer to
   * `error`: its environ could not be built (an undecodable path is a 400
   * GatewayError); anything else is a fault of ours, a 500.
   */
  refuseFor(error: unknown): void {
    const { status, message } = errorAnswer(error)
    this.refuse(status, message)
  }

  /** Answers a request the app never sees (the server refused it) with a plain-text error, ending the call. */
  refuse(status: number, message: string): void {
    if (this.state !== NEW) return
    this.state = COMMITTED
    this.sendError(status, message)
    this.complete()
  }

  /**
   * The client went away: stop producing output, and tell the app now by
   * closing the body being streamed (a body still awaiting its next chunk
   * would otherwise learn it only when that chunk comes, if ever).
   */
  abandon(): void {
    this.gone = true
    if (this.streaming !== null) this.closeBody(this.streaming)
  }

  /** Calls the body's `close()`, once for this call [close-called]. */
  private closeBody(body: unknown): void {
    if (this.bodyClosed) return
    this.bodyClosed = true
    if (body === null || typeof body !== 'object') return
    try {
      const close = (body as { close?: unknown }).close
      if (typeof close !== 'function') return
      const result: unknown = close.call(body)
      if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
        ;(result as PromiseLike<unknown>).then(undefined, (error: unknown) => this.log(`postern: body close() failed: ${describe(error)}\n`))
      }
    } catch (error) {
      this.log(`postern: body close() failed: ${describe(error)}\n`)
    }
  }
}

/**
 * Makes a call's `startResponse`. A plain closure rather than a class
 * field: loaders that keep function names (tsx) would otherwise rename a
 * field function on every request.
 */
function startResponseFor(call: GatewayCall): StartResponse {
  return (status, headers, error) => call.start(status, headers, error)
}
