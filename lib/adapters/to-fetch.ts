/**
 * `toFetch(app)`: a postern app as a Fetch handler, `(Request) => Response`,
 * so it runs on Bun.serve, Deno.serve, workers-style hosts, or in process.
 * Both bodies stream: `request.body` becomes `gateway.input`, the app's body
 * becomes a pull-driven `ReadableStream`, so a slow client slows the app.
 * No Node built-ins are used, so the module runs on any of those runtimes.
 */
import type { Chunk, Environ, ErrorStream, GatewayApp } from '../gateway/spec.js'
import { STATUS_TEXT } from '../gateway/headers.js'
import { writeLog } from '../gateway/errors.js'
import { buildEnviron, declaredLength, type ConnectionInfo } from '../gateway/environ.js'
import { GatewayCall } from '../gateway/runner.js'
import { chunkBytes, joinChunks } from '../gateway/chunks.js'
import { DEFAULT_BODY_LIMIT } from '../gateway/limits.js'
import { EMPTY_INPUT } from '../gateway/empty-input.js'
import { StreamInput } from '../gateway/stream-input.js'
import { isBunServer, type BunServer } from './bun-server.js'
import { FetchWebSockets } from './fetch-websocket.js'
import type { BunWebSocketHandler } from './fetch-websocket-bun.js'
import type { WebSocketOptions } from '../gateway/websocket-limits.js'

export interface FetchAdapterOptions {
  /** Where app errors go (`gateway.errors`); default: `console.error`. */
  errors?: ErrorStream
  /** The default limit of `gateway.input.bytes()`/`text()`, in bytes (1 MiB). */
  maxBodySize?: number
  /** WebSocket limits on Bun and Deno (fetch-websocket.ts), named and defaulted as on postern's server; `false` offers none. */
  webSocket?: WebSocketOptions | false
}

/**
 * A Fetch handler. The optional second argument is what the host passes:
 * Deno's `ServeHandlerInfo` or Bun's `Server`, read for the client address.
 * A response known at once (a sync app with a whole body) is returned as
 * is, without a promise, as Bun and Deno serve fastest; `await` takes both.
 */
export type FetchHandler = (request: Request, info?: unknown) => Response | Promise<Response>

/**
 * What `toFetch` returns: the Fetch handler, plus what it needs for
 * WebSockets (fetch-websocket.ts). On Bun, pass `websocket` to Bun.serve
 * too, or `gateway.websocket` is never offered:
 * `Bun.serve({ fetch: handler, websocket: handler.websocket })`.
 * Deno.serve needs nothing more.
 */
export interface FetchAppHandler extends FetchHandler {
  /** Bun.serve's `websocket` handlers for this handler's sockets. */
  readonly websocket: BunWebSocketHandler
  /** Closes this handler's open WebSockets with 1001 (before Bun's `server.stop()`); resolves once closed. */
  closeWebSockets(): Promise<void>
}

const consoleErrors: ErrorStream = {
  write(message) {
    console.error(message.endsWith('\n') ? message.slice(0, -1) : message)
  },
  flush() {},
}

/** Wraps `app` as a Fetch handler. */
export function toFetch(app: GatewayApp, options: FetchAdapterOptions = {}): FetchAppHandler {
  const errors = options.errors ?? consoleErrors
  const limit = options.maxBodySize ?? DEFAULT_BODY_LIMIT
  const locals = new LocalAddresses(errors)
  const websockets = new FetchWebSockets(options.webSocket, errors)
  const handler: FetchHandler = (request, info) => {
    const call = new FetchCall(request, errors)
    let environ: Environ
    try {
      environ = environOf(request, info, limit, locals)
    } catch (error) {
      call.refuseFor(error)
      return call.response()
    }
    // One look at Upgrade; only a handshake goes further.
    if (environ.HTTP_UPGRADE !== undefined && websockets.offer(call, request, info, environ, (response) => call.answer(response))) return call.response()
    call.run(app, environ)
    return call.response()
  }
  return Object.assign(handler, { websocket: websockets.bun, closeWebSockets: () => websockets.closeAll() })
}

/**
 * One app call whose response becomes a Fetch `Response`: the runner's sink
 * for Bun, Deno and other Fetch hosts. A whole body becomes the `Response`'s
 * bytes (a string as it is: the host encodes it natively); a streamed one a
 * pull-driven `ReadableStream`, so a slow client slows the app, and a client
 * that leaves cancels the stream, which closes the app's body.
 */
class FetchCall extends GatewayCall {
  private readonly errors: ErrorStream
  /** The response once known, and who waits for it when it was not known at once. */
  private result: Response | null = null
  private resolve: ((response: Response) => void) | null = null
  private controller: ReadableStreamDefaultController<Uint8Array> | null = null
  private waiting: (() => void) | null = null

  constructor(request: Request, errors: ErrorStream) {
    super(request.method, request.url)
    this.errors = errors
  }

  /** The response: at once when the app already produced it, else a promise of it. */
  response(): Response | Promise<Response> {
    if (this.result !== null) return this.result
    return new Promise<Response>((resolve) => {
      this.resolve = resolve
    })
  }

  /** Answers the host's request; the WebSocket offer answers with its 101 (Deno) or an empty answer (Bun). */
  answer(response: Response): void {
    this.result = response
    this.resolve?.(response)
  }

  /**
   * The status and headers. The app's header list is a `HeadersInit` as it
   * is (pairs, repeats kept). A whole body's length is the host's to send,
   * as for any `new Response(body)` (Deno's costs more than the rest of the
   * response when given); only a HEAD answer, which has no body to measure,
   * carries the length a GET would have (RFC 9110 §9.3.2).
   */
  private init(headLength: number): ResponseInit {
    const headers =
      headLength >= 0 && this.facts!.declaredLength < 0 && this.code !== 204 && this.code !== 304 ? [...this.headers, ['content-length', String(headLength)]] : this.headers
    // The standard reason is left to the host: Deno's fast path takes a 200 only without one.
    const reason = this.status.slice(4)
    if (reason === STATUS_TEXT[this.code]) return { status: this.code, headers: headers as [string, string][] }
    return { status: this.code, statusText: reason, headers: headers as [string, string][] }
  }

  /** Whether a Fetch `Response` may carry a body: never for HEAD, 204, 205 or 304. */
  private get bodiless(): boolean {
    return this.noBody || this.code === 205
  }

  protected sendWhole(chunks: readonly Chunk[], total: number, strings: boolean): void {
    if (this.bodiless || total === 0) {
      this.answer(new Response(null, this.init(this.bodiless ? total : -1)))
      return
    }
    const body = strings ? (chunks.length === 1 ? (chunks[0] as string) : chunks.join('')) : joinChunks(chunks, total)
    this.answer(new Response(body, this.init(-1)))
  }

  protected sendHead(): void {
    if (this.bodiless) {
      this.answer(new Response(null, this.init(-1)))
      return
    }
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller
        },
        pull: () => this.wake(),
        cancel: () => {
          // The client went away.
          this.wake()
          this.abandon()
        },
      },
      { highWaterMark: 0 },
    )
    this.answer(new Response(stream, this.init(-1)))
  }

  protected sendChunk(chunk: Chunk): void {
    if (this.bodiless) return
    this.controller?.enqueue(chunkBytes(chunk))
  }

  protected sendEnd(): void {
    try {
      this.controller?.close()
    } catch {
      // cancelled by the client meanwhile
    }
  }

  protected sendError(status: number, message: string): void {
    const body = chunkBytes(`${message}\n`)
    const headers = { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.byteLength) }
    this.answer(new Response(this.method === 'HEAD' ? null : body, { status, statusText: STATUS_TEXT[status] ?? '', headers }))
  }

  /** Bytes went out: an errored stream makes the host cut the response. */
  protected cut(error: unknown): void {
    try {
      this.controller?.error(error)
    } catch {
      // already closed or cancelled
    }
  }

  protected mustWait(): boolean {
    const controller = this.controller
    return controller !== null && !this.gone && (controller.desiredSize ?? 1) <= 0
  }

  protected waitWritable(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiting = resolve
    })
  }

  private wake(): void {
    const waiting = this.waiting
    this.waiting = null
    waiting?.()
  }

  protected log(message: string): void {
    writeLog(this.errors, message)
  }
}

/**
 * The environ for a Fetch request, as every postern server builds it
 * (lib/gateway/environ.ts); null when the path cannot be decoded (a 400).
 */
export function fetchEnviron(request: Request, info: unknown, errors: ErrorStream, limit = DEFAULT_BODY_LIMIT): Environ | null {
  try {
    return environOf(request, info, limit, new LocalAddresses(errors))
  } catch {
    return null
  }
}

/** The environ for a Fetch request; throws a 400 GatewayError when the path cannot be decoded. */
function environOf(request: Request, info: unknown, limit: number, locals: LocalAddresses): Environ {
  const url = request.url
  // `request.url` is absolute; the target is what follows the authority, as sent (not re-encoded by URL).
  const scheme = url.indexOf('://')
  const slash = url.indexOf('/', scheme + 3)
  const host = slash < 0 ? url.slice(scheme + 3) : url.slice(scheme + 3, slash)
  const target = slash < 0 ? '/' : url.slice(slash)
  const connection = locals.connection(info, host, url.charCodeAt(4) === 0x73 /* https: */)
  const headers: string[] = []
  let declared = false
  request.headers.forEach((value, name) => {
    headers.push(name, value)
    if (name === 'content-length') declared = true
  })
  const method = request.method
  // A GET or HEAD `Request` cannot carry a body (the Fetch standard): unless its headers declare
  // a length, which the input must then agree with, it gets the shared empty input.
  const input = (method === 'GET' || method === 'HEAD') && !declared ? EMPTY_INPUT : new StreamInput(new RequestBody(request), null, limit)
  const bun = locals.bun
  const environ = buildEnviron(method, target, 'HTTP/1.1', headers, connection, input, undefined, bun === null ? undefined : () => bunRemote(bun, request))
  // The URL's authority is the request's host: hosts put the Host header there, or an
  // absolute-form target's authority, which wins over Host (RFC 9112 §3.2.2).
  environ.HTTP_HOST = host
  if (input instanceof StreamInput) input.length = declaredLength(environ) ?? (method === 'GET' || method === 'HEAD' || request.body === null ? 0 : null)
  return environ
}

/** A request's body stream, opened only when the app reads `gateway.input`. */
class RequestBody implements AsyncIterable<Uint8Array> {
  private readonly request: Request
  constructor(request: Request) {
    this.request = request
  }
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return streamChunks(this.request.body)
  }
}

/** A request body stream as an async iterable (not every runtime makes streams iterable). */
async function* streamChunks(stream: ReadableStream<Uint8Array> | null): AsyncGenerator<Uint8Array> {
  if (stream === null) return
  const reader = stream.getReader()
  let done = false
  try {
    for (;;) {
      const step = await reader.read()
      if (step.done) break
      yield step.value
    }
    done = true
  } finally {
    if (!done) await reader.cancel().catch(() => {})
    else reader.releaseLock()
  }
}

/**
 * The connection facts of the environ, built once per host and server rather
 * than per request (reading Bun's `hostname`/`port` costs as much as
 * answering a small request). Where the server listens comes from Bun's
 * server; Deno's handler info does not say it, so there the URL's authority
 * stands in. The client address is Deno's `remoteAddr`; on Bun it is read
 * when the app asks (`requestIP` is the costliest call of a small request).
 */
class LocalAddresses {
  private lastInfo: unknown = undefined
  private lastHost = ''
  private lastHttps = false
  private last: ConnectionInfo | null = null
  private readonly errors: ErrorStream
  /** Bun's server, when the last connection was Bun's: the client address is asked of it when the app reads it. */
  bun: BunServer | null = null

  constructor(errors: ErrorStream) {
    this.errors = errors
  }

  connection(info: unknown, host: string, https: boolean): ConnectionInfo {
    const deno = denoRemote(info)
    const last = this.last
    if (last !== null && deno === null && info === this.lastInfo && host === this.lastHost && https === this.lastHttps) return last
    let serverName: string
    let serverPort: string
    const remote = deno ?? { address: '', port: '' }
    const bun = isBunServer(info) ? info : null
    this.bun = bun
    if (bun !== null && typeof bun.hostname === 'string' && typeof bun.port === 'number') {
      serverName = bun.hostname
      serverPort = String(bun.port)
    } else {
      const bracket = host.lastIndexOf(']')
      const colon = host.lastIndexOf(':')
      const name = colon > bracket ? host.slice(0, colon) : host
      serverName = name.startsWith('[') ? name.slice(1, -1) : name
      serverPort = colon > bracket ? host.slice(colon + 1) : https ? '443' : '80'
    }
    const connection: ConnectionInfo = {
      serverName,
      serverPort,
      remoteAddr: remote.address,
      remotePort: remote.port,
      scheme: https ? 'https' : 'http',
      errors: this.errors,
      multiprocess: false,
    }
    if (deno === null) {
      this.lastInfo = info
      this.lastHost = host
      this.lastHttps = https
      this.last = connection
    }
    return connection
  }
}

/** The client's address from Deno's handler info (`remoteAddr`), or null elsewhere. */
function denoRemote(info: unknown): { address: string; port: string } | null {
  if (typeof info !== 'object' || info === null) return null
  const deno = (info as { remoteAddr?: { hostname?: unknown; port?: unknown } }).remoteAddr
  if (deno === undefined || typeof deno.hostname !== 'string') return null
  return { address: deno.hostname, port: String(deno.port ?? '') }
}

/** The client's address from Bun (`requestIP`, a system call), asked only when the app reads it. */
function bunRemote(server: BunServer, request: Request): { address: string; port: string } {
  const ip = server.requestIP(request)
  return { address: ip !== null && typeof ip.address === 'string' ? ip.address : '', port: ip !== null && ip.port !== undefined ? String(ip.port) : '' }
}
