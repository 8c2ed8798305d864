/**
 * The router: a gateway app that dispatches on method and path with
 * find-my-way, so it can sit at the bottom of any gateway stack. It routes on
 * `PATH_INFO` (the path below where it is mounted), writes what it matched
 * into the environ for the apps and middleware below it, and answers the
 * requests no route takes: 404, 405 with `Allow`, and `OPTIONS` with `Allow`.
 * `HEAD` falls back to the `GET` route (the server drops the body).
 *
 * It routes on the path as the client sent it, still percent-encoded, and
 * find-my-way decodes each parameter once: `GET /users/a%2Fb` gives
 * `id = 'a/b'` as in Fastify, Hono and Express. Routing on the decoded
 * `PATH_INFO` would make that `%2F` a separator (issue #11). When middleware
 * rewrote `PATH_INFO`, the raw target no longer says it and `PATH_INFO` is
 * routed as it is.
 */
import FindMyWay from 'find-my-way'
import type { Environ, GatewayApp, StartResponse, Body } from '../lib/gateway/spec.js'
import { decodePath, splitTarget } from '../lib/gateway/target.js'

/** Environ key: the matched route's parameters, `{ id: '42' }` (wildcard: `'*'`). Values are percent-decoded. */
export const PARAMS_KEY = 'router.params'
/** Environ key: the matched {@link RouteInfo}. */
export const ROUTE_KEY = 'router.route'

/** Environ key: for a 405 or an automatic `OPTIONS` answer, the methods the path has (`['GET', 'HEAD', 'OPTIONS']`), set before calling `methodNotAllowed` or `options`. */
export const ALLOW_KEY = 'router.allow'

/** Route parameters as the router found them. */
export type Params = Record<string, string>

/** What the router writes under {@link ROUTE_KEY}: the route that answered. */
export interface RouteInfo<Store = unknown> {
  /** The method the route was registered for (`GET` for a HEAD served by a GET route). */
  readonly method: string
  /** The path pattern as registered, `/users/:id`. */
  readonly path: string
  /** Whatever was given as `store` when the route was added. */
  readonly store: Store
}

/** Constraints a route may require besides its method, e.g. `{ host: 'api.example.com' }` or a RegExp host. */
export type Constraints = Record<string, string | RegExp>

/** What one route of the router may have besides its method, path and app. */
export interface RouterRouteOptions<Store = unknown> {
  /** Only requests that match these (derived by {@link RouterOptions.deriveConstraints}; `host` is built in). */
  constraints?: Constraints
  /** Anything to hand to the app with the match (`environ['router.route'].store`). */
  store?: Store
}

/** @deprecated Renamed {@link RouterRouteOptions}; the framework's `RouteOptions` is what `app.route` takes. */
export type RouteOptions<Store = unknown> = RouterRouteOptions<Store>

export interface RouterOptions {
  /** Answers requests for paths no route has. Default: 404 text. */
  notFound?: GatewayApp
  /**
   * Answers requests whose path exists under other methods; it finds the
   * methods in `environ['router.allow']` and must send them in `Allow`.
   * Default: 405 text with `Allow`.
   */
  methodNotAllowed?: GatewayApp
  /**
   * Answers `OPTIONS` for a path routed only under other methods (no route
   * of its own takes `OPTIONS`); like `methodNotAllowed` it finds the
   * methods in `environ['router.allow']` and must send them in `Allow`.
   * Default: 204 with `Allow`. A framework passes its own so that its hooks
   * run for this answer too (CORS headers from an `onRequest` hook, say).
   */
  options?: GatewayApp
  /** Treat `/a/` as `/a`. Default false. */
  ignoreTrailingSlash?: boolean
  /** Treat `//a` as `/a`. Default false. */
  ignoreDuplicateSlashes?: boolean
  /** Default true. */
  caseSensitive?: boolean
  /** Longest parameter value in characters; longer does not match (404). Default 100. */
  maxParamLength?: number
  /** Allow regexp parameters that may backtrack. Default false. */
  allowUnsafeRegex?: boolean
  /** Extra constraint strategies (find-my-way's shape). */
  constraints?: Record<string, FindMyWay.ConstraintStrategy<FindMyWay.HTTPVersion.V1, string>>
  /** Derives constraint values from the environ; `host` (from `Host`) is derived without it. */
  deriveConstraints?: (environ: Environ) => Record<string, string>
}

/** The methods the router knows (find-my-way's list). */
export type Method = FindMyWay.HTTPMethod

type Adder<Store> = (path: string, app: GatewayApp, options?: RouterRouteOptions<Store>) => Router<Store>

/** A router: call it as a gateway app, add routes with `on` or the verb shorthands. */
export interface Router<Store = unknown> extends GatewayApp {
  on(method: string | readonly string[], path: string, app: GatewayApp, options?: RouterRouteOptions<Store>): Router<Store>
  get: Adder<Store>
  post: Adder<Store>
  put: Adder<Store>
  patch: Adder<Store>
  delete: Adder<Store>
  head: Adder<Store>
  options: Adder<Store>
  /** Every method. */
  all: Adder<Store>
  /** The methods the path is routed for, in registration order (HEAD included when GET is). The path is decoded, like `PATH_INFO`. */
  allowed(path: string, environ?: Environ): string[]
  /** Finds the route for a method and path without calling it. The path is decoded, like `PATH_INFO`: its `%` is literal and its `/` separate. */
  find(method: string, path: string, environ?: Environ): { app: GatewayApp; params: Params; route: RouteInfo<Store> } | null
}

interface Entry {
  readonly app: GatewayApp
  readonly info: RouteInfo
}

const EMPTY_QUERY = Object.freeze({}) as Record<string, string>
/** find-my-way's methods (it does not export its list): what `all` registers. */
export const ALL_METHODS: readonly string[] = [
  'ACL',
  'BIND',
  'CHECKOUT',
  'CONNECT',
  'COPY',
  'DELETE',
  'GET',
  'HEAD',
  'LINK',
  'LOCK',
  'M-SEARCH',
  'MERGE',
  'MKACTIVITY',
  'MKCALENDAR',
  'MKCOL',
  'MOVE',
  'NOTIFY',
  'OPTIONS',
  'PATCH',
  'POST',
  'PROPFIND',
  'PROPPATCH',
  'PURGE',
  'PUT',
  'QUERY',
  'REBIND',
  'REPORT',
  'SEARCH',
  'SOURCE',
  'SUBSCRIBE',
  'TRACE',
  'UNBIND',
  'UNLINK',
  'UNLOCK',
  'UNSUBSCRIBE',
]

const KNOWN: ReadonlySet<string> = new Set(ALL_METHODS)

/**
 * find-my-way decodes the path it is given, but `PATH_INFO` is decoded
 * already: escape the characters it would act on a second time.
 */
const NEEDS_ESCAPE = /[%?#]/
function routable(pathInfo: string): string {
  if (pathInfo === '') return '/'
  return NEEDS_ESCAPE.test(pathInfo) ? pathInfo.replace(/%/g, '%25').replace(/\?/g, '%3F').replace(/#/g, '%23') : pathInfo
}

/**
 * `PATH_INFO` as the client sent it (still percent-encoded): the path of
 * `REQUEST_URI` with `SCRIPT_NAME`'s raw form cut off. `null` when the raw
 * target does not decode to `SCRIPT_NAME` + `PATH_INFO` (middleware rewrote
 * them), or when the mount point ends inside an escape (`/api%2Fx` mounted
 * at `/api`): then only the decoded `PATH_INFO` says what to route.
 * Exported so that a not-found message can show the path as requested.
 */
export function rawPathInfo(environ: Environ): string | null {
  const uri = environ.REQUEST_URI
  if (typeof uri !== 'string') return null
  const { path } = splitTarget(uri)
  const script = environ.SCRIPT_NAME
  const pathInfo = environ.PATH_INFO
  if (path === '' || decodePath(path) !== script + pathInfo) return null
  if (script === '') return path
  if (pathInfo === '') return ''
  // PATH_INFO starts with '/'; the raw mount point ends before a literal '/'
  // and is at least as long as its decoded form (decoding only shortens).
  for (let i = path.indexOf('/', script.length); i >= 0; i = path.indexOf('/', i + 1)) {
    const head = decodePath(path.slice(0, i))
    if (head === script) return path.slice(i)
    // past the mount point: the split was at an escaped '/'
    if (head !== null && head.length > script.length) return null
  }
  return null
}

/**
 * The path handed to find-my-way. A target with no '%' before its query is
 * `SCRIPT_NAME` + `PATH_INFO` verbatim, so the common case costs one
 * `indexOf`; otherwise the raw path is routed, with a literal `#` (which
 * find-my-way would take for a delimiter) escaped.
 */
function routePath(environ: Environ): string {
  const uri = environ.REQUEST_URI
  const percent = typeof uri === 'string' ? uri.indexOf('%') : -1
  if (percent < 0) return routable(environ.PATH_INFO)
  const query = uri.indexOf('?')
  if (query >= 0 && query < percent) return routable(environ.PATH_INFO)
  const raw = rawPathInfo(environ)
  if (raw === null) return routable(environ.PATH_INFO)
  if (raw === '') return '/'
  return raw.indexOf('#') < 0 ? raw : raw.replace(/#/g, '%23')
}

/** Shared between responses, so frozen. */
const TEXT_HEADER = Object.freeze(['content-type', 'text/plain; charset=utf-8']) as [string, string]

/** The default answer for a path no route has. */
export const notFound: GatewayApp = (_environ, startResponse) => {
  startResponse('404 Not Found', [TEXT_HEADER])
  return ['Not Found']
}

/** The default answer for a path routed only under other methods. */
export const methodNotAllowed: GatewayApp = (environ, startResponse) => {
  const allow = environ[ALLOW_KEY] as string[]
  startResponse('405 Method Not Allowed', [['allow', allow.join(', ')], TEXT_HEADER])
  return ['Method Not Allowed']
}

/** The default answer to `OPTIONS` on a path routed only under other methods: 204 with `Allow`. */
export const automaticOptions: GatewayApp = (environ, startResponse) => {
  startResponse('204 No Content', [['allow', (environ[ALLOW_KEY] as string[]).join(', ')]])
  return []
}

/** Creates a router. */
export function createRouter<Store = unknown>(options: RouterOptions = {}): Router<Store> {
  const fmw = FindMyWay({
    ignoreTrailingSlash: options.ignoreTrailingSlash ?? false,
    ignoreDuplicateSlashes: options.ignoreDuplicateSlashes ?? false,
    caseSensitive: options.caseSensitive ?? true,
    maxParamLength: options.maxParamLength ?? 100,
    allowUnsafeRegex: options.allowUnsafeRegex ?? false,
    querystringParser: () => EMPTY_QUERY,
    ...(options.constraints ? { constraints: options.constraints } : {}),
  })
  const fallback = options.notFound ?? notFound
  const notAllowed = options.methodNotAllowed ?? methodNotAllowed
  const answerOptions = options.options ?? automaticOptions
  const deriveExtra = options.deriveConstraints
  /** Methods with at least one route, in the order they were first added. */
  const methods: string[] = []
  let constrained = false
  let compiled = false

  function derive(environ: Environ | undefined): Record<string, string> | undefined {
    if (!constrained || environ === undefined) return undefined
    const derived: Record<string, string> = deriveExtra ? { ...deriveExtra(environ) } : {}
    const host = environ.HTTP_HOST
    if (host !== undefined) derived.host = host
    return derived
  }

  function lookup(method: string, path: string, derived: Record<string, string> | undefined): FindMyWay.FindResult<FindMyWay.HTTPVersion.V1> | null {
    // find-my-way throws on methods it does not know; those have no route.
    if (!KNOWN.has(method)) return null
    return fmw.find(method as Method, path, derived)
  }

  function allowedFor(path: string, derived: Record<string, string> | undefined): string[] {
    const allow: string[] = []
    for (const m of methods) if (lookup(m, path, derived) !== null) allow.push(m)
    if (allow.includes('GET') && !allow.includes('HEAD')) allow.push('HEAD')
    if (allow.length > 0 && !allow.includes('OPTIONS')) allow.push('OPTIONS')
    return allow
  }

  const router = function route(environ: Environ, startResponse: StartResponse): Body | Promise<Body> {
    if (!compiled) {
      fmw.compile()
      compiled = true
    }
    const method = environ.REQUEST_METHOD
    const path = routePath(environ)
    const derived = constrained ? derive(environ) : undefined
    let found = lookup(method, path, derived)
    if (found === null && method === 'HEAD') found = lookup('GET', path, derived)
    if (found !== null) {
      const entry = found.store as Entry
      environ[PARAMS_KEY] = found.params
      environ[ROUTE_KEY] = entry.info
      return entry.app(environ, startResponse)
    }
    const allow = allowedFor(path, derived)
    if (allow.length === 0) return fallback(environ, startResponse)
    environ[ALLOW_KEY] = allow
    return method === 'OPTIONS' ? answerOptions(environ, startResponse) : notAllowed(environ, startResponse)
  } as Router<Store>

  router.on = (method, path, app, routeOptions = {}) => {
    const list = typeof method === 'string' ? [method] : method
    if (routeOptions.constraints !== undefined && Object.keys(routeOptions.constraints).length > 0) constrained = true
    for (const m of list) {
      const info: RouteInfo = { method: m, path, store: routeOptions.store }
      const entry: Entry = { app, info }
      const fmwOptions = routeOptions.constraints ? { constraints: routeOptions.constraints } : {}
      fmw.on(m as Method, path, fmwOptions, noop, entry)
      if (!methods.includes(m)) methods.push(m)
    }
    compiled = false
    return router
  }
  const adder =
    (method: string | readonly string[]): Adder<Store> =>
    (path, app, routeOptions) =>
      router.on(method, path, app, routeOptions)
  router.get = adder('GET')
  router.post = adder('POST')
  router.put = adder('PUT')
  router.patch = adder('PATCH')
  router.delete = adder('DELETE')
  router.head = adder('HEAD')
  router.options = adder('OPTIONS')
  router.all = adder(ALL_METHODS)
  router.allowed = (path, environ) => allowedFor(routable(path), derive(environ))
  router.find = (method, path, environ) => {
    const p = routable(path)
    const derived = derive(environ)
    const found = lookup(method, p, derived) ?? (method === 'HEAD' ? lookup('GET', p, derived) : null)
    if (found === null) return null
    const entry = found.store as Entry
    return { app: entry.app, params: found.params as Params, route: entry.info as RouteInfo<Store> }
  }
  return router
}

/** find-my-way wants a handler function; the router keeps the app in the route's store instead. */
function noop(): void {}
