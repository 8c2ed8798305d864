/**
 * The response a Node listener gets from `fromNode()`: ServerResponse's API
 * over `startResponse` and a gateway body. Its head becomes the status and
 * headers; what it writes queues until the server pulls it, so `write()`
 * returns false (and `drain` follows) the way a socket's would.
 */
import { EventEmitter } from 'node:events'
import { STATUS_CODES } from 'node:http'
import type { Body, Headers, StartResponse } from '../gateway/spec.js'
import { isHopByHop, parseStatus } from '../gateway/headers.js'
import { hasNoBody } from '../gateway/rules.js'
import { checkValue, pinMethods, toBytes, toError, toList, type HeaderValue } from './from-node-emulation.js'
import type { BridgeRequest } from './from-node-request.js'
import type { BridgeSocket } from './from-node-socket.js'

type Callback = (error?: Error | null) => void
/** How a response started (its body) or failed. */
type Outcome = { body: Body } | { error: Error }

/**
 * The response. Head: `statusCode`, `setHeader`…, fixed by `writeHead` (or
 * the first `write`/`end`/`flushHeaders`, through `writeHead` so wrappers
 * like on-headers see it). Body: chunks queue until the server pulls them.
 */
export class BridgeResponse extends EventEmitter {
  statusCode = 200
  statusMessage: string | undefined = undefined
  req: BridgeRequest
  socket: BridgeSocket
  connection: BridgeSocket
  sendDate = false
  chunkedEncoding = false
  shouldKeepAlive = true
  useChunkedEncodingByDefault = true
  strictContentLength = false
  writableHighWaterMark = 16 * 1024
  writableObjectMode = false
  // Node's state properties, as data kept in step with the private state by #sync()
  // (getters would have to be defined on each object: see pinMethods).
  headersSent = false
  /** Some middleware (compression, older Express helpers) test `_header`. */
  _header: string | null = null
  writableEnded = false
  finished = false
  writableFinished = false
  writable = true
  destroyed = false
  writableLength = 0
  writableNeedDrain = false
  writableCorked = 0

  #startResponse: StartResponse
  #headers = new Map<string, [name: string, value: HeaderValue]>()
  #headSent = false
  #started = false
  #startScheduled = false
  #ended = false
  #finished = false
  #closed = false
  #error: Error | null = null
  #queue: Array<{ bytes: Uint8Array; callback: Callback | undefined }> = []
  #queued = 0
  #needDrain = false
  #wake: (() => void) | null = null
  /** How the response started (its body) or failed, once it did; and who waits for it when that was not at once. */
  #outcome: Outcome | null = null
  #waiting: { resolve: (body: Body) => void; reject: (error: Error) => void } | null = null

  constructor(req: BridgeRequest, socket: BridgeSocket, startResponse: StartResponse) {
    super()
    pinMethods(this, BridgeResponse.prototype)
    this.req = req
    this.socket = this.connection = socket
    this.#startResponse = startResponse
    socket.response = this
  }

  /**
   * The gateway body once the response started: at once when the listener
   * ended it in the call (a sync Fastify or Express route, so the server
   * gets a whole body without a promise), else a promise of it. Throws, or
   * rejects, when the response failed before it started.
   */
  result(): Body | Promise<Body> {
    const outcome = this.#outcome
    if (outcome !== null) {
      this.#outcome = null // handed on: the response keeps no reference to it
      if ('body' in outcome) return outcome.body
      throw outcome.error
    }
    return new Promise<Body>((resolve, reject) => {
      this.#waiting = { resolve, reject }
    })
  }

  /** The first outcome wins, as with a promise: kept for `result()`, or handed to whoever waits in it. */
  #settle(outcome: Outcome): void {
    const waiting = this.#waiting
    if (waiting === null) {
      this.#outcome = outcome
      return
    }
    this.#waiting = null
    if ('body' in outcome) waiting.resolve(outcome.body)
    else waiting.reject(outcome.error)
  }

  // ---- head ----

  setHeader(name: string, value: HeaderValue): this {
    if (this.#headSent) throw Object.assign(new Error('Cannot set headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' })
    checkValue(name, value)
    this.#headers.set(name.toLowerCase(), [name, value])
    return this
  }
  appendHeader(name: string, value: HeaderValue): this {
    const previous = this.#headers.get(name.toLowerCase())
    if (previous === undefined) return this.setHeader(name, value)
    return this.setHeader(previous[0], [...toList(previous[1]), ...toList(value)])
  }
  setHeaders(headers: Map<string, HeaderValue> | globalThis.Headers): this {
    for (const [name, value] of headers) this.setHeader(name, value)
    return this
  }
  getHeader(name: string): HeaderValue | undefined {
    return this.#headers.get(name.toLowerCase())?.[1]
  }
  getHeaders(): Record<string, HeaderValue> {
    const out: Record<string, HeaderValue> = Object.create(null) as Record<string, HeaderValue>
    for (const [key, [, value]] of this.#headers) out[key] = value
    return out
  }
  getHeaderNames(): string[] {
    return [...this.#headers.keys()]
  }
  getRawHeaderNames(): string[] {
    return [...this.#headers.values()].map(([name]) => name)
  }
  hasHeader(name: string): boolean {
    return this.#headers.has(name.toLowerCase())
  }
  removeHeader(name: string): void {
    if (this.#headSent) throw Object.assign(new Error('Cannot remove headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' })
    this.#headers.delete(name.toLowerCase())
  }

  writeHead(statusCode: number, reason?: string | Record<string, HeaderValue> | HeaderValue[], headers?: Record<string, HeaderValue> | HeaderValue[]): this {
    if (this.#headSent) throw Object.assign(new Error('Cannot write headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' })
    if (typeof reason === 'string') this.statusMessage = reason
    else headers ??= reason
    this.statusCode = statusCode
    if (Array.isArray(headers)) {
      if (headers.length > 0 && Array.isArray(headers[0])) for (const [n, v] of headers as unknown as Array<[string, string]>) this.appendHeader(n, v)
      else for (let i = 0; i + 1 < headers.length; i += 2) this.appendHeader(String(headers[i]), headers[i + 1]!)
    } else if (headers !== undefined) {
      for (const name of Object.keys(headers)) if (headers[name] !== undefined) this.setHeader(name, headers[name]!)
    }
    this.#headSent = true
    this.#sync()
    return this
  }
  _implicitHeader(): void {
    this.writeHead(this.statusCode)
  }
  flushHeaders(): void {
    if (!this.#headSent) this._implicitHeader()
    this.#start(null)
  }
  writeContinue(): void {}
  writeProcessing(): void {}
  writeEarlyHints(): void {}
  /** Response trailers are not part of the gateway interface: dropped. */
  addTrailers(): void {}
  setTimeout(): this {
    return this
  }

  // ---- body ----

  cork(): void {}
  uncork(): void {}

  write(chunk: unknown, encoding?: BufferEncoding | Callback | null, callback?: Callback | null): boolean {
    if (typeof encoding === 'function') {
      callback = encoding
      encoding = undefined
    }
    if (this.#ended) {
      const error = Object.assign(new Error('write after end'), { code: 'ERR_STREAM_WRITE_AFTER_END' })
      if (typeof callback === 'function') process.nextTick(callback, error)
      return false
    }
    const bytes = toBytes(chunk, encoding ?? undefined)
    if (!this.#headSent) this._implicitHeader()
    if (this.#closed) return false
    this.#enqueue(bytes, callback ?? undefined)
    this.#startSoon()
    const ok = this.#queued < this.writableHighWaterMark
    if (!ok) this.#needDrain = true
    this.#sync()
    return ok
  }

  end(chunk?: unknown, encoding?: BufferEncoding | Callback | null, callback?: Callback | null): this {
    if (typeof chunk === 'function') {
      callback = chunk as Callback
      chunk = undefined
    } else if (typeof encoding === 'function') {
      callback = encoding
      encoding = undefined
    }
    if (typeof callback === 'function') {
      if (this.#finished) process.nextTick(callback)
      else this.once('finish', callback)
    }
    if (this.#ended) return this
    const bytes = chunk === undefined || chunk === null ? null : toBytes(chunk, typeof encoding === 'string' ? encoding : undefined)
    if (!this.#headSent) this._implicitHeader()
    this.#ended = true
    this.#sync()
    if (this.#closed) return this
    if (!this.#started) {
      // Everything was written in this tick: one body of known length.
      const chunks = this.#queue.map((item) => item.bytes)
      for (const item of this.#queue.splice(0)) if (item.callback !== undefined) process.nextTick(item.callback)
      this.#queued = 0
      this.#sync()
      if (bytes !== null && bytes.byteLength > 0) chunks.push(bytes)
      this.#start(chunks)
    } else {
      if (bytes !== null) this.#enqueue(bytes, undefined)
      this.#wakeUp()
    }
    return this
  }

  destroy(error?: Error): this {
    if (this.#closed) return this
    const failure = error ?? new Error('the response was destroyed before it was complete')
    if (!this.#started) {
      this.#started = true
      this.#settle({ error: failure })
    } else if (!this.#finished) this.#error = failure
    this.#close(false)
    return this
  }

  /** Brings Node's state properties in step with the private state, after each change of it. */
  #sync(): void {
    this.headersSent = this.#headSent
    this._header = this.#headSent ? `HTTP/1.1 ${this.statusCode}` : null
    this.writableEnded = this.finished = this.#ended
    this.writableFinished = this.#finished
    this.writable = !this.#ended && !this.#closed
    this.destroyed = this.#closed
    this.writableLength = this.#queued
    this.writableNeedDrain = this.#needDrain
  }

  /**
   * Starts a streamed response after the current tick, so that writes
   * followed by `end()` in the same tick (Fastify, `pipe` of a buffer) still
   * make one body of known length.
   */
  #startSoon(): void {
    if (this.#started || this.#startScheduled) return
    this.#startScheduled = true
    queueMicrotask(() => this.#start(null))
  }

  /** Fixes the gateway response: `chunks` is the whole body when it already ended, else null (streamed). */
  #start(chunks: Uint8Array[] | null): void {
    if (this.#started) return
    this.#started = true
    const code = this.statusCode
    if (!Number.isInteger(code) || code < 200 || code > 599) {
      this.#fail(new RangeError(`status ${code} cannot be sent through the gateway interface (200-599)`))
      return
    }
    // Node's reason phrases, not the gateway's STATUS_TEXT: a Node app gets what Node would send (418 included).
    let reason = this.statusMessage ?? STATUS_CODES[code] ?? ''
    if (parseStatus(`${code} ${reason}`) < 0) reason = STATUS_CODES[code] ?? ''
    const headers: Headers = []
    for (const [name, value] of this.#headers.values()) {
      if (isHopByHop(name)) continue // framing is the server's job
      for (const item of toList(value)) headers.push([name, item])
    }
    if (chunks !== null && !this.#headers.has('content-length') && !hasNoBody(this.req.method, code)) {
      // As Node does for `res.end(data)`: the length is known.
      headers.push(['Content-Length', String(chunks.reduce((n, c) => n + c.byteLength, 0))])
    }
    try {
      this.#startResponse(`${code} ${reason}`, headers)
    } catch (error) {
      this.#fail(toError(error))
      return
    }
    if (chunks !== null) {
      // The close function is passed as an argument, not written as an object property, which tsx names at each
      // creation: this path runs for every synchronous route; the streamed one below is rarer.
      this.#settle({ body: withClose(chunks, () => this.#close(true)) })
      return
    }
    this.#settle({
      body: {
        [Symbol.asyncIterator]: () => ({ next: () => this.#next() }),
        close: () => this.#close(this.#finished),
      },
    })
  }

  #fail(error: Error): void {
    this.#settle({ error })
    this.#close(false)
  }

  #enqueue(bytes: Uint8Array, callback: Callback | undefined): void {
    if (bytes.byteLength === 0) {
      if (callback !== undefined) process.nextTick(callback)
      return
    }
    this.#queue.push({ bytes, callback })
    this.#queued += bytes.byteLength
    this.#sync()
    this.#wakeUp()
  }

  #wakeUp(): void {
    const wake = this.#wake
    this.#wake = null
    wake?.()
  }

  /** The server pulls the next chunk. */
  async #next(): Promise<IteratorResult<Uint8Array>> {
    for (;;) {
      if (this.#error !== null) throw this.#error
      const item = this.#queue.shift()
      if (item !== undefined) {
        this.#queued -= item.bytes.byteLength
        if (item.callback !== undefined) process.nextTick(item.callback)
        if (this.#needDrain && this.#queued === 0) {
          this.#needDrain = false
          process.nextTick(() => this.emit('drain'))
        }
        this.#sync()
        return { done: false, value: item.bytes }
      }
      if (this.#ended) {
        this.#finish()
        return { done: true, value: undefined }
      }
      if (this.#closed) return { done: true, value: undefined }
      await new Promise<void>((resolve) => {
        this.#wake = resolve
      })
    }
  }

  #finish(): void {
    if (this.#finished) return
    this.#finished = true
    this.#sync()
    process.nextTick(() => this.emit('finish'))
  }

  /** The server is done with the body (`complete`: all of it was taken), or the response failed. */
  #close(complete: boolean): void {
    if (this.#closed) return
    this.#closed = true
    this.#sync()
    if (complete && this.#ended) this.#finish()
    else {
      // The client went away (or the response failed): tell the app the way Node does.
      this.req.aborted = !this.req.complete
      if (this.req.aborted) this.req.emit('aborted')
      if (!this.req.destroyed) this.req.destroy()
    }
    this.#wakeUp()
    this.socket.gone()
    process.nextTick(() => this.emit('close'))
  }
}

/** A whole body with its `close()`. */
function withClose(chunks: Uint8Array[], close: () => void): Body {
  return Object.assign(chunks, { close })
}
