/**
 * Routes: adding them (checked at once, so a duplicate or malformed route
 * fails where it is added, not on the first request) and building them
 * (Fastify's route.js). Building resolves everything per route once, when
 * the app is first called after a change: the hooks of every scope above
 * it, its input checks and body parsing, its response formats, serializers,
 * error handler and middleware. The result is one gateway app per route
 * (handle-request.ts), mounted in the router (plugins/router.ts) under the
 * root scope's middleware.
 */
import type { GatewayApp, Middleware } from '../gateway/spec.js'
import { compose } from '../../plugins/chain.js'
import { ALLOW_KEY, createRouter, type Router } from '../../plugins/router.js'
import { compileChecks, parseBody, DEFAULT_BODY_LIMIT, type BodyParser, type Checks } from '../../plugins/body.js'
import { compileSerializers, defaultFormats } from '../../plugins/json.js'
import { htmlFormat } from '../../plugins/html.js'
import type { ResponseFormat, Serializer } from '../../plugins/response.js'
import { collectHooks } from './hooks.js'
import { routeApp, type CompiledRoute } from './handle-request.js'
import { automaticOptions, defaultNotFound, methodNotAllowed } from './error-handler.js'
import { joinPath, lineage, scopeOf, type Root, type RouteRecord, type Scope } from './scope.js'
import { acceptingHandler, originCheck, upgradeRequired, webSocketConstraints, WEBSOCKET_CONSTRAINT, type WebSocketRoute } from './websocket.js'
import type { App, ErrorHandler, ErrorHook, Handler, RequestHook, RouteOptions, RouteShorthand, WebSocketHandler, WebSocketRouteOptions } from './types.js'

/** Adds a route to the app's scope (a ws route when `websocket` is given: see websocket.ts). */
export function addRoute(app: App, methodList: string[], path: string, options: RouteOptions, handler: Handler, websocket?: WebSocketRoute): App {
  const label = websocket ? 'WebSocket route' : `route ${methodList.join(',')}`
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
    ...(websocket ? { websocket } : {}),
  }
  const records = [record]
  // `/api` + `/` also answers `/api/`.
  if (scope.prefix !== '' && path === '/') records.push({ ...record, path: `${scope.prefix}/` })
  // Add to the checking router now, so a duplicate or malformed route fails here, not on the first request.
  for (const r of records) {
    try {
      scope.root.checker.on(r.methods, r.path, unreachable, r.options.constraints ? { constraints: r.options.constraints } : {})
    } catch (error) {
      throw new Error(`postern: cannot add ${label} ${r.path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
    }
  }
  scope.root.routes.push(...records)
  scope.root.dirty = true
  return app
}

const unreachable: GatewayApp = () => {
  throw new Error('postern: the checking router is never called')
}

/** `app.get` and the like: `(path, handler)` or `(path, options, handler)`. */
export function shorthand(method: string | string[]): RouteShorthand {
  return function (this: App, path: string, a: RouteOptions | Handler, b?: Handler): App {
    const [options, handler] = typeof a === 'function' ? [{}, a] : [a, b as Handler]
    return addRoute(this, typeof method === 'string' ? [method] : method, path, options, handler)
  } as RouteShorthand
}

/**
 * `app.ws(path, handler)` or `app.ws(path, options, handler)`: a GET route
 * with the `websocket` constraint, so that only upgrade requests reach it.
 */
export function addWebSocketRoute(app: App, path: string, a: WebSocketRouteOptions | WebSocketHandler, b?: WebSocketHandler): App {
  const [options, handler] = typeof a === 'function' ? [{}, a] : [a, b]
  if (typeof handler !== 'function') throw new TypeError(`postern: the handler for WebSocket route ${path} must be a function`)
  const { protocol, origin, ...rest } = options
  if (protocol !== undefined && typeof protocol !== 'function')
    throw new TypeError(`postern: the protocol option of WebSocket route ${path} must be a function (offered) => string | undefined`)
  const routeOptions: RouteOptions = { ...rest, constraints: webSocketConstraints(rest.constraints) }
  const websocket: WebSocketRoute = { handler: handler as WebSocketHandler, protocol, ...(origin !== undefined ? { originCheck: originCheck(path, origin) } : {}) }
  return addRoute(app, ['GET'], path, routeOptions, upgradeRequired, websocket)
}

/** Builds the dispatcher: the router with every route, 404 by scope prefix, 405, under the root middleware. */
export function build(root: Root): void {
  const rootScope = root.rootScope!
  const notFounds = [...root.notFound]
  if (!notFounds.some((n) => n.scope === rootScope)) notFounds.push({ scope: rootScope, handler: defaultNotFound, options: {} })
  // Longest prefix first: a request gets the not-found handler of the deepest scope it is under.
  const byPrefix = notFounds
    .map((n) => ({
      prefix: n.scope.prefix,
      /** The prefix with its slash, made once rather than per request. */
      under: `${n.scope.prefix}/`,
      app: compose(routeMiddleware(n.scope, n.options.middleware), routeApp(compileRoute(n.scope, n.handler, n.options, {}, noSerializer))),
    }))
    .sort((a, b) => b.prefix.length - a.prefix.length)
  const notFound: GatewayApp = (environ, startResponse) => {
    const path = environ.PATH_INFO
    for (const { prefix, under, app } of byPrefix) {
      if (prefix === '' || path === prefix || path.startsWith(under)) return app(environ, startResponse)
    }
    return byPrefix[byPrefix.length - 1]!.app(environ, startResponse)
  }
  const router: Router<RouteRecord> = createRouter<RouteRecord>({
    ...root.routerOptions,
    notFound,
    methodNotAllowed: byRouteScope(() => router, rootScope, methodNotAllowed),
    options: byRouteScope(() => router, rootScope, automaticOptions),
  })
  for (const r of root.routes) {
    const handler = r.websocket ? acceptingHandler(r.websocket, ...webSocketHooks(r)) : r.handler
    const compiled = compileRoute(r.scope, handler, r.options, r.checks, r.serializerFor)
    // A ws route's origin check comes before its hooks: a page it refuses causes none of their effects.
    if (r.websocket?.originCheck !== undefined) compiled.steps.unshift(r.websocket.originCheck)
    const app = compose(routeMiddleware(r.scope, r.options.middleware), routeApp(compiled))
    router.on(r.methods, r.path, app, { store: r, ...(r.options.constraints ? { constraints: r.options.constraints } : {}) })
  }
  addUpgradeRequired(root, router)
  root.dispatch = compose(rootScope.middleware, router)
  root.dirty = false
}

/** The hooks a ws route runs itself, after accepting: onResponse (once the socket is closed) and onError (when its handler throws). */
function webSocketHooks(r: RouteRecord): [RequestHook[], ErrorHook[]] {
  const scopes = lineage(r.scope)
  return [collectHooks(scopes, 'onResponse', r.options.onResponse), collectHooks(scopes, 'onError', r.options.onError)]
}

/**
 * A plain GET to a ws route's path gets 426 (through the route's hooks and
 * middleware, so an auth hook still answers first), unless a GET route has
 * the same path: that one answers it. Which paths are taken is find-my-way's
 * own judgement (`/x/:id` and `/x/:room` are one path), asked of a scratch
 * router holding the GET routes.
 */
function addUpgradeRequired(root: Root, router: Router<RouteRecord>): void {
  const ws = root.routes.filter((r) => r.websocket !== undefined)
  if (ws.length === 0) return
  const taken = createRouter(root.routerOptions)
  for (const r of root.routes) {
    if (r.websocket === undefined && r.methods.includes('GET')) taken.on('GET', r.path, unreachable, r.options.constraints ? { constraints: r.options.constraints } : {})
  }
  for (const r of ws) {
    const { [WEBSOCKET_CONSTRAINT]: _, ...own } = r.options.constraints ?? {}
    const constraints = Object.keys(own).length > 0 ? { constraints: own } : {}
    try {
      taken.on('GET', r.path, unreachable, constraints)
    } catch {
      continue // the path has a GET route (the checking router accepted this pattern, so a duplicate is the one failure)
    }
    const options: RouteOptions = { ...r.options, ...constraints }
    if (!('constraints' in constraints)) delete options.constraints
    const app = compose(routeMiddleware(r.scope, r.options.middleware), routeApp(compileRoute(r.scope, upgradeRequired, options, {}, noSerializer)))
    router.on('GET', r.path, app, { store: r, ...constraints })
  }
}

/**
 * The router's answer for a path it has only under other methods (405, or
 * 204 to `OPTIONS`), run as a route of the scope that path's routes belong
 * to: its hooks and middleware apply, as they would to its own routes. Each
 * scope's app is compiled on first use, since most scopes never need one.
 */
function byRouteScope(router: () => Router<RouteRecord>, rootScope: Scope, handler: Handler): GatewayApp {
  const compiled = new Map<Scope, GatewayApp>()
  return (environ, startResponse) => {
    const allow = environ[ALLOW_KEY] as string[]
    const scope = router().find(allow[0]!, environ.PATH_INFO, environ)?.route.store.scope ?? rootScope
    let app = compiled.get(scope)
    if (app === undefined) {
      app = compose(routeMiddleware(scope, undefined), routeApp(compileRoute(scope, handler, {}, {}, noSerializer)))
      compiled.set(scope, app)
    }
    return app(environ, startResponse)
  }
}

function noSerializer(): undefined {
  return undefined
}

/** Resolves what one route runs from its scopes and options. */
function compileRoute(scope: Scope, handler: Handler, options: RouteOptions, checks: Checks, serializerFor: (status: number) => Serializer | undefined): CompiledRoute {
  const scopes = lineage(scope)
  const bodyLimit = options.bodyLimit ?? scope.root.options.bodyLimit ?? DEFAULT_BODY_LIMIT
  const steps: RequestHook[] = collectHooks(scopes, 'onRequest', options.onRequest)
  if (checks.params || checks.query || checks.headers) steps.push(inputCheck(checks))
  if (checks.body) steps.push(bodyCheck(checks.body, bodyLimit, options.parsers))
  steps.push(...collectHooks(scopes, 'preHandler', options.preHandler))
  // The innermost scope's formats first, the built-in ones last (HTML before streams: an HtmlStream is one).
  const formats: ResponseFormat[] = []
  for (let i = scopes.length - 1; i >= 0; i--) formats.push(...scopes[i]!.formats)
  formats.push(htmlFormat, ...defaultFormats)
  let errorHandler: ErrorHandler | null = null
  for (let s: Scope | null = scope; s !== null && errorHandler === null; s = s.parent) errorHandler = s.errorHandler
  return {
    handler,
    Req: scope.Req,
    Rep: scope.Rep,
    context: { bodyLimit },
    steps,
    onSend: collectHooks(scopes, 'onSend', options.onSend),
    onResponse: collectHooks(scopes, 'onResponse', options.onResponse),
    onError: collectHooks(scopes, 'onError', options.onError),
    formats,
    serializerFor,
    errorHandler,
  }
}

/** The params, query and headers schemas as one step (400 naming the first bad field). */
function inputCheck(checks: Checks): RequestHook {
  return (req) => {
    const error = (checks.params ? checks.params(req.params) : null) ?? (checks.query ? checks.query(req.query) : null) ?? (checks.headers ? checks.headers(req.headers) : null)
    if (error !== null) throw error
  }
}

/** Parses the body (within the route's limit) and validates it against the body schema. */
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
