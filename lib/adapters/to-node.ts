/**
 * `toNodeListener(app)`: a postern app as a Node request listener, so it runs
 * under node:http, node:https, node:http2 (compatibility API) and mounted in
 * Express or Connect. The listener builds the environ the way postern's
 * server does and keeps every server rule of lib/gateway.ts: the response is
 * sent only once it is fixed, the body streams with backpressure, `close()`
 * is always called, and a failing app gets a 500 (or a cut connection once
 * bytes went out).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { constants as h2constants, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import { GatewayError, type Chunk, type Environ, type Headers, type ErrorStream, type GatewayApp } from '../gateway/spec.js'
import { STATUS_TEXT } from '../gateway/headers.js'
import { stderrStream, writeLog } from '../gateway/errors.js'
import { buildEnviron, declaredLength, MALFORMED_PATH, type ConnectionInfo, type Mount } from '../gateway/environ.js'
import { GatewayCall } from '../gateway/runner.js'
import { joinChunks } from '../gateway/chunks.js'
import { DEFAULT_BODY_LIMIT } from '../gateway/limits.js'
import { StreamInput } from '../gateway/stream-input.js'
import { decodePath } from '../gateway/target.js'
import type { WebSocketOptions } from '../gateway/websocket-limits.js'
import { NodeBody } from './node-body.js'
import { refusedHandshake } from './node-handshake.js'

export interface NodeAdapterOptions {
  /** Where app errors go (`gateway.errors`); default: standard error. */
  errors?: ErrorStream
  /** The default limit of `gateway.input.bytes()`/`text()`, in bytes (1 MiB). */
  maxBodySize?: number
  /** Overrides `gateway.url_scheme`, e.g. behind a proxy that terminates TLS. */
  urlScheme?: 'http' | 'https'
  /** `gateway.multiprocess`: whether other processes serve the same app. */
  multiprocess?: boolean
  /**
   * WebSocket limits of the upgrade listener (`toNodeUpgrade`, wired by
   * `serveNode`), named and defaulted as on postern's server; `false`:
   * `serveNode` offers no WebSockets (Node then serves handshakes as plain
   * requests).
   */
  webSocket?: WebSocketOptions | false
}

/** The requests and responses of node:http and of node:http2's compatibility API. */
export type NodeRequest = IncomingMessage | Http2ServerRequest
export type NodeResponse = ServerResponse | Http2ServerResponse
export type NodeRequestListener = (req: NodeRequest, res: NodeResponse) => void

/** The part of a Node response this adapter uses, common to HTTP/1 and the HTTP/2 compatibility API. */
export interface Res {
  statusCode: number
  readonly headersSent: boolean
  setHeader(name: string, value: string | string[]): unknown
  hasHeader(name: string): boolean
  writeHead(status: number, reason?: string, headers?: string[]): unknown
  write(chunk: Uint8Array): boolean
  end(chunk?: Uint8Array | string): unknown
  destroy(error?: Error): unknown
  once(event: string, listener: () => void): unknown
  off(event: string, listener: () => void): unknown
  stream?: { close(code: number): void }
  socket?: { destroyed: boolean; end(callback: () => void): unknown; destroy(): unknown } | null
}

/** Wraps `app` as a listener for `http.createServer`, `https`, `http2` (compat) or `express().use()`. */
export function toNodeListener(app: GatewayApp, options: NodeAdapterOptions = {}): NodeRequestListener {
  const errors = options.errors ?? stderrStream
  const infos = new WeakMap<object, ConnectionInfo>()
  return (req, res) => {
    const call = new NodeCall(req, res as unknown as Res, errors)
    let environ: Environ
    try {
      environ = environOf(req, options, errors, infos)
    } catch (error) {
      call.refuseFor(error)
      return
    }
    // One look at Upgrade: a handshake Node did not hand to 'upgrade' may be one to refuse.
    if (environ.HTTP_UPGRADE !== undefined && refusedHandshake(req, res as ServerResponse, environ)) return
    call.run(app, environ)
    // A sync app with an array body is done by now; only a response still in flight listens for the client leaving.
    if (!call.done) call.watch()
  }
}

/** One app call whose response goes to a Node `ServerResponse`: the runner's sink for node:http (and for the upgrade listener's answers, node-websocket.ts). */
export class NodeCall extends GatewayCall {
  private readonly res: Res
  private readonly http1: boolean
  private readonly errors: ErrorStream
  private blocked = false
  private waiting: (() => void) | null = null

  constructor(req: NodeRequest, res: Res, errors: ErrorStream) {
    super(req.method ?? 'GET', req.url ?? '/')
    this.res = res
    this.http1 = req.httpVersionMajor < 2
    this.errors = errors
  }

  /** Listens for the client going away before the response is complete. */
  watch(): void {
    const onClose = (): void => {
      this.wake()
      if (!this.done) this.abandon()
    }
    this.res.once('close', onClose)
  }

  protected sendWhole(chunks: readonly Chunk[], total: number): void {
    const res = this.res
    const facts = this.facts!
    // A HEAD answer carries the length a GET would have (RFC 9110 §9.3.2).
    const length = facts.declaredLength < 0 && this.code !== 204 && this.code !== 304 ? String(total) : null
    writeHead(res, this.http1, this.code, this.status, this.headers, length)
    if (this.noBody || total === 0) res.end()
    else if (chunks.length === 1) res.end(chunks[0] as Uint8Array)
    else res.end(joinChunks(chunks, total))
  }

  protected sendHead(): void {
    writeHead(this.res, this.http1, this.code, this.status, this.headers, null)
  }

  protected sendChunk(chunk: Chunk): void {
    if (!this.res.write(chunk as Uint8Array)) this.blocked = true
  }

  protected sendEnd(): void {
    this.res.end()
  }

  protected sendError(status: number, message: string): void {
    const res = this.res
    if (res.headersSent) {
      abort(res)
      return
    }
    const body = `${message}\n`
    const headers: Array<[string, string]> = [
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Content-Length', String(Buffer.byteLength(body))],
    ]
    setHeaders(res, headers)
    if (this.http1) res.writeHead(status, STATUS_TEXT[status] ?? '')
    else res.writeHead(status)
    res.end(this.method === 'HEAD' ? undefined : body)
  }

  protected cut(): void {
    abort(this.res)
  }

  protected mustWait(): boolean {
    return this.blocked && !this.gone
  }

  protected waitWritable(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiting = resolve
      this.res.once('drain', () => this.wake())
    })
  }

  /** The response drained or closed: the body may go on (or learn it must stop). */
  private wake(): void {
    this.blocked = false
    const waiting = this.waiting
    this.waiting = null
    waiting?.()
  }

  protected log(message: string): void {
    writeLog(this.errors, message)
  }
}

/**
 * Writes the head. On HTTP/1 the headers go as one flat list (one call, no
 * per-name bookkeeping); Node applies such a list with `setHeader` when
 * something (Express) set headers before, which would keep only the last of
 * repeated names, so repeated names (Set-Cookie) are grouped first.
 */
function writeHead(res: Res, http1: boolean, code: number, status: string, headers: Headers, length: string | null): void {
  if (http1 && !hasRepeatedName(headers)) {
    const flat: string[] = []
    for (let i = 0; i < headers.length; i++) flat.push(headers[i]![0], headers[i]![1])
    if (length !== null) flat.push('Content-Length', length)
    res.writeHead(code, status.slice(4), flat)
    return
  }
  setHeaders(res, headers)
  if (length !== null) res.setHeader('Content-Length', length)
  if (http1) res.writeHead(code, status.slice(4))
  else res.writeHead(code) // HTTP/2 has no reason phrase (RFC 9113 §8.3.2)
}

function hasRepeatedName(headers: Headers): boolean {
  for (let i = 1; i < headers.length; i++) {
    const name = headers[i]![0]
    for (let j = 0; j < i; j++) {
      const other = headers[j]![0]
      if (other.length === name.length && other.toLowerCase() === name.toLowerCase()) return true
    }
  }
  return false
}

function setHeaders(res: Res, headers: ReadonlyArray<[string, string]>): void {
  // Grouped by name so repeated fields (Set-Cookie) stay separate lines.
  const grouped = new Map<string, [string, string[]]>()
  for (const [name, value] of headers) {
    const key = name.toLowerCase()
    const entry = grouped.get(key)
    if (entry === undefined) grouped.set(key, [name, [value]])
    else entry[1].push(value)
  }
  for (const [name, values] of grouped.values()) res.setHeader(name, values.length === 1 ? values[0]! : values)
}

/**
 * Ends the response abnormally: a reset HTTP/2 stream, or a closed HTTP/1
 * connection. The bytes already written are flushed first (Node holds them
 * in a corked socket), so the client sees them cut short, then the close.
 */
function abort(res: Res): void {
  if (res.stream !== undefined) {
    res.stream.close(h2constants.NGHTTP2_INTERNAL_ERROR)
    return
  }
  const socket = res.socket
  if (socket === null || socket === undefined || socket.destroyed) res.destroy()
  else socket.end(() => socket.destroy())
}

/**
 * The environ for a Node request, as every postern server builds it
 * (lib/gateway/environ.ts); null when the path cannot be decoded (a 400).
 * Under Express, `baseUrl` (where the handler is mounted) becomes
 * `SCRIPT_NAME` and `originalUrl` `REQUEST_URI`.
 */
export function nodeEnviron(req: NodeRequest, options: NodeAdapterOptions = {}, errors: ErrorStream = options.errors ?? stderrStream): Environ | null {
  try {
    return environOf(req, options, errors, null)
  } catch {
    return null
  }
}

type NodeSocket = { localAddress?: string; localPort?: number; remoteAddress?: string; remotePort?: number; encrypted?: boolean } | null

/** The environ for a Node request; throws a 400 GatewayError when the path cannot be decoded. */
export function environOf(req: NodeRequest, options: NodeAdapterOptions, errors: ErrorStream, infos: WeakMap<object, ConnectionInfo> | null): Environ {
  const socket = req.socket as NodeSocket
  let info = socket === null ? undefined : infos?.get(socket)
  if (info === undefined) {
    info = {
      serverName: socket?.localAddress ?? '',
      serverPort: String(socket?.localPort ?? ''),
      remoteAddr: socket?.remoteAddress ?? '',
      remotePort: String(socket?.remotePort ?? ''),
      scheme: options.urlScheme ?? (socket?.encrypted === true ? 'https' : 'http'),
      errors,
      multiprocess: options.multiprocess ?? false,
    }
    if (socket !== null && infos !== null) infos.set(socket, info)
  }
  const mounted = req as { baseUrl?: unknown; originalUrl?: unknown }
  let mount: Mount | undefined
  if (typeof mounted.baseUrl === 'string' || typeof mounted.originalUrl === 'string') {
    const scriptName = typeof mounted.baseUrl === 'string' ? decodePath(mounted.baseUrl) : ''
    if (scriptName === null) throw new GatewayError(400, MALFORMED_PATH)
    mount = { scriptName, requestUri: typeof mounted.originalUrl === 'string' ? mounted.originalUrl : (req.url ?? '/') }
  }
  const input = new StreamInput(new NodeBody(req), null, options.maxBodySize ?? DEFAULT_BODY_LIMIT, () => pairs(req.rawTrailers))
  const environ = buildEnviron(req.method ?? 'GET', req.url ?? '/', `HTTP/${req.httpVersion}`, req.rawHeaders, info, input, mount)
  let length = declaredLength(environ)
  if (length === null) {
    if (req.httpVersionMajor >= 2) length = (req as Http2ServerRequest).stream.endAfterHeaders ? 0 : null
    else length = environ.HTTP_TRANSFER_ENCODING !== undefined ? null : 0
  }
  input.length = length
  return environ
}

function pairs(raw: readonly string[] | undefined): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = []
  if (raw === undefined) return out
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!])
  return out
}
