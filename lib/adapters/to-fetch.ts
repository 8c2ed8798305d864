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
import { buildEnviron, type ConnectionInfo } from '../gateway/environ.js'
import { GatewayCall } from '../gateway/runner.js'
import { chunkBytes, joinChunks } from '../gateway/chunks.js'
import { DEFAULT_BODY_LIMIT } from '../gateway/limits.js'
import { StreamInput } from '../gateway/stream-input.js'
import { FetchWebSockets } from './fetch-websocket.js'
import type { BunWebSocketHandler } from './fetch-websocket-bun.js'
import type { WebSocketOptions } from './websocket-options.js'

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
 */
export type FetchHandler = (request: Request, info?: unknown) => Promise<Response>

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
  const websockets = new FetchWebSockets(options.webSocket, errors)
  const handler: FetchHandler = (request, info) =>
    new Promise<Response>((resolve) => {
      const call = new FetchCall(request, resolve, errors)
      let environ: Environ
      try {
        environ = environOf(request, info, errors, limit)
      } catch (error) {
        call.refuseFor(error)
        return
      }
      // One look at Upgrade; only a handshake goes further.
      if (environ.HTTP_UPGRADE !== undefined && websockets.offer(call, request, info, environ, resolve)) return
      call.run(app, environ)
    })
  return Object.assign(handler, { websocket: websockets.bun, closeWebSockets: () => websockets.closeAll() })
}

/**
 * One app call whose response becomes a Fetch `Response`: the runner's sink
 * for Bun, Deno and other Fetch hosts. A whole body becomes the `Response`'s
 * bytes; a streamed one a pull-driven `ReadableStream`, so a slow client
 * slows the app, and a client that leaves cancels the stream, which closes
 * the app's body.
 */
class FetchCall extends GatewayCall {
  private readonly resolve: (response: Response) => void
  private readonly errors: ErrorStream
  private controller: ReadableStreamDefaultController<Uint8Array> | null = null
  private waiting: (() => void) | null = null

  constructor(request: Request, resolve: (response: Response) => void, errors: ErrorStream) {
    super(request.method, request.url)
    this.resolve = resolve
    this.errors = errors
  }

  private init(length: number): ResponseInit {
    const headers = new Headers()
    for (const [name, value] of this.headers) headers.append(name, value)
    // A HEAD answer carries the length a GET would have (RFC 9110 §9.3.2).
    if (length >= 0 && this.facts!.declaredLength < 0 && this.code !== 204 && this.code !== 304) headers.set('content-length', String(length))
    return { status: this.code, statusText: this.status.slice(4), headers }
  }

  /** Whether a Fetch `Response` may carry a body: never for HEAD, 204, 205 or 304. */
  private get bodiless(): boolean {
    return this.noBody || this.code === 205
  }

  protected sendWhole(chunks: readonly Chunk[], total: number): void {
    this.resolve(new Response(this.bodiless || total === 0 ? null : joinChunks(chunks, total), this.init(total)))
  }

  protected sendHead(): void {
    if (this.bodiless) {
      this.resolve(new Response(null, this.init(-1)))
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
    this.resolve(new Response(stream, this.init(-1)))
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
    this.resolve(new Response(this.method === 'HEAD' ? null : body, { status, statusText: STATUS_TEXT[status] ?? '', headers }))
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
    return environOf(request, info, errors, limit)
  } catch {
    return null
  }
}

/** The environ for a Fetch request; throws a 400 GatewayError when the path cannot be decoded. */
function environOf(request: Request, info: unknown, errors: ErrorStream, limit: number): Environ {
  const url = request.url
  // `request.url` is absolute; the target is what follows the authority, as sent (not re-encoded by URL).
  const scheme = url.indexOf('://')
  const slash = url.indexOf('/', scheme + 3)
  const origin = slash < 0 ? url : url.slice(0, slash)
  const target = slash < 0 ? '/' : url.slice(slash)
  const https = url.startsWith('https:')
  const host = origin.slice(scheme + 3)
  const remote = remoteOf(request, info)
  const bracket = host.lastIndexOf(']')
  const colon = host.lastIndexOf(':')
  const port = colon > bracket ? host.slice(colon + 1) : ''
  const name = colon > bracket ? host.slice(0, colon) : host
  const local = localOf(info)
  const connection: ConnectionInfo = {
    serverName: local?.address ?? (name.startsWith('[') ? name.slice(1, -1) : name),
    serverPort: local?.port ?? (port !== '' ? port : https ? '443' : '80'),
    remoteAddr: remote.address,
    remotePort: remote.port,
    scheme: https ? 'https' : 'http',
    errors,
    multiprocess: false,
  }
  const headers: string[] = []
  request.headers.forEach((value, name) => {
    headers.push(name, value)
  })
  const input = new StreamInput(streamChunks(request.body), null, limit)
  const environ = buildEnviron(request.method, target, 'HTTP/1.1', headers, connection, input)
  // The URL's authority is the request's host: hosts put the Host header there, or an
  // absolute-form target's authority, which wins over Host (RFC 9112 §3.2.2).
  environ.HTTP_HOST = host
  input.length = /^\d+$/.test(environ.CONTENT_LENGTH) ? Number(environ.CONTENT_LENGTH) : request.body === null ? 0 : null
  return environ
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
 * The address the server listens on, from Bun's server (`hostname`, `port`);
 * Deno's handler info does not say it, so there the URL's authority stands in.
 */
function localOf(info: unknown): { address: string; port: string } | null {
  if (typeof info !== 'object' || info === null) return null
  const bun = info as { hostname?: unknown; port?: unknown; requestIP?: unknown }
  if (typeof bun.requestIP !== 'function' || typeof bun.hostname !== 'string' || typeof bun.port !== 'number') return null
  return { address: bun.hostname, port: String(bun.port) }
}

/** The client's address, from Deno's handler info (`remoteAddr`) or Bun's server (`requestIP`). */
function remoteOf(request: Request, info: unknown): { address: string; port: string } {
  if (typeof info === 'object' && info !== null) {
    const deno = (info as { remoteAddr?: { hostname?: unknown; port?: unknown } }).remoteAddr
    if (deno !== undefined && typeof deno.hostname === 'string') return { address: deno.hostname, port: String(deno.port ?? '') }
    const bun = info as { requestIP?: (r: Request) => { address?: unknown; port?: unknown } | null }
    if (typeof bun.requestIP === 'function') {
      const ip = bun.requestIP(request)
      if (ip !== null && typeof ip.address === 'string') return { address: ip.address, port: String(ip.port ?? '') }
    }
  }
  return { address: '', port: '' }
}
