/**
 * The framework's request: a thin, lazy view over the environ. Nothing is
 * parsed until asked for (query, headers, body), and each part is parsed at
 * most once, so a handler that reads only `params` costs one object.
 */
import type { Environ } from '../gateway/spec.js'
import { environKey } from '../gateway/headers.js'
import { DEFAULT_BODY_LIMIT, parseForm, parseJson, parseQuery, requestHeaders } from '../../plugins/body.js'
import { PARAMS_KEY, ROUTE_KEY, type RouteInfo } from '../../plugins/router.js'
import { requestCookies, signingJar, type Cookies, type UnsignResult } from '../../plugins/cookies.js'
import { LOG_KEY, REQUEST_ID_KEY, requestIdOf, silentLogger, type Logger } from '../../plugins/logger.js'

/** The query as parsed: repeated keys become arrays. */
export type Query = Record<string, string | string[]>

/** The request headers as parsed: lower-case names, repeated headers joined. */
export type RequestHeaders = Record<string, string>

/** Per-route settings the request needs. */
export interface RequestContext {
  /** Largest body `json()`/`text()`/`bytes()` read, in bytes. */
  readonly bodyLimit: number
}

const DEFAULT_CONTEXT: RequestContext = { bodyLimit: DEFAULT_BODY_LIMIT }
const NO_PARAMS: Record<string, string> = Object.freeze(Object.create(null) as Record<string, string>)
const decoder = new TextDecoder()

/**
 * `Params`, `Body`, `Q` (query) and `H` (headers) are what the route's
 * schemas make them (see schema-type.ts): the validator coerces and checks
 * the parts in place before the handler runs, so the types hold.
 */
export class Request<Params = Record<string, string>, Body = unknown, Q = Query, H = RequestHeaders> {
  /** The environ this request views; middleware keys are there too. */
  readonly environ: Environ
  /** The body parsed (and validated) before the handler, when the route has a body schema. */
  body: Body
  private readonly context: RequestContext
  private parsedQuery: Q | undefined
  private parsedHeaders: H | undefined
  private bytesRead: Promise<Uint8Array> | undefined
  private parsedCookies: Cookies | undefined

  constructor(environ: Environ, context: RequestContext = DEFAULT_CONTEXT) {
    this.environ = environ
    this.context = context
    this.body = undefined as Body
    this.parsedQuery = undefined
    this.parsedHeaders = undefined
    this.bytesRead = undefined
    this.parsedCookies = undefined
  }

  /**
   * The request's logger: a pino child logger carrying `reqId` when the app
   * has a `logger`, else one that writes nothing, so `req.log.info()` is
   * always safe to call (as in Fastify).
   */
  get log(): Logger {
    return (this.environ[LOG_KEY] as Logger | undefined) ?? silentLogger()
  }

  /**
   * The request's id, as logged: from `X-Request-Id` when it is a plausible
   * id (1–128 visible ASCII characters), else a generated UUID (see
   * plugins/logger.ts). Without a `logger` it is made on first use.
   */
  get id(): string {
    const id = this.environ[REQUEST_ID_KEY]
    if (typeof id === 'string') return id
    return (this.environ[REQUEST_ID_KEY] = requestIdOf(this.environ))
  }

  /** `GET`, `POST`, … */
  get method(): string {
    return this.environ.REQUEST_METHOD
  }

  /** The decoded path below the app's mount point (`PATH_INFO`). */
  get path(): string {
    return this.environ.PATH_INFO || '/'
  }

  /** The request target as sent (`/a%20b?x=1`). */
  get url(): string {
    return this.environ.REQUEST_URI
  }

  /** Route parameters (`/users/:id` → `{ id }`), percent-decoded. */
  get params(): Params {
    return (this.environ[PARAMS_KEY] ?? NO_PARAMS) as Params
  }

  /** The matched route. */
  get route(): RouteInfo | undefined {
    return this.environ[ROUTE_KEY] as RouteInfo | undefined
  }

  /** The parsed query string (parsed on first use). */
  get query(): Q {
    return (this.parsedQuery ??= parseQuery(this.environ.QUERY_STRING) as Q)
  }

  /** All request headers, lower-case names (built on first use). Prefer {@link header} for one. */
  get headers(): H {
    return (this.parsedHeaders ??= requestHeaders(this.environ) as H)
  }

  /** One request header by name, any case; no object is built. */
  header(name: string): string | undefined {
    const lower = name.toLowerCase()
    if (lower === 'content-type') return this.environ.CONTENT_TYPE || undefined
    if (lower === 'content-length') return this.environ.CONTENT_LENGTH || undefined
    return this.environ[environKey(lower)] as string | undefined
  }

  /** The request's cookies (parsed on first use; by the `cookies()` middleware's options when it runs above). */
  get cookies(): Cookies {
    return (this.parsedCookies ??= requestCookies(this.environ))
  }

  /** Checks a signed cookie value (`req.unsignCookie(req.cookies.session)`) against the secrets of `app.use(cookies({ secret }))`. */
  unsignCookie(value: string | undefined): UnsignResult {
    return signingJar(this.environ, 'req.unsignCookie()').unsign(value)
  }

  /** The whole body as bytes (read once; later calls share it). Over the limit: 413. */
  bytes(): Promise<Uint8Array> {
    return (this.bytesRead ??= this.environ['gateway.input'].bytes(this.context.bodyLimit))
  }

  /** The body as UTF-8 text. */
  async text(): Promise<string> {
    return decoder.decode(await this.bytes())
  }

  /** The body parsed as JSON, whatever its Content-Type (prototype-poisoning keys refused: 400). */
  async json<T = Body>(): Promise<T> {
    return parseJson(await this.text()) as T
  }

  /** The body parsed as a URL-encoded form. */
  async form(): Promise<Record<string, string | string[]>> {
    return parseForm(await this.text())
  }
}
