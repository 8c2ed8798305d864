/**
 * The framework: `postern()` returns an app that IS a gateway app (call it
 * as `app(environ, startResponse)` or hand it to any gateway server) and
 * also has `get`/`post`/…, `use`, `register`, hooks, `inject` and `listen`.
 *
 * It is built from the plugins: routes go into a router (plugins/router.ts),
 * middleware wraps it in onion order (plugins/chain.ts), handler values are
 * serialized by response plugins (plugins/text.ts, plugins/json.ts) and
 * inputs are parsed and validated by plugins/body.ts.
 *
 * Encapsulation: `register(plugin)` runs the plugin with a child scope. What
 * the plugin adds there (routes, middleware, hooks, decorators, error and
 * not-found handlers, response plugins) applies to that scope and its
 * children only; what the parent has applies to the child too.
 *
 * Speed: everything per route (hooks, schemas, serializers, middleware) is
 * resolved once, when the app is first called after a change. A sync
 * handler on a route without request hooks runs synchronously end to end
 * and returns a one-element array body.
 */
import { describeError, publicMessage, statusOf } from '../gateway/errors.js'
import { GatewayError, type AppResult, type Body, type Environ, type GatewayApp, type Middleware, type StartResponse } from '../gateway/spec.js'
import { STATUS_TEXT } from '../gateway/headers.js'
import { inject as injectInto, type InjectOptions, type InjectResponse } from '../gateway/inject.js'
import { Reply } from './reply.js'
import { Request, type Query, type RequestContext } from './request.js'
import { compose } from '../../plugins/chain.js'
import { ALL_METHODS, ALLOW_KEY, createRouter, type Constraints, type RouterOptions } from '../../plugins/router.js'
import { compileChecks, parseBody, DEFAULT_BODY_LIMIT, type BodyParser, type Checks, type InputSchemas } from '../../plugins/body.js'
import { compileSerializers, defaultPlugins, JSON_TYPE, type ResponseSchemas } from '../../plugins/json.js'
import { serialize, start, type Payload, type ResponsePlugin, type Serialized, type Serializer } from '../../plugins/response.js'
import type { ServerOptions } from '../server/options.js'
import type { BodyOf } from './schema-type.js'

export { Request } from './request.js'
export { Reply } from './reply.js'

// ── Types ───────────────────────────────────────────────────────────────────

/** A parameter's name without its regexp (`id(^\\d+)` → `id`). */
type ParamName<S extends string> = S extends `${infer N}(${string}` ? N : S
/** The parameter names in one path segment (`:from-:to`, `:file.:ext`). */
type SegmentParams<S extends string> = S extends `${infer A}-:${infer B}`
  ? ParamName<A> | SegmentParams<B>
  : S extends `${infer A}.:${infer B}`
    ? ParamName<A> | SegmentParams<B>
    : ParamName<S>
/** Every parameter name in a path pattern, optional ones ending in `?`. */
export type PathParamNames<P extends string> = P extends `${string}:${infer Rest}`
  ? Rest extends `${infer Segment}/${infer Tail}`
    ? SegmentParams<Segment> | PathParamNames<`/${Tail}`>
    : SegmentParams<Rest>
  : never
type Required_<N> = N extends `${string}?` ? never : N
type Optional_<N> = N extends `${infer M}?` ? M : never
/** The params object of a path pattern: `/users/:id` → `{ id: string }`; a wildcard adds `'*'`. */
export type ParamsOf<P extends string> = string extends P
  ? Record<string, string>
  : { [K in Required_<PathParamNames<P>>]: string } & { [K in Optional_<PathParamNames<P>>]?: string } & (P extends `${string}*` ? { '*': string } : unknown)

/** A JSON schema, as a plain object. */
export type Schema = Record<string, unknown> | boolean

/** A route's schemas: inputs are validated (400 naming the field), responses serialized by fast-json-stringify. */
export interface RouteSchema extends InputSchemas {
  response?: ResponseSchemas
}

/** A route handler: return the response value (or a promise of it); use `reply` for status and headers. */
export type Handler<Params = Record<string, string>, B = unknown, Q = Query> = (req: Request<Params, B, Q>, reply: Reply) => unknown

/** onRequest / preHandler / onResponse: may answer early with `reply.send(value)` (not onResponse). */
export type RequestHook = (req: Request, reply: Reply) => void | Promise<void>
/** onSend: sees the serialized payload, may return a replacement. */
export type SendHook = (req: Request, reply: Reply, payload: Payload) => Payload | void | Promise<Payload | void>
/** onError: observes an error before the error handler answers. */
export type ErrorHook = (req: Request, reply: Reply, error: unknown) => void | Promise<void>
/** onClose: runs when `app.close()` is called. */
export type CloseHook = (app: App) => void | Promise<void>
/** Turns an error into a response value (use `reply.status`); throwing falls back to the default. */
export type ErrorHandler = (error: unknown, req: Request, reply: Reply) => unknown

export interface Hooks {
  onRequest: RequestHook
  preHandler: RequestHook
  onSend: SendHook
  onResponse: RequestHook
  onError: ErrorHook
}
export type HookName = keyof Hooks

export interface RouteOptions<B = unknown> {
  schema?: RouteSchema & { body?: Schema; __body?: B }
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

export interface FullRouteOptions<P extends string = string, B = unknown> extends RouteOptions<B> {
  method: string | string[]
  url: P
  handler: Handler<ParamsOf<P>, B>
}

export interface RouteShorthand {
  <P extends string, B = unknown>(path: P, handler: Handler<ParamsOf<P>, B>): App
  /** With a schema: `req.body` is typed from `schema.body` (see lib/schema-type.ts). */
  <P extends string, const S extends RouteSchema>(path: P, options: RouteOptions & { schema: S }, handler: Handler<ParamsOf<P>, BodyOf<S>>): App
  <P extends string, B = unknown>(path: P, options: RouteOptions<B>, handler: Handler<ParamsOf<P>, B>): App
}

/** A plugin: gets a child scope of the app and its options; may be async. */
export type Plugin<O = Record<string, unknown>> = (app: App, options: O) => void | Promise<void>

export interface RegisterOptions {
  /** Mount the plugin's routes under this path (`/api`). */
  prefix?: string
}

export interface ListenOptions extends ServerOptions {
  port?: number
  host?: string
}

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
  /** Puts a response plugin (e.g. HTML) in front of the built-in ones, in this scope. */
  addResponsePlugin(plugin: ResponsePlugin): App
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

// ── Scopes ──────────────────────────────────────────────────────────────────

type HookLists = { [K in HookName]: Array<Hooks[K]> }

interface Scope {
  readonly parent: Scope | null
  readonly root: Root
  readonly name: string
  readonly prefix: string
  readonly middleware: Middleware[]
  readonly hooks: HookLists
  readonly plugins: ResponsePlugin[]
  errorHandler: ErrorHandler | null
  readonly Req: RequestClass
  readonly Rep: ReplyClass
  /** Plugins registered in this scope load one after the other. */
  loading: Promise<void>
}

type RequestClass = new (environ: Environ, context: RequestContext) => Request
type ReplyClass = new (environ: Environ) => Reply

interface RouteRecord {
  methods: string[]
  path: string
  options: RouteOptions
  handler: Handler
  scope: Scope
  /** Compiled at registration: input checks and response serializers. */
  checks: Checks
  serializerFor: (status: number) => Serializer | undefined
}

interface NotFoundRecord {
  scope: Scope
  handler: Handler
  options: RouteOptions
}

interface Root {
  routes: RouteRecord[]
  notFound: NotFoundRecord[]
  onClose: CloseHook[]
  options: AppOptions
  dirty: boolean
  dispatch: GatewayApp
  server: { close(): Promise<unknown> } | null
  rootScope: Scope | null
  /** The root app function (what `postern()` returned). */
  app: App | null
  /** Every route, added as it is registered, to catch duplicates and bad patterns early. */
  checker: ReturnType<typeof createRouter>
}

const SCOPE = Symbol('postern.scope')

function emptyHooks(): HookLists {
  return { onRequest: [], preHandler: [], onSend: [], onResponse: [], onError: [] }
}

function scopeOf(app: App): Scope {
  return (app as unknown as { [SCOPE]: Scope })[SCOPE]
}

/** The scopes from the root down to `scope`. */
function lineage(scope: Scope): Scope[] {
  const out: Scope[] = []
  for (let s: Scope | null = scope; s !== null; s = s.parent) out.unshift(s)
  return out
}

function joinPath(prefix: string, path: string): string {
  if (prefix === '') return path
  return path === '/' ? prefix : prefix + path
}

function normalizePrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === '' || prefix === '/') return ''
  const withSlash = prefix.startsWith('/') ? prefix : '/' + prefix
  return withSlash.endsWith('/') ? withSlash.slice(0, -1) : withSlash
}

// ── The app ─────────────────────────────────────────────────────────────────

/** Creates an app. */
export function postern(options: AppOptions = {}): App {
  const root: Root = {
    routes: [],
    notFound: [],
    onClose: [],
    options,
    dirty: true,
    dispatch: () => {
      throw new Error('postern: app not built')
    },
    server: null,
    rootScope: null,
    app: null,
    checker: createRouter(options.router),
  }
  const app = function postern(environ: Environ, startResponse: StartResponse): AppResult {
    if (root.dirty) build(root)
    return root.dispatch(environ, startResponse)
  } as App
  const scope: Scope = {
    parent: null,
    root,
    name: 'root',
    prefix: '',
    middleware: [],
    hooks: emptyHooks(),
    plugins: [],
    errorHandler: null,
    Req: class extends Request {},
    Rep: class extends Reply {},
    loading: Promise.resolve(),
  }
  root.rootScope = scope
  root.app = app
  Object.defineProperty(app, SCOPE, { value: scope })
  Object.assign(app, methods)
  Object.defineProperty(app, 'prefix', { get: () => '', enumerable: true })
  return app
}

/** Creates the child scope a plugin gets. */
function childScope(parentApp: App, name: string, prefix: string): App {
  const parent = scopeOf(parentApp)
  const scope: Scope = {
    parent,
    root: parent.root,
    name,
    prefix: parent.prefix + normalizePrefix(prefix),
    middleware: [],
    hooks: emptyHooks(),
    plugins: [],
    errorHandler: null,
    Req: class extends parent.Req {},
    Rep: class extends parent.Rep {},
    loading: Promise.resolve(),
  }
  const child = Object.create(parentApp) as App
  Object.defineProperty(child, SCOPE, { value: scope })
  Object.defineProperty(child, 'prefix', { get: () => scope.prefix, enumerable: true })
  return child
}

function asArray<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value]
}

function addRoute(app: App, methodList: string[], path: string, options: RouteOptions, handler: Handler): App {
  if (typeof handler !== 'function') throw new TypeError(`postern: the handler for ${methodList.join(',')} ${path} must be a function`)
  if (typeof path !== 'string' || !path.startsWith('/')) throw new TypeError(`postern: route path must start with '/', got ${JSON.stringify(path)}`)
  const scope = scopeOf(app)
  const schema = options.schema ?? {}
  const record: RouteRecord = {
    methods: methodList.map((m) => m.toUpperCase()),
    path: joinPath(scope.prefix, path),
    options,
    handler,
    scope,
    checks: compileChecks(schema),
    serializerFor: compileSerializers(schema.response),
  }
  const records = [record]
  // `/api` + `/` also answers `/api/`.
  if (scope.prefix !== '' && path === '/') records.push({ ...record, path: scope.prefix + '/' })
  // Add to the checking router now, so a duplicate or malformed route fails here, not on the first request.
  for (const r of records) {
    try {
      scope.root.checker.on(r.methods, r.path, unreachable, r.options.constraints ? { constraints: r.options.constraints } : {})
    } catch (error) {
      throw new Error(`postern: cannot add route ${r.methods.join(',')} ${r.path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
    }
  }
  scope.root.routes.push(...records)
  scope.root.dirty = true
  return app
}

const unreachable: GatewayApp = () => {
  throw new Error('postern: the checking router is never called')
}

function shorthand(method: string | string[]): RouteShorthand {
  return function (this: App, path: string, a: RouteOptions | Handler, b?: Handler): App {
    const [options, handler] = typeof a === 'function' ? [{}, a] : [a, b as Handler]
    return addRoute(this, typeof method === 'string' ? [method] : method, path, options, handler)
  } as RouteShorthand
}


const methods = {
  get: shorthand('GET'),
  head: shorthand('HEAD'),
  post: shorthand('POST'),
  put: shorthand('PUT'),
  patch: shorthand('PATCH'),
  delete: shorthand('DELETE'),
  options: shorthand('OPTIONS'),
  all: shorthand([...ALL_METHODS]),
  route(this: App, options: FullRouteOptions): App {
    const { method, url, handler, ...rest } = options
    return addRoute(this, asArray(method), url, rest, handler as Handler)
  },
  use(this: App, ...middleware: Middleware[]): App {
    for (const m of middleware) if (typeof m !== 'function') throw new TypeError('postern: middleware must be a function (app) => app')
    const scope = scopeOf(this)
    scope.middleware.push(...middleware)
    scope.root.dirty = true
    return this
  },
  register(this: App, plugin: Plugin<RegisterOptions>, options: RegisterOptions = {}): Promise<App> {
    if (typeof plugin !== 'function') return Promise.reject(new TypeError(`postern: register() needs a plugin function, got ${typeof plugin}`))
    const scope = scopeOf(this)
    const name = plugin.name || 'anonymous plugin'
    const child = childScope(this, name, options.prefix ?? '')
    const load = async () => {
      try {
        await plugin(child, options)
        // Wait for the plugin's own (possibly unawaited) registrations.
        await scopeOf(child).loading
      } catch (error) {
        if (error instanceof PluginError) throw error
        const message = error instanceof Error ? error.message : String(error)
        throw new PluginError(`postern: plugin "${name}" failed to load: ${message}`, name, error)
      }
      scope.root.dirty = true
    }
    const loaded = scope.loading.then(load)
    // A failure stays with this registration; later ones still run in order.
    scope.loading = loaded.catch(() => {})
    return loaded.then(() => this)
  },
  addHook(this: App, name: HookName | 'onClose', hook: Hooks[HookName] | CloseHook): App {
    if (typeof hook !== 'function') throw new TypeError(`postern: ${name} hook must be a function`)
    const scope = scopeOf(this)
    if (name === 'onClose') scope.root.onClose.push(hook as CloseHook)
    else if (name in scope.hooks) (scope.hooks[name] as unknown[]).push(hook)
    else throw new TypeError(`postern: unknown hook ${JSON.stringify(name)}`)
    scope.root.dirty = true
    return this
  },
  setErrorHandler(this: App, handler: ErrorHandler): App {
    const scope = scopeOf(this)
    scope.errorHandler = handler
    scope.root.dirty = true
    return this
  },
  setNotFoundHandler(this: App, handler: Handler, options: RouteOptions = {}): App {
    const scope = scopeOf(this)
    scope.root.notFound = scope.root.notFound.filter((n) => n.scope !== scope)
    scope.root.notFound.push({ scope, handler, options })
    scope.root.dirty = true
    return this
  },
  addResponsePlugin(this: App, plugin: ResponsePlugin): App {
    const scope = scopeOf(this)
    scope.plugins.unshift(plugin)
    scope.root.dirty = true
    return this
  },
  decorate(this: App, name: string, value: unknown): App {
    if (name in this) throw new Error(`postern: decorator ${JSON.stringify(name)} already exists`)
    Object.defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true })
    return this
  },
  decorateRequest(this: App, name: string, value: unknown): App {
    const Req = scopeOf(this).Req
    if (name in Req.prototype) throw new Error(`postern: request decorator ${JSON.stringify(name)} already exists`)
    Object.defineProperty(Req.prototype, name, { value, writable: true, enumerable: false, configurable: true })
    return this
  },
  decorateReply(this: App, name: string, value: unknown): App {
    const { Rep } = scopeOf(this)
    if (name in Rep.prototype) throw new Error(`postern: reply decorator ${JSON.stringify(name)} already exists`)
    Object.defineProperty(Rep.prototype, name, { value, writable: true, enumerable: false, configurable: true })
    return this
  },
  hasDecorator(this: App, name: string): boolean {
    return name in this
  },
  async ready(this: App): Promise<App> {
    const scope = scopeOf(this)
    let root: Scope = scope
    while (root.parent !== null) root = root.parent
    await root.loading
    build(scope.root)
    return this
  },
  async inject(this: App, options: InjectOptions | string = {}): Promise<InjectResponse> {
    await methods.ready.call(this)
    const root = scopeOf(this).root
    const app: GatewayApp = (environ, startResponse) => root.dispatch(environ, startResponse)
    return injectInto(app, typeof options === 'string' ? { url: options } : options)
  },
  async listen(this: App, options: ListenOptions = {}): Promise<Address> {
    const scope = scopeOf(this)
    if (scope.root.server !== null) throw new Error('postern: app is already listening')
    await methods.ready.call(this)
    const { port = 3000, host = '127.0.0.1', ...serverOptions } = options
    const { createServer } = await import('../server/index.js')
    const root = scope.root
    const server = createServer(root.app!, serverOptions)
    root.server = server
    const address = await server.listen({ port, host })
    return { address: address.address, port: address.port, family: String(address.family) }
  },
  async close(this: App): Promise<void> {
    const root = scopeOf(this).root
    const server = root.server
    root.server = null
    if (server !== null) await server.close()
    for (const hook of [...root.onClose].reverse()) await hook(this)
  },
  printRoutes(this: App): string {
    return scopeOf(this)
      .root.routes.map((r) => `${r.methods.join(',')} ${r.path}`)
      .join('\n')
  },
}

/** A plugin failed to load; `plugin` names it. */
export class PluginError extends Error {
  readonly plugin: string
  constructor(message: string, plugin: string, cause: unknown) {
    super(message, { cause })
    this.name = 'PluginError'
    this.plugin = plugin
  }
}

// ── Building: everything per route is resolved here, once ─────────────────────

/** What one route runs, with every list resolved from its scopes. */
interface Compiled {
  handler: Handler
  Req: RequestClass
  Rep: ReplyClass
  context: RequestContext
  /** onRequest hooks, input checks, body parsing and preHandler hooks, in order. */
  steps: RequestHook[]
  onSend: SendHook[]
  onResponse: RequestHook[]
  onError: ErrorHook[]
  plugins: readonly ResponsePlugin[]
  serializerFor: (status: number) => Serializer | undefined
  errorHandler: ErrorHandler | null
}

function collect<K extends HookName>(scopes: Scope[], name: K, own: Array<Hooks[K]>): Array<Hooks[K]> {
  const out: Array<Hooks[K]> = []
  for (const s of scopes) out.push(...s.hooks[name])
  out.push(...own)
  return out
}

function compile(scope: Scope, handler: Handler, options: RouteOptions, checks: Checks, serializerFor: (status: number) => Serializer | undefined): Compiled {
  const scopes = lineage(scope)
  const bodyLimit = options.bodyLimit ?? scope.root.options.bodyLimit ?? DEFAULT_BODY_LIMIT
  const steps: RequestHook[] = collect(scopes, 'onRequest', asArray(options.onRequest))
  if (checks.params || checks.query || checks.headers) steps.push(inputCheck(checks))
  if (checks.body) steps.push(bodyCheck(checks.body, bodyLimit, options.parsers))
  steps.push(...collect(scopes, 'preHandler', asArray(options.preHandler)))
  const plugins: ResponsePlugin[] = []
  for (let i = scopes.length - 1; i >= 0; i--) plugins.push(...scopes[i]!.plugins)
  plugins.push(...defaultPlugins)
  let errorHandler: ErrorHandler | null = null
  for (let s: Scope | null = scope; s !== null && errorHandler === null; s = s.parent) errorHandler = s.errorHandler
  return {
    handler,
    Req: scope.Req,
    Rep: scope.Rep,
    context: { bodyLimit },
    steps,
    onSend: collect(scopes, 'onSend', asArray(options.onSend)),
    onResponse: collect(scopes, 'onResponse', asArray(options.onResponse)),
    onError: collect(scopes, 'onError', asArray(options.onError)),
    plugins,
    serializerFor,
    errorHandler,
  }
}

function inputCheck(checks: Checks): RequestHook {
  return (req) => {
    const error =
      (checks.params ? checks.params(req.params) : null) ??
      (checks.query ? checks.query(req.query) : null) ??
      (checks.headers ? checks.headers(req.headers) : null)
    if (error !== null) throw error
  }
}

function bodyCheck(check: NonNullable<Checks['body']>, limit: number, parsers: Record<string, BodyParser> | undefined): RequestHook {
  return async (req) => {
    const body = await parseBody(req.environ, { limit, read: () => req.bytes(), ...(parsers ? { parsers } : {}) })
    const error = check(body)
    if (error !== null) throw error
    req.body = body
  }
}

/** Scope middleware (below the root's, which wraps everything) and route middleware, outermost first. */
function routeMiddleware(scope: Scope, own: Middleware[] | undefined): Middleware[] {
  const out: Middleware[] = []
  for (const s of lineage(scope)) if (s.parent !== null) out.push(...s.middleware)
  if (own) out.push(...own)
  return out
}

function build(root: Root): void {
  const rootScope = root.rootScope!
  const notFounds = [...root.notFound]
  if (!notFounds.some((n) => n.scope === rootScope)) notFounds.push({ scope: rootScope, handler: defaultNotFound, options: {} })
  // Longest prefix first: a request gets the not-found handler of the deepest scope it is under.
  const byPrefix = notFounds
    .map((n) => ({
      prefix: n.scope.prefix,
      app: compose(routeMiddleware(n.scope, n.options.middleware), routeApp(compile(n.scope, n.handler, n.options, {}, () => undefined))),
    }))
    .sort((a, b) => b.prefix.length - a.prefix.length)
  const notFound: GatewayApp = (environ, startResponse) => {
    const path = environ.PATH_INFO
    for (const { prefix, app } of byPrefix) {
      if (prefix === '' || path === prefix || path.startsWith(prefix + '/')) return app(environ, startResponse)
    }
    return byPrefix[byPrefix.length - 1]!.app(environ, startResponse)
  }
  const notAllowed = routeApp(compile(rootScope, methodNotAllowed, {}, {}, () => undefined))
  const router = createRouter<RouteRecord>({ ...root.options.router, notFound, methodNotAllowed: notAllowed })
  for (const r of root.routes) {
    const compiled = compile(r.scope, r.handler, r.options, r.checks, r.serializerFor)
    const app = compose(routeMiddleware(r.scope, r.options.middleware), routeApp(compiled))
    router.on(r.methods, r.path, app, { store: r, ...(r.options.constraints ? { constraints: r.options.constraints } : {}) })
  }
  root.dispatch = compose(rootScope.middleware, router)
  root.dirty = false
}

/** 405 in the framework's JSON error form, through the root scope's hooks; Allow from the router. */
const methodNotAllowed: Handler = (req, reply) => {
  reply.status(405).header('allow', (req.environ[ALLOW_KEY] as string[]).join(', '))
  return { statusCode: 405, error: 'Method Not Allowed', message: `Method ${req.method} not allowed for ${req.path}` }
}

const defaultNotFound: Handler = (req) => {
  throw new GatewayError(404, `Route ${req.method} ${req.path} not found`)
}


// ── Running a route ──────────────────────────────────────────────────────────

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function'
}

/** Runs steps from `i`; synchronous until a step returns a promise. */
function runSteps(steps: RequestHook[], i: number, req: Request, reply: Reply): void | Promise<void> {
  for (; i < steps.length; i++) {
    if (reply.sent) return
    const result = steps[i]!(req, reply)
    if (isThenable(result)) {
      const next = i + 1
      return Promise.resolve(result).then(() => runSteps(steps, next, req, reply))
    }
  }
}

function routeApp(c: Compiled): GatewayApp {
  const timed = c.onResponse.length > 0
  const hasSteps = c.steps.length > 0
  return (environ, startResponse) => {
    const req = new c.Req(environ, c.context)
    const reply = new c.Rep(environ)
    if (timed) reply.startTime = performance.now()
    if (hasSteps) {
      let pending: void | Promise<void>
      try {
        pending = runSteps(c.steps, 0, req, reply)
      } catch (error) {
        return fail(c, req, reply, error, startResponse)
      }
      if (pending !== undefined) {
        return pending.then(
          () => handle(c, req, reply, startResponse),
          (error: unknown) => fail(c, req, reply, error, startResponse),
        )
      }
    }
    return handle(c, req, reply, startResponse)
  }
}

function handle(c: Compiled, req: Request, reply: Reply, startResponse: StartResponse): AppResult {
  if (reply.sent) return respond(c, req, reply, reply.payload, startResponse, false)
  let value: unknown
  try {
    value = c.handler(req, reply)
  } catch (error) {
    return fail(c, req, reply, error, startResponse)
  }
  if (isThenable(value)) {
    return Promise.resolve(value).then(
      (v) => respond(c, req, reply, v, startResponse, false),
      (error: unknown) => fail(c, req, reply, error, startResponse),
    )
  }
  return respond(c, req, reply, value, startResponse, false)
}

const NOTHING: Serialized = { type: null, payload: null }

function respond(c: Compiled, req: Request, reply: Reply, value: unknown, startResponse: StartResponse, failing: boolean): AppResult {
  if (value === undefined && reply.sent) value = reply.payload
  let serialized: Serialized
  try {
    if (value === undefined) {
      if (reply.statusCode === 200) reply.statusCode = 204
      serialized = NOTHING
    } else {
      serialized = serialize(value, c.plugins, { status: reply.statusCode, serializer: c.serializerFor(reply.statusCode) })
    }
    if (c.onSend.length > 0) {
      const sent = runOnSend(c.onSend, 0, req, reply, serialized)
      if (isThenable(sent)) {
        return sent.then(
          (s) => finish(c, req, reply, s, startResponse),
          (error: unknown) => (failing ? lastResort(req, reply, error, startResponse) : fail(c, req, reply, error, startResponse)),
        )
      }
      serialized = sent
    }
  } catch (error) {
    return failing ? lastResort(req, reply, error, startResponse) : fail(c, req, reply, error, startResponse)
  }
  return finish(c, req, reply, serialized, startResponse)
}

function runOnSend(hooks: SendHook[], i: number, req: Request, reply: Reply, serialized: Serialized): Serialized | Promise<Serialized> {
  for (; i < hooks.length; i++) {
    const result = hooks[i]!(req, reply, serialized.payload)
    if (isThenable(result)) {
      const next = i + 1
      return Promise.resolve(result).then((payload) => runOnSend(hooks, next, req, reply, payload === undefined ? serialized : { type: serialized.type, payload }))
    }
    if (result !== undefined) serialized = { type: serialized.type, payload: result }
  }
  return serialized
}

function finish(c: Compiled, req: Request, reply: Reply, serialized: Serialized, startResponse: StartResponse): Body {
  const body = start(startResponse, reply.statusCode, reply.headers, serialized)
  if (c.onResponse.length === 0) return body
  return withClose(body, () => {
    for (const hook of c.onResponse) {
      try {
        const result = hook(req, reply)
        if (isThenable(result)) Promise.resolve(result).catch((error: unknown) => report(req, 'onResponse hook', error))
      } catch (error) {
        report(req, 'onResponse hook', error)
      }
    }
  })
}

/** Calls `after` once the server closes the body (after its last byte, or when the client left). */
function withClose(body: Body, after: () => void): Body {
  const inner = body.close
  const close = () => {
    try {
      const closed = inner?.call(body)
      if (isThenable(closed)) return Promise.resolve(closed).finally(after)
    } catch (error) {
      after()
      throw error
    }
    after()
    return undefined
  }
  if (Array.isArray(body)) return Object.assign(body, { close })
  if (Symbol.asyncIterator in body) return { [Symbol.asyncIterator]: () => (body as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator](), close }
  return { [Symbol.iterator]: () => (body as Iterable<Uint8Array | string>)[Symbol.iterator](), close }
}

function report(req: Request, where: string, error: unknown): void {
  const errors = req.environ['gateway.errors']
  errors.write(`postern: ${where} failed: ${describeError(error)}`)
}

// ── Errors ────────────────────────────────────────────────────────────────────

/** The status an error answers with: its own 4xx/5xx `status` or `statusCode`, else 500. */
export function errorStatus(error: unknown): number {
  return statusOf(error) || 500
}


/** The default error response: `{ statusCode, error, message }`; 5xx messages are not shown. */
function defaultErrorValue(error: unknown, reply: Reply): { statusCode: number; error: string; message: string } {
  const status = errorStatus(error)
  reply.statusCode = status
  return { statusCode: status, error: STATUS_TEXT[status] ?? 'Error', message: publicMessage(error, status) }
}

function fail(c: Compiled, req: Request, reply: Reply, error: unknown, startResponse: StartResponse): AppResult {
  // A response replaced by an error keeps none of the headers set for it.
  reply.headers = null
  reply.sent = false
  if (errorStatus(error) >= 500) report(req, 'request', error)
  let pending: Promise<void> | undefined
  for (const hook of c.onError) {
    try {
      const result = hook(req, reply, error)
      if (isThenable(result)) pending = (pending ?? Promise.resolve()).then(() => result).catch((e: unknown) => report(req, 'onError hook', e))
    } catch (e) {
      report(req, 'onError hook', e)
    }
  }
  if (pending !== undefined) return pending.then(() => answerError(c, req, reply, error, startResponse))
  return answerError(c, req, reply, error, startResponse)
}

function answerError(c: Compiled, req: Request, reply: Reply, error: unknown, startResponse: StartResponse): AppResult {
  if (c.errorHandler === null) return respond(c, req, reply, defaultErrorValue(error, reply), startResponse, true)
  reply.statusCode = errorStatus(error)
  let value: unknown
  try {
    value = c.errorHandler(error, req, reply)
  } catch (handlerError) {
    report(req, 'error handler', handlerError)
    return respond(c, req, reply, defaultErrorValue(handlerError, reply), startResponse, true)
  }
  if (isThenable(value)) {
    return Promise.resolve(value).then(
      (v) => respond(c, req, reply, v, startResponse, true),
      (handlerError: unknown) => {
        report(req, 'error handler', handlerError)
        return respond(c, req, reply, defaultErrorValue(handlerError, reply), startResponse, true)
      },
    )
  }
  return respond(c, req, reply, value, startResponse, true)
}

/** When answering an error failed too: a plain 500 with no hooks. */
function lastResort(req: Request, reply: Reply, error: unknown, startResponse: StartResponse): Body {
  report(req, 'error response', error)
  reply.headers = null
  reply.statusCode = 500
  return start(startResponse, 500, null, { type: JSON_TYPE, payload: '{"statusCode":500,"error":"Internal Server Error","message":"Internal Server Error"}' })
}

export type { InjectOptions, InjectResponse, ResponsePlugin, Payload }
