/**
 * The framework's public types: handlers, hooks, route options, plugins
 * (`app.register` scopes) and the `App` itself. Only types live here; the
 * code that gives them meaning is in app.ts (the public methods), route.ts
 * (adding and compiling routes) and handle-request.ts (running them).
 */
import type { GatewayApp, Middleware } from '../gateway/spec.js'
import type { GatewayWebSocket } from '../gateway/websocket.js'
import type { InjectOptions, InjectResponse } from '../gateway/inject.js'
import type { Constraints, RouterOptions } from '../../plugins/router.js'
import type { BodyParser, InputSchemas } from '../../plugins/body.js'
import type { ResponseSchemas } from '../../plugins/json.js'
import type { Payload, ResponseFormat } from '../../plugins/response.js'
import type { Logger, LoggerSetting, RequestLoggerOptions } from '../../plugins/logger.js'
import type { ServerOptions } from '../server/options.js'
import type { Reply } from './reply.js'
import type { Query, Request, RequestHeaders } from './request.js'
import type { ParamsOf } from './path-params.js'
import type { BodyOf, HeadersOf, ParamsFrom, QueryOf, ReplyOf } from './schema-type.js'

/**
 * A route's schemas: inputs are validated (400 naming the field), responses
 * serialized by fast-json-stringify. Written inline or `as const`, they also
 * type the handler: `req.params`, `req.query` (from `querystring` or `query`),
 * `req.headers` and `req.body` (see schema-type.ts), and the value it returns
 * (from `response`).
 */
export interface RouteSchema extends InputSchemas {
  response?: ResponseSchemas
}

/** No decorations: the default of the `RQ` and `RP` (request and reply decorations) type parameters. */
// biome-ignore lint/complexity/noBannedTypes: `{}` is what `&` leaves alone: `Request & NoDecorations` is `Request`
export type NoDecorations = {}

/**
 * A route handler: return the response value (or a promise of it); use `reply` for status and headers.
 * `RQ` and `RP` are the request's and reply's decorations (`app.decorateRequest`), `R` what it may
 * return (from the response schemas; `unknown` is anything). Prefer {@link RouteHandler} to write
 * one apart from its route: it computes all of these from the path and the schema.
 */
export type Handler<
  Params = Record<string, string>,
  B = unknown,
  Q = Query,
  H = RequestHeaders,
  RQ extends object = NoDecorations,
  RP extends object = NoDecorations,
  R = unknown,
> = (req: Request<Params, B, Q, H> & RQ, reply: Reply & RP) => HandlerResult<R>

/** What a handler returns: anything, or with response schemas their values, the reply (after `send`) or nothing. */
// biome-ignore lint/suspicious/noConfusingVoidType: a handler that only calls reply.send() returns void
export type HandlerResult<R> = unknown extends R ? unknown : R | Reply | undefined | void | Promise<R | Reply | undefined | void>

/**
 * The handler of a route at `P` with schemas `S`, typed as the route will call it:
 *
 *     const schema = { params: { type: 'object', properties: { id: { type: 'integer' } } } } as const
 *     const getItem: RouteHandler<'/items/:id', typeof schema> = (req) => items.get(req.params.id) // id: number
 *     app.get('/items/:id', { schema }, getItem)
 */
export type RouteHandler<P extends string, S extends RouteSchema = RouteSchema, RQ extends object = NoDecorations, RP extends object = NoDecorations> = Handler<
  ParamsFrom<P, S>,
  BodyOf<S>,
  QueryOf<S>,
  HeadersOf<S>,
  RQ,
  RP,
  ReplyOf<S>
>

/** onRequest / preHandler / onResponse: may answer early with `reply.send(value)` (not onResponse). */
export type RequestHook<RQ extends object = NoDecorations, RP extends object = NoDecorations> = (req: Request & RQ, reply: Reply & RP) => void | Promise<void>
/** onSend: sees the serialized payload, may return a replacement. */
export type SendHook<RQ extends object = NoDecorations, RP extends object = NoDecorations> = (req: Request & RQ, reply: Reply & RP, payload: Payload) => SendResult
// biome-ignore lint/suspicious/noConfusingVoidType: a hook that returns nothing (`() => {}`, an async function) must type-check; `undefined` would refuse it
type SendResult = Payload | void | Promise<Payload | void>
/** onError: observes an error before the error handler answers. */
export type ErrorHook<RQ extends object = NoDecorations, RP extends object = NoDecorations> = (req: Request & RQ, reply: Reply & RP, error: unknown) => void | Promise<void>
/** onClose: runs when `app.close()` is called. */
export type CloseHook = (app: App) => void | Promise<void>
/** Turns an error into a response value (use `reply.status`); throwing falls back to the default. */
export type ErrorHandler<RQ extends object = NoDecorations, RP extends object = NoDecorations> = (error: unknown, req: Request & RQ, reply: Reply & RP) => unknown

/** The per-request hooks, by name, in the order a request meets them (onError only on the error path). */
export interface Hooks<RQ extends object = NoDecorations, RP extends object = NoDecorations> {
  onRequest: RequestHook<RQ, RP>
  preHandler: RequestHook<RQ, RP>
  onSend: SendHook<RQ, RP>
  onResponse: RequestHook<RQ, RP>
  onError: ErrorHook<RQ, RP>
}
export type HookName = keyof Hooks

/**
 * What a route may have besides its method, path and handler (what `app.get(path, options, handler)` takes).
 * Its hooks see the request untyped by the schema: onRequest runs before the inputs are checked.
 */
export interface RouteOptions<S extends RouteSchema = RouteSchema, RQ extends object = NoDecorations, RP extends object = NoDecorations> {
  schema?: S
  /** Gateway middleware for this route only (innermost). */
  middleware?: Middleware[]
  onRequest?: RequestHook<RQ, RP> | RequestHook<RQ, RP>[]
  preHandler?: RequestHook<RQ, RP> | RequestHook<RQ, RP>[]
  onSend?: SendHook<RQ, RP> | SendHook<RQ, RP>[]
  onResponse?: RequestHook<RQ, RP> | RequestHook<RQ, RP>[]
  onError?: ErrorHook<RQ, RP> | ErrorHook<RQ, RP>[]
  /** Router constraints, e.g. `{ host: 'api.example.com' }`. */
  constraints?: Constraints
  /** Largest body, in bytes (default 1 MiB). */
  bodyLimit?: number
  /** Extra body parsers by media type, for the body schema's parsing. */
  parsers?: Record<string, BodyParser>
}

/** A whole route in one object, for `app.route()`: its handler is typed from `url` and `schema` as with `app.get`. */
export interface FullRouteOptions<P extends string = string, S extends RouteSchema = RouteSchema, RQ extends object = NoDecorations, RP extends object = NoDecorations>
  extends RouteOptions<S, RQ, RP> {
  method: string | string[]
  url: P
  handler: RouteHandler<P, S, RQ, RP>
}

/**
 * `app.get`, `app.post`, …: a path and a handler, with options between them if any. `A` is the
 * app they return (for chaining), `RQ` and `RP` the request and reply decorations handlers see.
 */
export interface RouteShorthand<A = App, RQ extends object = NoDecorations, RP extends object = NoDecorations> {
  /** Params typed from the path; `<Path, Body, Query>` type the rest by hand. */
  <P extends string, B = unknown, Q = Query>(path: P, handler: Handler<ParamsOf<P>, B, Q, RequestHeaders, RQ, RP>): A
  /** With a schema: params, query, headers, body and the returned value typed from it (see schema-type.ts). */
  <P extends string, const S extends RouteSchema>(path: P, options: RouteOptions<S, RQ, RP> & { schema: S }, handler: RouteHandler<P, S, RQ, RP>): A
  /** Types given by hand (`app.post<'/x', Body>(…)`) win over the schema's; the reply is still checked against `response`. */
  <P extends string, B = unknown, Q = Query, const S extends RouteSchema = RouteSchema>(
    path: P,
    options: RouteOptions<S, RQ, RP>,
    handler: Handler<ParamsOf<P>, B, Q, RequestHeaders, RQ, RP, ReplyOf<S>>,
  ): A
}

/** What a WebSocket route's schema may check: the inputs of the upgrade request (it has no body, and the answer is the socket). */
export type WebSocketSchema = Pick<RouteSchema, 'params' | 'query' | 'querystring' | 'headers'>

/**
 * A WebSocket route's handler (`app.ws`): the accepted socket and the upgrade
 * request, params typed from the path. The socket lives as long as the
 * handler: when its promise settles the socket is closed (1000, or 1011 if
 * it rejected), so read it to its end (`for await (const m of socket)`) or
 * `await socket.closed` to keep it open.
 */
export type WebSocketHandler<Params = Record<string, string>, Q = Query, H = RequestHeaders, RQ extends object = NoDecorations> = (
  socket: GatewayWebSocket,
  req: Request<Params, unknown, Q, H> & RQ,
) => void | Promise<void>

/**
 * What `app.ws(path, options, handler)` takes: a route's options without those
 * of a response body (the answer is the socket), and the subprotocol choice.
 * The hooks run before the upgrade, so one may refuse it: `reply.code(401).send()`.
 */
export interface WebSocketRouteOptions<S extends WebSocketSchema = WebSocketSchema, RQ extends object = NoDecorations, RP extends object = NoDecorations>
  extends Omit<RouteOptions<S, RQ, RP>, 'onSend' | 'bodyLimit' | 'parsers'> {
  /**
   * Chooses the subprotocol from those the client offered (`Sec-WebSocket-Protocol`,
   * in its order): return one of them, or `undefined` to speak none. Without
   * it, none is chosen (a browser that required one then fails the connection).
   */
  protocol?: (offered: readonly string[], req: Request & RQ) => string | undefined
  /**
   * The pages allowed to open this socket, by the handshake's `Origin`
   * header: an origin (`'https://example.com'`, compared without regard to
   * case), a list of them, a RegExp tested against it, or a function. A
   * handshake whose `Origin` is present and not allowed is refused with 403
   * before any hook runs. One without `Origin` (not a browser: browsers
   * always send it) is let through: this guards against other sites' pages,
   * not other clients. Without this option every origin is accepted, and
   * since browsers send cookies on cross-site WebSocket handshakes (there
   * is no CORS for them), a route that authenticates by cookie should set it.
   */
  origin?: WebSocketOrigin<RQ>
}

/** Which `Origin` values a ws route accepts (see {@link WebSocketRouteOptions.origin}). */
export type WebSocketOrigin<RQ extends object = NoDecorations> = string | readonly string[] | RegExp | ((origin: string, req: Request & RQ) => boolean)

/** `app.ws`: a path and a handler, with options between them if any. */
export interface WebSocketShorthand<A = App, RQ extends object = NoDecorations, RP extends object = NoDecorations> {
  /** Params typed from the path. */
  <P extends string>(path: P, handler: WebSocketHandler<ParamsOf<P>, Query, RequestHeaders, RQ>): A
  /** With options: params, query and headers typed from the schema, if any. */
  <P extends string, const S extends WebSocketSchema = WebSocketSchema>(
    path: P,
    options: WebSocketRouteOptions<S, RQ, RP>,
    handler: WebSocketHandler<ParamsFrom<P, S>, QueryOf<S>, HeadersOf<S>, RQ>,
  ): A
}

/** A plugin (Fastify's sense): gets a child scope of the app (with the parent's decorations, typed as `A`) and its options; may be async. */
export type Plugin<O = Record<string, unknown>, A = App> = (app: A, options: O) => void | Promise<void>

export interface RegisterOptions {
  /** Mount the plugin's routes under this path (`/api`). */
  prefix?: string
}

/** What `app.listen()` takes: where to listen, and the server's options. */
export interface ListenOptions extends ServerOptions {
  /** Default 8888, as the `postern` command (`DEFAULT_PORT`); 0 picks a free port. */
  port?: number
  /** Default `127.0.0.1` (loopback only); `0.0.0.0` to listen on every interface. */
  host?: string
}

/** Where `app.listen()` listens. */
export interface Address {
  address: string
  port: number
  family: string
}

export interface AppOptions {
  /** Router options (trailing slashes, case, constraints, …). */
  router?: Omit<RouterOptions, 'notFound' | 'methodNotAllowed'>
  /** Default body limit for every route, in bytes. */
  bodyLimit?: number
  /**
   * Request logging with pino, as Fastify's `logger`: `true` (JSON lines to
   * stdout), pino options, or a pino logger. One line per request, `req.log`
   * carries the request id, errors are logged with their request
   * (plugins/logger.ts). Off by default: `app.log` and `req.log` then write nothing.
   */
  logger?: boolean | LoggerSetting
  /** With `logger`: the header a request id is taken from (default `x-request-id`), or `false` to always generate one. */
  requestIdHeader?: RequestLoggerOptions['requestIdHeader']
  /** With `logger`: makes a request id (default `crypto.randomUUID()`). */
  genReqId?: RequestLoggerOptions['genReqId']
}

/**
 * An app: a gateway app (`app(environ, startResponse)`) with routes, hooks and plugins.
 *
 * Only what is declared is on its type, so a typo (`app.lisen()`) does not compile.
 * Decorations are typed in one of two ways:
 *
 * - from the call: `decorate`, `decorateRequest` and `decorateReply` return the app typed with
 *   the new member, so keep what they return:
 *   `const app = postern().decorate('db', db).decorateRequest('user', null as User | null)`
 *   gives `app.db`, and `req.user` in the handlers added through `app`;
 * - once for the whole program, by declaration merging (as with Fastify's `FastifyInstance`):
 *
 *       declare module 'postern' {
 *         interface App { db: Db }
 *         interface Request { user: User | null }
 *         interface Reply { render(view: string): string }
 *       }
 *
 *   The decorator must still be added at run time (`app.decorate('db', db)`); its value is checked
 *   against the declared type.
 */
export interface App<RQ extends object = NoDecorations, RP extends object = NoDecorations> extends GatewayApp {
  get: RouteShorthand<this, RQ, RP>
  head: RouteShorthand<this, RQ, RP>
  post: RouteShorthand<this, RQ, RP>
  put: RouteShorthand<this, RQ, RP>
  patch: RouteShorthand<this, RQ, RP>
  delete: RouteShorthand<this, RQ, RP>
  options: RouteShorthand<this, RQ, RP>
  /** Every method. */
  all: RouteShorthand<this, RQ, RP>
  /**
   * A WebSocket route: upgrade requests to `path` get the socket once the
   * onRequest and preHandler hooks pass; a plain GET to it gets 426 unless a
   * GET route has the same path, which then answers it. Browsers send
   * cookies with a WebSocket handshake from any site's page (no CORS
   * applies), so a route that authenticates by cookie must set `origin`
   * to the pages it serves: `app.ws('/chat', { origin: 'https://example.com' }, handler)`.
   */
  ws: WebSocketShorthand<this, RQ, RP>
  /** A route in one object; its handler is typed from `url` and `schema`. */
  route<P extends string, const S extends RouteSchema = RouteSchema>(options: FullRouteOptions<P, S, RQ, RP>): this
  /** Types given by hand: `app.route<'/x', Body>({ … })`. */
  route<P extends string, B = unknown, Q = Query>(
    options: Omit<FullRouteOptions<P, RouteSchema, RQ, RP>, 'handler'> & { handler: Handler<ParamsOf<P>, B, Q, RequestHeaders, RQ, RP> },
  ): this
  /** Adds gateway middleware to this scope, in onion order (first added is outermost). */
  use(...middleware: Middleware[]): this
  /** Loads a plugin in a child scope. Plugins load in order; a failing one is named in the error. */
  register<O extends object = Record<string, unknown>>(plugin: Plugin<O & RegisterOptions, this>, options?: O & RegisterOptions): Promise<this>
  addHook<K extends HookName>(name: K, hook: Hooks<RQ, RP>[K]): this
  addHook(name: 'onClose', hook: CloseHook): this
  setErrorHandler(handler: ErrorHandler<RQ, RP>): this
  /** Answers requests for paths no route has, under this scope's prefix. */
  setNotFoundHandler(
    handler: Handler<Record<string, string>, unknown, Query, RequestHeaders, RQ, RP>,
    options?: Omit<RouteOptions<RouteSchema, RQ, RP>, 'schema' | 'constraints'>,
  ): this
  /** Puts a response format (e.g. HTML) in front of the built-in ones, in this scope. */
  addResponseFormat(format: ResponseFormat): this
  /** @deprecated Renamed {@link App.addResponseFormat}. */
  addResponsePlugin(format: ResponseFormat): this
  /**
   * Adds a property to this scope's app object (seen by its children, not its parent).
   * Returns the app typed with it; a name declared on `App` (declaration merging) takes a value of its declared type.
   */
  decorate<K extends string, V extends DeclaredOn<this, K>>(name: K, value: V): Decorated<this, K, V>
  /** Adds a property to requests of routes in this scope; the app it returns types `req[name]` in its handlers and hooks. */
  decorateRequest<K extends string, V extends DeclaredOn<Request, K>>(name: K, value: V): Extras<this> & App<Decorated<RQ, K, V>, RP>
  /** Adds a property to replies of routes in this scope; the app it returns types `reply[name]` in its handlers and hooks. */
  decorateReply<K extends string, V extends DeclaredOn<Reply, K>>(name: K, value: V): Extras<this> & App<RQ, Decorated<RP, K, V>>
  hasDecorator(name: string): boolean
  /** This scope's path prefix. */
  readonly prefix: string
  /** The app's logger (the root of every `req.log`); writes nothing unless the app was made with `logger`. */
  readonly log: Logger
  /** Waits for every registered plugin to load, then builds the routes. */
  ready(): Promise<this>
  /** A request in process, no socket. */
  inject(options?: InjectOptions | string): Promise<InjectResponse>
  /** Serves the app on postern's server. */
  listen(options?: ListenOptions): Promise<Address>
  /** Closes the server (if listening) and runs the onClose hooks. */
  close(): Promise<void>
  /** The routes as `METHOD path` lines, for debugging. */
  printRoutes(): string
}

/** What an app type has beyond `App`'s own members: its decorations. */
type Extras<A> = { [K in keyof A as K extends keyof App ? never : K]: A[K] }

/** A decorator's value type: what declaration merging declared for `K`, else anything. */
type DeclaredOn<T, K extends string> = K extends keyof T ? T[K] : unknown

/** `T` with the member `K: V` (a name that is not a literal adds nothing it could check). */
type Decorated<T, K extends string, V> = string extends K ? T : T & { [P in K]: V }
