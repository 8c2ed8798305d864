/**
 * `requestLogger({ logger })`: pino request logging as gateway middleware,
 * what Fastify users know as `logger: true`.
 *
 * Per request:
 * - a request id: the `X-Request-Id` header (Fastify's `requestIdHeader`)
 *   when it is a plausible id (1–128 visible ASCII characters: it is
 *   attacker input that ends up in logs and, echoed, in a header), else a
 *   generated one. Generated ids are `crypto.randomUUID()`: Fastify's
 *   `req-1`, `req-2`… repeat in every worker process and after a restart,
 *   UUIDs do not. `genReqId` picks another scheme;
 * - a child logger carrying `reqId`, for the app below in
 *   `environ['log.logger']` ({@link LOG_KEY}), the id in
 *   `environ['log.request_id']` ({@link REQUEST_ID_KEY});
 * - `gateway.errors` for the app below writes each message through that
 *   logger at `error` level with the request's method and url, so an error
 *   report (a stack, from reportError) says which request it was;
 * - exactly one line when the response is done (when the server closes the
 *   body, whether the client stayed or left), at `info`:
 *   `{ reqId, req: { method, url, host, remoteAddress, remotePort },
 *   res: { statusCode }, responseTime, msg: 'request completed' }`, with
 *   `err` when the app failed and `aborted: true` when the body was not
 *   produced to its end (the client left, or the response was cut). `req`,
 *   `res`, `responseTime` and `reqId` are Fastify's names, so tools built
 *   for its logs read these; `url` is the target as sent, query included.
 *   A WebSocket request the app accepts (`gateway.websocket`) is logged at
 *   the upgrade: `statusCode` 101, `responseTime` the time to it (not the
 *   socket's lifetime).
 *
 * The app below gets a copy of the environ with these keys: the server's
 * own `gateway.*` keys are left as they were [environ-changed].
 */
import { randomUUID } from 'node:crypto'
import { type Logger, type LoggerOptions, pino } from 'pino'
import { describeError, errorStatus } from '../lib/gateway/errors.js'
import { environKey, isToken, parseStatus } from '../lib/gateway/headers.js'
import type { AppResult, Body, Chunk, Environ, ErrorStream, Headers, Middleware, StartResponse, Write } from '../lib/gateway/spec.js'
import { WEBSOCKET_KEY, type GatewayWebSocket, type WebSocketAcceptOptions, type WebSocketUpgrade } from '../lib/gateway/websocket.js'

export type { Logger, LoggerOptions }

/** Environ key of the request's child logger (a pino `Logger` with `reqId` bound). */
export const LOG_KEY = 'log.logger'
/** Environ key of the request's id (a string). */
export const REQUEST_ID_KEY = 'log.request_id'
/** The header a request id is taken from unless told otherwise (as Fastify's `requestIdHeader`). */
export const DEFAULT_REQUEST_ID_HEADER = 'x-request-id'
/** The longest request id taken from a header; a longer one is replaced. */
export const MAX_REQUEST_ID_LENGTH = 128

/** pino's levels, most verbose first; `silent` logs nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** What a logger setting may be: `true` (pino's defaults, JSON lines to stdout), pino options, or a pino logger. */
export type LoggerSetting = true | LoggerOptions | Logger

export interface RequestLoggerOptions {
  /** The root logger: `true` (the default) for pino's defaults on stdout, pino options, or a pino instance. */
  logger?: LoggerSetting
  /** The header a request id is taken from (default `x-request-id`); `false` to always generate one. */
  requestIdHeader?: string | false
  /** Makes an id when the request brings none (or an unusable one); default `crypto.randomUUID()`. */
  genReqId?: (environ: Environ) => string
  /**
   * Sends the id back in a response header: `true` for the request id
   * header's name (`x-request-id`), or a header name. Off by default. An id
   * the app already set in that header is left alone.
   */
  responseIdHeader?: boolean | string
}

/** Whether `value` is a pino logger (rather than options for one). */
export function isLogger(value: unknown): value is Logger {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as Logger).child === 'function' &&
    typeof (value as Logger).info === 'function' &&
    typeof (value as Logger).error === 'function'
  )
}

/** The logger a setting stands for: the instance itself, or a new pino logger. */
export function createLogger(setting: LoggerSetting = true): Logger {
  if (setting === true) return pino()
  if (isLogger(setting)) return setting
  if (setting === null || typeof setting !== 'object')
    throw new TypeError(`postern: logger must be true, pino options or a pino logger, got ${setting === null ? 'null' : typeof setting}`)
  return pino(setting)
}

let silent: Logger | undefined
/** A logger that writes nothing (level `silent`): what `req.log` is when an app has no logger, so `req.log.info()` never throws. */
export function silentLogger(): Logger {
  return (silent ??= pino({ level: 'silent' }))
}

const VISIBLE_ASCII = /^[\x21-\x7e]+$/

/** Whether a client-sent id may be used as is: 1–128 visible ASCII characters (no space, CR, LF, control or non-ASCII). */
export function isUsableRequestId(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_REQUEST_ID_LENGTH && VISIBLE_ASCII.test(value)
}

/** The resolved way ids are found: the environ key of the header (or null) and the generator. */
interface IdSource {
  key: string | null
  gen: (environ: Environ) => string
}

function idSource(header: string | false | undefined, gen: ((environ: Environ) => string) | undefined): IdSource {
  if (gen !== undefined && typeof gen !== 'function') throw new TypeError('postern: genReqId must be a function (environ) => string')
  const name = header ?? DEFAULT_REQUEST_ID_HEADER
  if (name !== false && (typeof name !== 'string' || !isToken(name))) throw new TypeError(`postern: requestIdHeader must be a header name or false, got ${JSON.stringify(name)}`)
  return { key: name === false ? null : environKey(name.toLowerCase()), gen: gen ?? (() => randomUUID()) }
}

function idFor(source: IdSource, environ: Environ): string {
  if (source.key !== null) {
    const sent = environ[source.key]
    if (isUsableRequestId(sent)) return sent
  }
  return String(source.gen(environ))
}

/**
 * The id of a request that went through no {@link requestLogger}: the
 * default header's value when usable, else a new UUID. The framework's
 * `req.id` without a logger.
 */
export function requestIdOf(environ: Environ): string {
  const known = environ[REQUEST_ID_KEY]
  if (typeof known === 'string') return known
  return idFor(DEFAULT_SOURCE, environ)
}
const DEFAULT_SOURCE: IdSource = idSource(undefined, undefined)

/** Logs requests with pino; see the file's comment. */
export function requestLogger(options: RequestLoggerOptions = {}): Middleware {
  const root = createLogger(options.logger)
  const source = idSource(options.requestIdHeader, options.genReqId)
  const echo = options.responseIdHeader ?? false
  let echoName: string | null = null
  if (echo === true) echoName = options.requestIdHeader || DEFAULT_REQUEST_ID_HEADER
  else if (typeof echo === 'string') {
    if (!isToken(echo)) throw new TypeError(`postern: responseIdHeader must be true, false or a header name, got ${JSON.stringify(echo)}`)
    echoName = echo
  } else if (echo !== false) throw new TypeError('postern: responseIdHeader must be true, false or a header name')
  const echoLower = echoName?.toLowerCase() ?? null

  return (app) => (environ, startResponse) => {
    const id = idFor(source, environ)
    const request = new RequestLog(root.child({ reqId: id }), environ, startResponse, echoName, echoLower, id)
    // Object.assign, not a spread followed by more keys: ~17× cheaper on Node 20's V8 (measured, 4.3 µs → 0.25 µs).
    const inner: Environ = Object.assign({}, environ, { [LOG_KEY]: request.log, [REQUEST_ID_KEY]: id, 'gateway.errors': request })
    const offer = environ[WEBSOCKET_KEY]
    if (offer !== undefined) inner[WEBSOCKET_KEY] = request.watchUpgrade(offer)
    let result: AppResult
    let then: unknown
    try {
      result = app(inner, request.startResponse)
      then = result !== null && typeof result === 'object' ? (result as PromiseLike<Body>).then : undefined
    } catch (error) {
      request.failed(error)
      throw error
    }
    if (typeof then === 'function') {
      return Promise.resolve(result).then(
        (body) => request.wrap(body),
        (error: unknown) => {
          request.failed(error)
          throw error
        },
      )
    }
    return request.wrap(result as Body)
  }
}

/**
 * One request's log: its child logger, the status the app gave, and the one
 * line written when the server closes the body. It is also the request's
 * `gateway.errors` (write/flush), to spare an object per request.
 */
class RequestLog implements ErrorStream {
  readonly log: Logger
  readonly startResponse: StartResponse
  private readonly environ: Environ
  private readonly began = performance.now()
  private code = 0
  /** A non-empty chunk was produced: the response can no longer be replaced. */
  private produced = false
  /** The body was produced to its end (an array: at once). */
  private ended = false
  private error: unknown = undefined
  private failedWith = false
  private logged = false
  private closed = false

  constructor(log: Logger, environ: Environ, serverStart: StartResponse, echoName: string | null, echoLower: string | null, id: string) {
    this.log = log
    this.environ = environ
    this.startResponse = (status, headers, error) => {
      let list = headers
      if (echoName !== null && Array.isArray(headers) && !headers.some((h) => Array.isArray(h) && typeof h[0] === 'string' && h[0].toLowerCase() === echoLower)) {
        // A copy: the app's list may be a constant shared by every response.
        list = [...headers, [echoName, id]] as Headers
      }
      const write = serverStart(status, list, error)
      this.code = parseStatus(status)
      return (chunk: Chunk) => {
        if (typeof chunk === 'string' ? chunk.length > 0 : chunk instanceof Uint8Array && chunk.byteLength > 0) this.produced = true
        ;(write as Write)(chunk)
      }
    }
  }

  // -- gateway.websocket -------------------------------------------------------

  /**
   * The server's WebSocket offer, with `accept()` watched as `startResponse`
   * is: an upgraded request's line is written at the upgrade, as a 101 with
   * the time to it, not at the socket's end with its whole lifetime.
   */
  watchUpgrade(offer: WebSocketUpgrade): WebSocketUpgrade {
    if (offer === null || typeof offer !== 'object' || typeof offer.accept !== 'function') return offer // not an offer: validate() tells the server
    return {
      protocols: offer.protocols,
      accept: (options?: WebSocketAcceptOptions): GatewayWebSocket => {
        const socket = offer.accept(options)
        this.code = 101
        this.ended = true
        this.done()
        return socket
      },
    }
  }

  // -- gateway.errors ----------------------------------------------------------

  write(message: string): void {
    const text = typeof message === 'string' ? message.replace(/\n+$/, '') : describeError(message)
    try {
      this.log.error({ req: { method: this.environ.REQUEST_METHOD, url: this.environ.REQUEST_URI } }, text)
    } catch {
      // a broken log must not break the response
    }
  }

  flush(): void {
    try {
      this.log.flush()
    } catch {
      // nothing to flush into
    }
  }

  // -- the outcome ---------------------------------------------------------------

  /** The app (or its body) failed: before anything was produced the server answers with the error's status. */
  failed(error: unknown): void {
    this.failedWith = true
    this.error = error
    if (!this.produced) this.code = errorStatus(error)
    this.done()
  }

  /** Writes the request's one line, once. Logging never throws into the response. */
  private done(): void {
    if (this.logged) return
    this.logged = true
    const e = this.environ
    const line: Record<string, unknown> = {
      req: { method: e.REQUEST_METHOD, url: e.REQUEST_URI, host: e.HTTP_HOST, remoteAddress: e.REMOTE_ADDR, remotePort: Number(e.REMOTE_PORT) },
      res: { statusCode: this.code },
      responseTime: Math.round((performance.now() - this.began) * 1000) / 1000,
    }
    if (this.failedWith) line['err'] = this.error instanceof Error ? this.error : { message: describeError(this.error) }
    else if (!this.ended) line['aborted'] = true
    try {
      this.log.info(line, 'request completed')
    } catch {
      try {
        // pino could not serialize the error (a throwing getter, a Proxy): describe it instead
        line['err'] = { message: describeError(this.error) }
        this.log.info(line, 'request completed')
      } catch {
        // nowhere left to log
      }
    }
  }

  // -- the body --------------------------------------------------------------------

  /**
   * Wraps the body so that the line is written when the server closes it,
   * forwarding `close()` to the body once. An array stays an array (a copy:
   * the app's may be shared), so the server still sends it whole with its
   * length; a sync body stays sync.
   */
  wrap(body: Body): Body {
    if (body === null || typeof body !== 'object') {
      // Not a body at all: the server refuses it with a 500 and has nothing to close.
      this.failed(new TypeError(`the app returned ${body === null ? 'null' : typeof body} instead of a body`))
      return body
    }
    if (Array.isArray(body)) {
      this.ended = true
      const copy = (body as Chunk[]).slice() as Chunk[] & { close(): void | Promise<void> }
      copy.close = () => this.close(body)
      return copy
    }
    const wrapped = { close: () => this.close(body) } as Body & { close(): void | Promise<void> }
    const asyncIter = (body as AsyncIterable<Chunk>)[Symbol.asyncIterator]
    const syncIter = (body as Iterable<Chunk>)[Symbol.iterator]
    if (typeof asyncIter === 'function') {
      ;(wrapped as AsyncIterable<Chunk>)[Symbol.asyncIterator] = () => this.asyncIterator(asyncIter.call(body))
    } else if (typeof syncIter === 'function') {
      ;(wrapped as Iterable<Chunk>)[Symbol.iterator] = () => this.syncIterator(syncIter.call(body))
    } else {
      // Not iterable: the server refuses it with a 500, and closes it.
      this.failed(new TypeError('the app returned an object that is not iterable instead of a body'))
      return body
    }
    return wrapped
  }

  /** The server is done with the body: forward close() once, and log. */
  private close(body: Body): void | Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
      return typeof body.close === 'function' ? body.close() : undefined
    } finally {
      this.done()
    }
  }

  private seen(r: IteratorResult<Chunk>): IteratorResult<Chunk> {
    if (r.done === true) this.ended = true
    else if (!this.produced) {
      const chunk: unknown = r.value
      if (typeof chunk === 'string' ? chunk.length > 0 : chunk instanceof Uint8Array && chunk.byteLength > 0) this.produced = true
    }
    return r
  }

  private syncIterator(it: Iterator<Chunk>): Iterator<Chunk> {
    return {
      next: () => {
        try {
          return this.seen(it.next())
        } catch (error) {
          this.failed(error)
          throw error
        }
      },
      return: (value?: unknown) => (typeof it.return === 'function' ? it.return(value) : { done: true, value: undefined }),
    }
  }

  private asyncIterator(it: AsyncIterator<Chunk>): AsyncIterator<Chunk> {
    return {
      next: async () => {
        try {
          return this.seen(await it.next())
        } catch (error) {
          this.failed(error)
          throw error
        }
      },
      return: async (value?: unknown) => (typeof it.return === 'function' ? it.return(value) : { done: true, value: undefined }),
    }
  }
}
