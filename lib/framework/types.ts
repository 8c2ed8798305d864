/**
 * The framework's public types: handlers, hooks, route options, plugins
 * (`app.register` scopes) and the `App` itself. Only types live here; the
 * code that gives them meaning is in app.ts (the public methods), route.ts
 * (adding and compiling routes) and handle-request.ts (running them).
 */
import type { GatewayApp, Middleware } from '../gateway/spec.js'
import type { InjectOptions, InjectResponse } from '../gateway/inject.js'
import type { Constraints, RouterOptions } from '../../plugins/router.js'
import type { BodyParser, InputSchemas } from '../../plugins/body.js'
import type { JsonSchema, ResponseSchemas } from '../../plugins/json.js'
import type { Payload, ResponseFormat } from '../../plugins/response.js'
import type { ServerOptions } from '../server/options.js'
import type { Reply } from './reply.js'
import type { Query, Request } from './request.js'
import type { ParamsOf } from './path-params.js'
import type { BodyOf } from './schema-type.js'

/** A route's schemas: inputs are validated (400 naming the field), responses serialized by fast-json-stringify. */
export interface RouteSchema extends InputSchemas {
  response?: ResponseSchemas
}

/** A route handler: return the response value (or a promise of it); use `reply` for status and headers. */
export type Handler<Params = Record<string, string>, B = unknown, Q = Query> = (req: Request<Params, B, Q>, reply: Reply) => unknown

/** onRequest / preHandler / onResponse: may answer early with `reply.send(value)` (not onResponse). */
export type RequestHook = (req: Request, reply: Reply) => void | Promise<void>
/** onSend: sees the serialized payload, may return a replacement. */
// biome-ignore lint/suspicious/noConfusingVoidType: a hook that returns nothing (`() => {}`, an async function) must type-check; `undefined` would refuse it
export type SendHook = (req: Request, reply: Reply, payload: Payload) => Payload | void | Promise<Payload | void>
/** onError: observes an error before the error handler answers. */
export type ErrorHook = (req: Request, reply: Reply, error: unknown) => void | Promise<void>
/** onClose: runs when `app.close()` is called. */
export type CloseHook = (app: App) => void | Promise<void>
/** Turns an error into a response value (use `reply.status`); throwing falls back to the default. */
export type ErrorHandler = (error: unknown, req: Request, reply: Reply) => unknown

/** The per-request hooks, by name, in the order a request meets them (onError only on the error path). */
export interface Hooks {
  onRequest: RequestHook
  preHandler: RequestHook
  onSend: SendHook
  onResponse: RequestHook
  onError: ErrorHook
}
export type HookName = keyof Hooks

/** What a route may have besides its method, path and handler (what `app.get(path, options, handler)` takes). */
export interface RouteOptions<B = unknown> {
  schema?: RouteSchema & { body?: JsonSchema; __body?: B }
  /** Gateway middleware for this route only (innermost). */
  middleware?: Middleware[]
  onRequest?: RequestHook | RequestHook[]
  preHandler?: RequestHook | RequestHook[]
  onSend?: SendHook | SendHook[]
  onResponse?: RequestHook | RequestHook[]
  onError?: ErrorHook | ErrorHook[]
  /** Router constraints, e.g. `{ host: 'api.example.com' }`. */
  constraints?: Constraints
  /** Largest body, in bytes (default 1 MiB). */
  bodyLimit?: number
  /** Extra body parsers by media type, for the body schema's parsing. */
  parsers?: Record<string, BodyParser>
}

/** A whole route in one object, for `app.route()`. */
export interface FullRouteOptions<P extends string = string, B = unknown> extends RouteOptions<B> {
  method: string | string[]
  url: P
  handler: Handler<ParamsOf<P>, B>
}

/** `app.get`, `app.post`, …: a path and a handler, with options between them if any. */
export interface RouteShorthand {
  <P extends string, B = unknown>(path: P, handler: Handler<ParamsOf<P>, B>): App
  /** With a schema: `req.body` is typed from `schema.body` (see schema-type.ts). */
  <P extends string, const S extends RouteSchema>(path: P, options: RouteOptions & { schema: S }, handler: Handler<ParamsOf<P>, BodyOf<S>>): App
  <P extends string, B = unknown>(path: P, options: RouteOptions<B>, handler: Handler<ParamsOf<P>, B>): App
}

/** A plugin (Fastify's sense): gets a child scope of the app and its options; may be async. */
export type Plugin<O = Record<string, unknown>> = (app: App, options: O) => void | Promise<void>

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
}

/** An app: a gateway app (`app(environ, startResponse)`) with routes, hooks and plugins. */
export interface App extends GatewayApp {
  get: RouteShorthand
  head: RouteShorthand
  post: RouteShorthand
  put: RouteShorthand
  patch: RouteShorthand
  delete: RouteShorthand
  options: RouteShorthand
  /** Every method. */
  all: RouteShorthand
  route<P extends string, B = unknown>(options: FullRouteOptions<P, B>): App
  /** Adds gateway middleware to this scope, in onion order (first added is outermost). */
  use(...middleware: Middleware[]): App
  /** Loads a plugin in a child scope. Plugins load in order; a failing one is named in the error. */
  register<O extends object = Record<string, unknown>>(plugin: Plugin<O & RegisterOptions>, options?: O & RegisterOptions): Promise<App>
  addHook<K extends HookName>(name: K, hook: Hooks[K]): App
  addHook(name: 'onClose', hook: CloseHook): App
  setErrorHandler(handler: ErrorHandler): App
  /** Answers requests for paths no route has, under this scope's prefix. */
  setNotFoundHandler(handler: Handler, options?: Omit<RouteOptions, 'schema' | 'constraints'>): App
  /** Puts a response format (e.g. HTML) in front of the built-in ones, in this scope. */
  addResponseFormat(format: ResponseFormat): App
  /** @deprecated Renamed {@link App.addResponseFormat}. */
  addResponsePlugin(format: ResponseFormat): App
  /** Adds a property to this scope's app object (seen by its children, not its parent). */
  decorate(name: string, value: unknown): App
  /** Adds a property to requests of routes in this scope. */
  decorateRequest(name: string, value: unknown): App
  /** Adds a property to replies of routes in this scope. */
  decorateReply(name: string, value: unknown): App
  hasDecorator(name: string): boolean
  /** This scope's path prefix. */
  readonly prefix: string
  /** Waits for every registered plugin to load, then builds the routes. */
  ready(): Promise<App>
  /** A request in process, no socket. */
  inject(options?: InjectOptions | string): Promise<InjectResponse>
  /** Serves the app on postern's server. */
  listen(options?: ListenOptions): Promise<Address>
  /** Closes the server (if listening) and runs the onClose hooks. */
  close(): Promise<void>
  /** The routes as `METHOD path` lines, for debugging. */
  printRoutes(): string
  [decoration: string]: unknown
}
