/**
 * One request and its response on a connection: runs the app, implements
 * `startResponse` with the spec's rules, frames the body and always closes
 * it. Output goes through the connection, which keeps pipelined responses in
 * request order.
 *
 * The fast path: an app that calls `startResponse` and returns an array
 * synchronously gets `Content-Length` framing and its head and body written
 * as one string, with no promise made along the way.
 */
import type { Body, Chunk, Environ, GatewayApp, StartResponse, Write } from '../gateway/spec.js'
import { GatewayError } from '../gateway/spec.js'
import { describeError, errorAnswer } from '../gateway/errors.js'
import { isAsciiValue, parseStatus } from '../gateway/headers.js'
import type { InputOwner, RequestInput } from './body-input.js'
import type { RequestHead } from './parser.js'
import type { CheckedHeaders } from './response-head.js'
import { checkAndRenderHeaders, renderHead, simpleResponse } from './response-head.js'

/** What an exchange needs from its connection. */
export interface ExchangeOwner {
  /** Sends bytes for `ex`, in request order. */
  output(ex: Exchange, data: string | Uint8Array): void
  /** `ex`'s response is complete (or, with `broken`, cut short: the connection must end after it). */
  finish(ex: Exchange): void
  /** Whether `ex` should wait before producing more output (socket or ordering backpressure). */
  mustWait(ex: Exchange): boolean
  /** Resolves when `ex` may produce more output (or the client is gone). */
  waitWritable(ex: Exchange): Promise<void>
  pauseForInput(): void
  resumeForInput(): void
  /** Whether the server is shutting down (responses say `Connection: close`). */
  readonly closing: boolean
  readonly serverLine: string
  readonly errors: { write(message: string): void }
}

const NEW = 0
const STARTED = 1
const COMMITTED = 2
const DONE = 3

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n'

/** Sync bodies are gathered up to this many bytes to send them with Content-Length. */
const GATHER_LIMIT = 64 * 1024

export class Exchange implements InputOwner {
  readonly head: RequestHead
  readonly owner: ExchangeOwner
  env: Environ | null = null
  input: RequestInput | null = null

  state = NEW
  code = 0
  private status = ''
  private checked: CheckedHeaders | null = null
  /** Whether the head holds non-ASCII bytes and goes out Latin-1 encoded. */
  private latin1 = false
  private chunked = false
  private noBody = false
  private written = 0
  private continueSent = false
  private writeFn: Write | null = null
  /** Whether the connection may carry another request after this response. */
  keepAlive: boolean
  /** The response was cut short: the connection ends after what was sent. */
  broken = false
  /** The client went away: stop producing output. */
  gone = false
  /** The body being streamed, so that it can be closed as soon as the client leaves. */
  private streaming: Body | null = null
  private bodyClosed = false
  /** Output held back until earlier responses are sent. */
  held: Array<string | Uint8Array> | null = null
  heldBytes = 0

  readonly startResponse: StartResponse

  constructor(owner: ExchangeOwner, head: RequestHead) {
    this.owner = owner
    this.head = head
    this.keepAlive = head.keepAlive
    this.startResponse = startResponseFor(this)
  }

  get done(): boolean {
    return this.state === DONE
  }

  /** Whether any byte of the final response was produced. */
  get committed(): boolean {
    return this.state >= COMMITTED
  }

  /**
   * The `Connection` line of the response head, deciding for good whether the
   * connection stays open. It closes when the server shuts down, and when the
   * client still waits for `100 Continue` to send a body we never asked for:
   * whether those bytes will come is unknowable, so they must not be parsed
   * as the next request.
   */
  private connectionLine(): string {
    if (this.owner.closing) this.keepAlive = false
    else if (this.head.expectContinue && !this.continueSent && this.input !== null && !this.input.complete) this.keepAlive = false
    if (!this.keepAlive) return 'Connection: close\r\n'
    return this.head.minor === 0 ? 'Connection: keep-alive\r\n' : ''
  }

  // --- running the app ---------------------------------------------------

  run(app: GatewayApp, env: Environ): void {
    this.env = env
    let result: unknown
    let then: unknown
    try {
      result = app(env, this.startResponse)
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
    if (this.state !== NEW) {
      if (error === undefined) throw new Error('[start-response-order] startResponse called a second time without an error')
      if (this.state >= COMMITTED || this.gone) throw error
    }
    if (parseStatus(status) < 0) {
      throw new TypeError(`[status-form] invalid status ${JSON.stringify(status)}: expected three digits 200-599, a space and a reason, like '200 OK'`)
    }
    let checked = checkAndRenderHeaders(headers)
    this.code = (status.charCodeAt(0) - 48) * 100 + (status.charCodeAt(1) - 48) * 10 + (status.charCodeAt(2) - 48)
    if (this.code === 204 && checked.declaredLength >= 0) {
      // RFC 9110 §8.6: a 204 never carries Content-Length.
      checked = checkAndRenderHeaders((headers as Array<[string, string]>).filter(([name]) => name.toLowerCase() !== 'content-length'))
    }
    this.status = status
    // A reason phrase may hold obs-text (U+0080–U+00FF), sent as Latin-1 like header values.
    this.latin1 = !checked.ascii || !isAsciiStatus(status)
    this.checked = checked
    this.state = STARTED
    this.noBody = this.head.method === 'HEAD' || this.code === 204 || this.code === 304
    if (this.writeFn === null) this.writeFn = (chunk: Chunk) => this.legacyWrite(chunk)
    return this.writeFn
  }

  private respond(result: unknown): void {
    if (this.state === DONE) {
      this.closeBody(result)
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
      this.respondArray(result, result)
      return
    }
    if (result === null || typeof result !== 'object') {
      this.fail(new TypeError(`[app-result] the app must return an iterable or async iterable body, got ${result === null ? 'null' : typeof result}`))
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
      this.fail(new TypeError('[app-result] the app must return an iterable or async iterable body'))
      return
    }
    const iterator: Iterator<Chunk> = syncIter.call(body)
    const gathered: unknown[] = []
    let bytes = 0
    for (;;) {
      const r = iterator.next()
      if (r.done === true) {
        this.respondArray(gathered, body)
        return
      }
      const value: unknown = r.value
      gathered.push(value)
      bytes += typeof value === 'string' ? value.length : value instanceof Uint8Array ? value.byteLength : 0
      if (bytes > GATHER_LIMIT) break
    }
    // A long synchronous body: send what was gathered, then stream the rest.
    for (const chunk of gathered) this.sendChunk(chunk)
    void this.pump(body, iterator, true)
  }

  /** A body whose chunks are all known: Content-Length framing, one write. */
  private respondArray(chunks: unknown[], body: object): void {
    try {
      if (this.state === NEW) throw new Error('[start-response-order] the app returned its body without calling startResponse')
      let total = 0
      let strings = true
      for (let i = 0; i < chunks.length; i++) {
        const chunk = chunks[i]
        if (typeof chunk === 'string') total += chunk.length === 0 ? 0 : Buffer.byteLength(chunk)
        else if (chunk instanceof Uint8Array) {
          total += chunk.byteLength
          strings = false
        } else throw new TypeError(`[chunk-type] body chunks must be Uint8Array or string, got ${describe(chunk)}`)
      }
      if (this.state === STARTED) {
        const declared = this.checked!.declaredLength
        if (declared >= 0 && declared !== total && !this.noBody) {
          throw new Error(`[content-length] the app set Content-Length: ${declared} but its body has ${total} bytes`)
        }
        const head = this.commit(total)
        if (this.noBody || total === 0) this.emit(head)
        else if (strings && typeof head === 'string') this.emit(chunks.length === 1 ? head + (chunks[0] as string) : head + chunks.join(''))
        else {
          this.emit(head)
          for (const chunk of chunks as Chunk[]) this.emit(chunk)
        }
        this.written = total
      } else {
        // write() already committed the head: the chunks continue that stream.
        for (const chunk of chunks) this.sendChunk(chunk)
        this.finishStream()
        this.closeBody(body)
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

  /** Streams a body chunk by chunk, waiting whenever the client or order says so. */
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
        this.sendChunk(r.value)
        if (this.owner.mustWait(this)) await this.owner.waitWritable(this)
      }
    } catch (error) {
      ended = true
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
    if (this.state === NEW) throw new Error('[start-response-order] write() called before startResponse')
    if (this.state === DONE || this.gone) return
    this.sendChunk(chunk)
  }

  /** Sends one chunk of a streamed body, committing the head on the first non-empty one. */
  private sendChunk(chunk: unknown): void {
    let length: number
    if (typeof chunk === 'string') length = chunk.length === 0 ? 0 : Buffer.byteLength(chunk)
    else if (chunk instanceof Uint8Array) length = chunk.byteLength
    else throw new TypeError(`[chunk-type] body chunks must be Uint8Array or string, got ${describe(chunk)}`)
    if (this.state === NEW) throw new Error('[start-response-order] the body produced a chunk before startResponse was called')
    if (length === 0) return
    const declared = this.checked!.declaredLength
    if (declared >= 0 && this.written + length > declared && !this.noBody) {
      throw new Error(`[content-length] the app set Content-Length: ${declared} but its body has more bytes`)
    }
    if (this.state === STARTED) this.emit(this.commit(-1))
    this.written += length
    if (this.noBody) return
    if (this.chunked) {
      if (typeof chunk === 'string') this.emit(length.toString(16) + '\r\n' + chunk + '\r\n')
      else {
        this.emit(length.toString(16) + '\r\n')
        this.emit(chunk as Uint8Array)
        this.emit('\r\n')
      }
    } else {
      this.emit(chunk as Chunk)
    }
  }

  /** Ends a streamed body: the last chunk, or a check that the declared length was met. */
  private finishStream(): void {
    if (this.state === DONE) return
    if (this.state === STARTED) {
      this.respondArray([], EMPTY_BODY)
      return
    }
    const declared = this.checked!.declaredLength
    if (this.chunked) {
      if (!this.noBody) this.emit('0\r\n\r\n')
    } else if (declared >= 0 && this.written !== declared && !this.noBody) {
      this.owner.errors.write(`postern: [content-length] the app set Content-Length: ${declared} but sent ${this.written} bytes; closing the connection\n`)
      this.broken = true
    } else if (declared < 0 && !this.noBody) {
      this.keepAlive = false // close-delimited (HTTP/1.0): the end of the body is the end of the connection
    }
    this.complete()
  }

  /**
   * Renders the head with its framing: `length` ≥ 0 when the body's length is
   * known, -1 when it will stream.
   */
  private commit(length: number): string | Uint8Array {
    const checked = this.checked!
    let framing = ''
    const code = this.code
    if (code === 204 || code === 304) {
      framing = ''
    } else if (checked.declaredLength >= 0) {
      framing = '' // the app's own Content-Length line is already in the head
    } else if (length >= 0) {
      framing = 'Content-Length: ' + length + '\r\n'
    } else if (this.head.minor === 1) {
      framing = 'Transfer-Encoding: chunked\r\n'
      this.chunked = true
    } else if (!this.noBody) {
      this.keepAlive = false // HTTP/1.0 and no length: close-delimited
    }
    const connection = this.connectionLine()
    this.state = COMMITTED
    const head = renderHead(this.status, checked, this.owner.serverLine, framing, connection)
    return this.latin1 ? Buffer.from(head, 'latin1') : head
  }

  private emit(data: string | Uint8Array): void {
    this.owner.output(this, data)
  }

  private complete(): void {
    this.state = DONE
    if (this.input !== null) this.input.discard()
    this.owner.finish(this)
  }

  // --- faults -------------------------------------------------------------

  /**
   * The app failed. Before any byte was sent the client gets an error
   * response (500, or the status of a {@link GatewayError}); after, the
   * connection ends so the client sees a truncated response.
   */
  fail(error: unknown): void {
    if (this.state === DONE) return
    const { status, message } = errorAnswer(error)
    if (status >= 500 && !this.gone) {
      const where = `${this.head.method} ${this.head.target}`
      const detail = describeError(error)
      this.owner.errors.write(`postern: app error in ${where}: ${detail}\n`)
    }
    if (this.gone || this.state >= COMMITTED) {
      // Bytes went out (or nobody listens): end the connection after them.
      this.broken = true
      this.complete()
      return
    }
    this.respondError(status, message, status === 400 || status === 408 || status === 413 || !this.keepAlive)
  }

  /** Answers with a plain-text error; `close` ends the connection after it. */
  respondError(status: number, message: string, close: boolean): void {
    if (close) this.keepAlive = false
    const connection = this.connectionLine()
    this.state = COMMITTED
    this.emit(simpleResponse(status, message, this.owner.serverLine, connection, this.head.method === 'HEAD'))
    this.complete()
  }

  /**
   * The client went away: stop producing output, and tell the app now by
   * closing the body being streamed (a body still awaiting its next chunk
   * would otherwise learn it only when that chunk comes, if ever).
   */
  abandon(): void {
    this.gone = true
    if (this.input !== null) this.input.fail(new GatewayError(400, 'the client closed the connection before sending the whole body'))
    if (this.streaming !== null) this.closeBody(this.streaming)
  }

  /** Calls the body's `close()`, once for this exchange [close-called]. */
  private closeBody(body: unknown): void {
    if (this.bodyClosed) return
    this.bodyClosed = true
    closeBody(body, this.owner)
  }

  // --- InputOwner -----------------------------------------------------------

  inputFirstRead(): void {
    if (this.head.expectContinue && !this.continueSent && this.state < COMMITTED && this.input !== null && !this.input.complete) {
      this.continueSent = true
      this.emit(CONTINUE)
    }
  }

  inputFull(): void {
    this.owner.pauseForInput()
  }

  inputDrained(): void {
    this.owner.resumeForInput()
  }
}

const EMPTY_BODY: object = Object.freeze([])

/** The last status found to be ASCII: apps reuse a handful of literals, so most checks are one comparison. */
let asciiStatus = '200 OK'

function isAsciiStatus(status: string): boolean {
  if (status === asciiStatus) return true
  if (!isAsciiValue(status)) return false
  asciiStatus = status
  return true
}

/**
 * Makes an exchange's `startResponse`. A plain closure rather than a class
 * field: loaders that keep function names (tsx) would otherwise rename a
 * field function on every request.
 */
function startResponseFor(ex: Exchange): StartResponse {
  return (status, headers, error) => ex.start(status, headers, error)
}

/** Calls the body's `close()` once, if it has one [close-called]. */
function closeBody(body: unknown, owner: ExchangeOwner): void {
  if (body === null || typeof body !== 'object') return
  try {
    const close = (body as { close?: unknown }).close
    if (typeof close !== 'function') return
    const result: unknown = close.call(body)
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      ;(result as PromiseLike<unknown>).then(undefined, (error: unknown) => owner.errors.write(`postern: body close() failed: ${describeError(error)}\n`))
    }
  } catch (error) {
    owner.errors.write(`postern: body close() failed: ${describeError(error)}\n`)
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object'
  return typeof value
}
