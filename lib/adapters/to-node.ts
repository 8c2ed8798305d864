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
import { GATEWAY_VERSION, type Environ, type ErrorStream, type GatewayApp } from '../gateway/spec.js'
import { environKey } from '../gateway/headers.js'
import { stderrStream } from '../gateway/errors.js'
import { callApp, concat, drain, errorResponse, hasNoBody, plainResponse, reportError, type ErrorResponse, type Started } from '../gateway/runner.js'
import { DEFAULT_BODY_LIMIT, StreamInput } from '../gateway/stream-input.js'
import { decodePath, splitTarget } from '../gateway/target.js'

export interface NodeAdapterOptions {
  /** Where app errors go (`gateway.errors`); default: standard error. */
  errors?: ErrorStream
  /** The default limit of `gateway.input.bytes()`/`text()`, in bytes (1 MiB). */
  maxBodySize?: number
  /** Overrides `gateway.url_scheme`, e.g. behind a proxy that terminates TLS. */
  urlScheme?: 'http' | 'https'
  /** `gateway.multiprocess`: whether other processes serve the same app. */
  multiprocess?: boolean
}

/** The requests and responses of node:http and of node:http2's compatibility API. */
export type NodeRequest = IncomingMessage | Http2ServerRequest
export type NodeResponse = ServerResponse | Http2ServerResponse
export type NodeRequestListener = (req: NodeRequest, res: NodeResponse) => void

/** The part of a Node response this adapter uses, common to HTTP/1 and the HTTP/2 compatibility API. */
interface Res {
  statusCode: number
  readonly headersSent: boolean
  setHeader(name: string, value: string | string[]): unknown
  hasHeader(name: string): boolean
  writeHead(status: number, reason?: string): unknown
  write(chunk: Uint8Array): boolean
  end(chunk?: Uint8Array): unknown
  destroy(error?: Error): unknown
  once(event: string, listener: () => void): unknown
  off(event: string, listener: () => void): unknown
  stream?: { close(code: number): void }
  socket?: { destroyed: boolean; end(callback: () => void): unknown; destroy(): unknown } | null
}

/** Wraps `app` as a listener for `http.createServer`, `https`, `http2` (compat) or `express().use()`. */
export function toNodeListener(app: GatewayApp, options: NodeAdapterOptions = {}): NodeRequestListener {
  const errors = options.errors ?? stderrStream
  return (req, res) => {
    void respond(app, req, res as unknown as Res, options, errors).catch((error: unknown) => {
      reportError(errors, 'node adapter failure', error)
      abort(res as unknown as Res)
    })
  }
}

async function respond(app: GatewayApp, req: NodeRequest, res: Res, options: NodeAdapterOptions, errors: ErrorStream): Promise<void> {
  const method = req.method ?? 'GET'
  const http1 = req.httpVersionMajor < 2
  let ended = false
  let finished = false
  let aborted = false
  let started: Started | undefined
  let onAbort = (): void => {}
  const whenAborted = new Promise<null>((resolve) => {
    onAbort = () => resolve(null)
  })
  // The HTTP/2 compatibility API emits 'finish' for a reset stream too:
  // only a finish after our own end() means the response went out whole.
  res.once('finish', () => {
    finished = ended
  })
  const end = (chunk?: Uint8Array): void => {
    ended = true
    res.end(chunk)
  }
  res.once('close', () => {
    if (finished) return
    // The client went away before the response was complete.
    aborted = true
    onAbort()
    void started?.close().catch((error: unknown) => reportError(errors, 'body close() failed', error))
  })

  const environ = nodeEnviron(req, options, errors)
  if (environ === null) {
    sendError(res, end, method, http1, plainResponse(400, 'malformed percent-encoding in the request path'))
    return
  }
  try {
    started = await callApp(app, environ)
  } catch (error) {
    const response = errorResponse(error, errors)
    if (!aborted) sendError(res, end, method, http1, response)
    return
  }
  try {
    if (aborted) return
    const noBody = hasNoBody(method, started.status)
    setHeaders(res, started.headers)
    if (started.done) {
      // The whole body is here: frame it with its length.
      const whole = concat(started.first)
      // A HEAD answer carries the length a GET would have (RFC 9110 §9.3.2).
      if (!hasNoBody('GET', started.status) && !res.hasHeader('content-length')) res.setHeader('Content-Length', String(whole.byteLength))
      writeHead(res, http1, started.status, started.reason)
      end(noBody || whole.byteLength === 0 ? undefined : whole)
      return
    }
    writeHead(res, http1, started.status, started.reason)
    if (noBody) {
      end()
      await drain(started, errors)
      return
    }
    for (const chunk of started.first) {
      if (!res.write(chunk)) await drained(res, whenAborted)
    }
    for (;;) {
      const next = started.next()
      next.catch(() => {}) // may lose the race to an abort; its failure is then of no interest
      const chunk = await Promise.race([next, whenAborted])
      if (chunk === null || aborted) break
      if (!res.write(chunk)) await drained(res, whenAborted)
    }
    if (!aborted) end()
  } catch (error) {
    // Bytes may have gone out: cut the connection so the client sees a
    // truncated response, never a wrong one.
    reportError(errors, 'app error after the response started', error)
    abort(res)
  } finally {
    await started.close().catch((error: unknown) => reportError(errors, 'body close() failed', error))
  }
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

function writeHead(res: Res, http1: boolean, status: number, reason: string): void {
  // HTTP/2 has no reason phrase (RFC 9113 §8.3.2).
  if (http1) res.writeHead(status, reason)
  else res.writeHead(status)
}

function sendError(res: Res, end: (chunk?: Uint8Array) => void, method: string, http1: boolean, response: ErrorResponse): void {
  if (res.headersSent) {
    abort(res)
    return
  }
  setHeaders(res, response.headers)
  writeHead(res, http1, response.status, response.reason)
  end(method === 'HEAD' ? undefined : response.body)
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

function drained(res: Res, whenAborted: Promise<null>): Promise<unknown> {
  return Promise.race([
    new Promise<void>((resolve) => {
      const done = (): void => {
        res.off('drain', done)
        res.off('close', done)
        resolve()
      }
      res.once('drain', done)
      res.once('close', done)
    }),
    whenAborted,
  ])
}


/**
 * The environ for a Node request, as postern's server builds it; null when
 * the path cannot be decoded (a 400). Under Express, `baseUrl` (where the
 * handler is mounted) becomes `SCRIPT_NAME` and `originalUrl` `REQUEST_URI`.
 */
export function nodeEnviron(req: NodeRequest, options: NodeAdapterOptions = {}, errors: ErrorStream = options.errors ?? stderrStream): Environ | null {
  const mounted = req as { baseUrl?: unknown; originalUrl?: unknown }
  const url = req.url ?? '/'
  const { path, query } = splitTarget(url)
  const pathInfo = decodePath(path)
  if (pathInfo === null) return null
  const scriptName = typeof mounted.baseUrl === 'string' ? decodePath(mounted.baseUrl) : ''
  if (scriptName === null) return null
  const socket = req.socket as { localAddress?: string; localPort?: number; remoteAddress?: string; remotePort?: number; encrypted?: boolean } | null
  const http2 = req.httpVersionMajor >= 2
  const environ: Environ = {
    REQUEST_METHOD: req.method ?? 'GET',
    SCRIPT_NAME: scriptName,
    PATH_INFO: pathInfo,
    QUERY_STRING: query,
    REQUEST_URI: typeof mounted.originalUrl === 'string' ? mounted.originalUrl : url,
    CONTENT_TYPE: '',
    CONTENT_LENGTH: '',
    SERVER_NAME: socket?.localAddress ?? '',
    SERVER_PORT: String(socket?.localPort ?? ''),
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    REMOTE_ADDR: socket?.remoteAddress ?? '',
    REMOTE_PORT: String(socket?.remotePort ?? ''),
    'gateway.version': GATEWAY_VERSION,
    'gateway.url_scheme': options.urlScheme ?? (socket?.encrypted === true ? 'https' : 'http'),
    'gateway.input': undefined as unknown as StreamInput,
    'gateway.errors': errors,
    'gateway.multithread': false,
    'gateway.multiprocess': options.multiprocess ?? false,
    'gateway.run_once': false,
  }
  let authority: string | undefined
  let chunked = false
  const raw = req.rawHeaders
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase()
    const value = raw[i + 1]!
    if (name.charCodeAt(0) === 0x3a /* : */) {
      if (name === ':authority') authority = value
      continue // other HTTP/2 pseudo-headers are in REQUEST_METHOD, REQUEST_URI, url_scheme
    }
    if (name === 'content-type') environ.CONTENT_TYPE = environ.CONTENT_TYPE === '' ? value : `${environ.CONTENT_TYPE}, ${value}`
    else if (name === 'content-length') environ.CONTENT_LENGTH = value.trim()
    else if (name.includes('_')) continue // would alias the `-` spelling after conversion
    else {
      if (name === 'transfer-encoding') chunked = true
      const key = environKey(name)
      const previous = environ[key]
      environ[key] = typeof previous !== 'string' ? value : `${previous}${name === 'cookie' ? '; ' : ', '}${value}`
    }
  }
  if (environ.HTTP_HOST === undefined && authority !== undefined) environ.HTTP_HOST = authority

  let length: number | null
  if (/^\d+$/.test(environ.CONTENT_LENGTH)) length = Number(environ.CONTENT_LENGTH)
  else if (http2) length = (req as Http2ServerRequest).stream.endAfterHeaders ? 0 : null
  else length = chunked ? null : 0
  environ['gateway.input'] = new StreamInput(req, length, options.maxBodySize ?? DEFAULT_BODY_LIMIT, () => pairs(req.rawTrailers))
  return environ
}

function pairs(raw: readonly string[] | undefined): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = []
  if (raw === undefined) return out
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!])
  return out
}
