/**
 * `fromNode(listener)`: a Node request listener (an Express app, Fastify's
 * router, a plain `(req, res) => void`) as a postern app, without parsing
 * HTTP twice. The listener gets a request and a response object that behave
 * like Node's for what such apps use; the response's head becomes
 * `startResponse`, what it writes becomes the gateway body, with
 * backpressure (`write()` returns false until the server pulled the bytes).
 *
 * These objects are not http.IncomingMessage/ServerResponse (subclassing
 * those with a fake socket is fragile). Express replaces the prototypes of
 * req and res with its own (which inherit from Node's), so each object
 * carries its API as own properties: whatever the prototype, it stays ours.
 */
import { EventEmitter } from 'node:events'
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { Body, Environ, GatewayApp, GatewayInput, Headers, StartResponse } from '../gateway/spec.js'
import { checkHeader, isHopByHop, parseStatus } from '../gateway/headers.js'
import { environTarget } from '../gateway/target.js'

/** A Node request listener, as Express and `http.createServer` take them. */
export type NodeListener = (req: IncomingMessage, res: ServerResponse) => unknown

/** Wraps a Node request listener as a gateway app. */
export function fromNode(listener: NodeListener): GatewayApp {
  return (environ, startResponse) => {
    const socket = new BridgeSocket(environ)
    const req = new BridgeRequest(environ, socket)
    const res = new BridgeResponse(req, socket, startResponse)
    try {
      const result = listener(req as unknown as IncomingMessage, res as unknown as ServerResponse)
      if (typeof result === 'object' && result !== null && typeof (result as { then?: unknown }).then === 'function') {
        ;(result as PromiseLike<unknown>).then(undefined, (error: unknown) => res.destroy(toError(error)))
      }
    } catch (error) {
      res.destroy(toError(error))
    }
    return res.body
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}

/** Copies a class's methods and accessors onto an instance (see the file comment). */
function pin(target: object, proto: object): void {
  for (const key of Reflect.ownKeys(proto)) {
    if (key === 'constructor') continue
    Object.defineProperty(target, key, Reflect.getOwnPropertyDescriptor(proto, key)!)
  }
}

/** The connection as a Node app sees it: addresses, TLS, and a `destroy()` that aborts the response. */
class BridgeSocket extends EventEmitter {
  remoteAddress: string
  remotePort: number | undefined
  remoteFamily: string
  localAddress: string
  localPort: number | undefined
  encrypted: true | undefined
  readable = true
  writable = true
  destroyed = false
  /** Set by the response: what `destroy()` aborts. */
  onDestroy: (error?: Error) => void = () => {}

  constructor(environ: Environ) {
    super()
    this.remoteAddress = environ.REMOTE_ADDR
    this.remotePort = environ.REMOTE_PORT === '' ? undefined : Number(environ.REMOTE_PORT)
    this.remoteFamily = environ.REMOTE_ADDR.includes(':') ? 'IPv6' : 'IPv4'
    this.localAddress = environ.SERVER_NAME
    this.localPort = environ.SERVER_PORT === '' ? undefined : Number(environ.SERVER_PORT)
    this.encrypted = environ['gateway.url_scheme'] === 'https' ? true : undefined
  }
  address(): { address: string; port: number | undefined; family: string } {
    return { address: this.localAddress, port: this.localPort, family: this.localAddress.includes(':') ? 'IPv6' : 'IPv4' }
  }
  destroy(error?: Error): this {
    if (!this.destroyed) this.onDestroy(error)
    return this
  }
  end(): this {
    return this.destroy()
  }
  /** Marks the connection gone and tells listeners (on-finished, Fastify). */
  gone(): void {
    if (this.destroyed) return
    this.destroyed = true
    this.readable = false
    this.writable = false
    this.emit('close', false)
  }
  setTimeout(): this {
    return this
  }
  setNoDelay(): this {
    return this
  }
  setKeepAlive(): this {
    return this
  }
  ref(): this {
    return this
  }
  unref(): this {
    return this
  }
}

/** The request: a Readable of the body (read from `gateway.input` as the app reads) with Node's fields. */
class BridgeRequest extends Readable {
  method: string
  url: string
  headers: Record<string, string>
  headersDistinct: Record<string, string[]>
  rawHeaders: string[]
  trailers: Record<string, string> = {}
  trailersDistinct: Record<string, string[]> = {}
  rawTrailers: string[] = []
  httpVersion: string
  httpVersionMajor: number
  httpVersionMinor: number
  complete = false
  aborted = false
  upgrade = false
  socket: BridgeSocket
  connection: BridgeSocket
  #input: GatewayInput
  #iterator: AsyncIterator<Uint8Array> | undefined
  #reading = false

  constructor(environ: Environ, socket: BridgeSocket) {
    super()
    pin(this, BridgeRequest.prototype)
    this.socket = this.connection = socket
    this.method = environ.REQUEST_METHOD
    this.url = environTarget(environ)
    const version = /^HTTP\/(\d)\.(\d)$/.exec(environ.SERVER_PROTOCOL)
    this.httpVersionMajor = version === null ? 1 : Number(version[1])
    this.httpVersionMinor = version === null ? 1 : Number(version[2])
    this.httpVersion = `${this.httpVersionMajor}.${this.httpVersionMinor}`
    this.#input = environ['gateway.input']
    const headers: Record<string, string> = {}
    const raw: string[] = []
    for (const key in environ) {
      if (!key.startsWith('HTTP_')) continue
      const value = environ[key]
      if (typeof value !== 'string') continue
      const name = key.slice(5).toLowerCase().replace(/_/g, '-')
      headers[name] = value
      raw.push(name, value)
    }
    if (environ.CONTENT_TYPE !== '') raw.push('content-type', (headers['content-type'] = environ.CONTENT_TYPE))
    if (environ.CONTENT_LENGTH !== '') raw.push('content-length', (headers['content-length'] = environ.CONTENT_LENGTH))
    // A body of unknown length came chunked: Node apps (type-is, Fastify) look for this to know a body is there.
    if (this.#input.length === null && headers['transfer-encoding'] === undefined) raw.push('transfer-encoding', (headers['transfer-encoding'] = 'chunked'))
    this.headers = headers
    this.rawHeaders = raw
    this.headersDistinct = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]))
  }

  override _read(): void {
    if (this.#reading) return
    this.#reading = true
    this.#iterator ??= this.#input[Symbol.asyncIterator]()
    this.#iterator.next().then(
      (step) => {
        this.#reading = false
        if (step.done === true) {
          this.complete = true
          for (const [name, value] of this.#input.trailers) {
            const lower = name.toLowerCase()
            this.rawTrailers.push(name, value)
            this.trailers[lower] = this.trailers[lower] === undefined ? value : `${this.trailers[lower]}, ${value}`
            ;(this.trailersDistinct[lower] ??= []).push(value)
          }
          this.push(null)
        } else this.push(step.value)
      },
      (error: unknown) => {
        this.#reading = false
        this.destroy(toError(error))
      },
    )
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.complete) void this.#iterator?.return?.()?.catch(() => {})
    callback(error)
  }

  setTimeout(): this {
    return this
  }
}

type HeaderValue = string | number | readonly string[]
type Callback = (error?: Error | null) => void

/**
 * The response. Head: `statusCode`, `setHeader`…, fixed by `writeHead` (or
 * the first `write`/`end`/`flushHeaders`, through `writeHead` so wrappers
 * like on-headers see it). Body: chunks queue until the server pulls them.
 */
class BridgeResponse extends EventEmitter {
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
  /** Resolves with the gateway body once the response started; rejects if it failed before. */
  readonly body: Promise<Body>

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
  #resolve!: (body: Body) => void
  #reject!: (error: Error) => void

  constructor(req: BridgeRequest, socket: BridgeSocket, startResponse: StartResponse) {
    super()
    pin(this, BridgeResponse.prototype)
    this.req = req
    this.socket = this.connection = socket
    this.#startResponse = startResponse
    this.body = new Promise<Body>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    socket.onDestroy = (error) => this.destroy(error)
  }

  // ---- head ----

  get headersSent(): boolean {
    return this.#headSent
  }
  /** Some middleware (compression, older Express helpers) test `_header`. */
  get _header(): string | null {
    return this.#headSent ? `HTTP/1.1 ${this.statusCode}` : null
  }

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

  get writableEnded(): boolean {
    return this.#ended
  }
  get finished(): boolean {
    return this.#ended
  }
  get writableFinished(): boolean {
    return this.#finished
  }
  get writable(): boolean {
    return !this.#ended && !this.#closed
  }
  get destroyed(): boolean {
    return this.#closed
  }
  get writableLength(): number {
    return this.#queued
  }
  get writableNeedDrain(): boolean {
    return this.#needDrain
  }
  get writableCorked(): number {
    return 0
  }
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
    if (this.#closed) return this
    if (!this.#started) {
      // Everything was written in this tick: one body of known length.
      const chunks = this.#queue.map((item) => item.bytes)
      for (const item of this.#queue.splice(0)) if (item.callback !== undefined) process.nextTick(item.callback)
      this.#queued = 0
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
      this.#reject(failure)
    } else if (!this.#finished) this.#error = failure
    this.#close(false)
    return this
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
    let reason = this.statusMessage ?? STATUS_CODES[code] ?? ''
    if (parseStatus(`${code} ${reason}`) < 0) reason = STATUS_CODES[code] ?? ''
    const headers: Headers = []
    for (const [name, value] of this.#headers.values()) {
      if (isHopByHop(name)) continue // framing is the server's job
      for (const item of toList(value)) headers.push([name, item])
    }
    if (chunks !== null && !this.#headers.has('content-length') && this.req.method !== 'HEAD' && code !== 204 && code !== 304) {
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
      this.#resolve(Object.assign(chunks, { close: () => this.#close(true) }))
      return
    }
    this.#resolve({
      [Symbol.asyncIterator]: () => ({ next: () => this.#next() }),
      close: () => this.#close(this.#finished),
    })
  }

  #fail(error: Error): void {
    this.#reject(error)
    this.#close(false)
  }

  #enqueue(bytes: Uint8Array, callback: Callback | undefined): void {
    if (bytes.byteLength === 0) {
      if (callback !== undefined) process.nextTick(callback)
      return
    }
    this.#queue.push({ bytes, callback })
    this.#queued += bytes.byteLength
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
    process.nextTick(() => this.emit('finish'))
  }

  /** The server is done with the body (`complete`: all of it was taken), or the response failed. */
  #close(complete: boolean): void {
    if (this.#closed) return
    this.#closed = true
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

function toList(value: HeaderValue): string[] {
  return Array.isArray(value) ? value.map(String) : [String(value)]
}

function checkValue(name: string, value: HeaderValue): void {
  for (const item of toList(value)) {
    const problem = checkHeader(name, item)
    if (problem !== null) throw Object.assign(new TypeError(problem), { code: 'ERR_INVALID_CHAR' })
  }
}

function toBytes(chunk: unknown, encoding: BufferEncoding | undefined): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk
  if (typeof chunk === 'string') return Buffer.from(chunk, encoding ?? 'utf8')
  throw Object.assign(new TypeError(`the chunk must be a string, Buffer or Uint8Array, got ${chunk === null ? 'null' : typeof chunk}`), { code: 'ERR_INVALID_ARG_TYPE' })
}
