/**
 * The framework: `postern()` returns an app that IS a gateway app (call it
 * as `app(environ, startResponse)` or hand it to any gateway server) and
 * also has `get`/`post`/…, `use`, `register`, hooks, `inject` and `listen`.
 *
 * It is built from the plugins/ gateway parts: routes go into a router
 * (plugins/router.ts), middleware wraps it in onion order
 * (plugins/chain.ts), handler values are serialized by response formats
 * (plugins/text.ts, plugins/json.ts) and inputs are parsed and validated by
 * plugins/body.ts.
 *
 * This file holds the app and its public methods. The rest, by concept:
 * types.ts (public types), path-params.ts (params typed from the path),
 * scope.ts (encapsulation), route.ts (adding and building routes), hooks.ts,
 * handle-request.ts (one request, top to bottom) and error-handler.ts (the
 * framework's error answers).
 */
import type { AppResult, Environ, GatewayApp, Middleware, StartResponse } from '../gateway/spec.js'
import { inject as injectInto, type InjectOptions, type InjectResponse } from '../gateway/inject.js'
import { ALL_METHODS } from '../../plugins/router.js'
import type { ResponseFormat } from '../../plugins/response.js'
import { createLogger, requestLogger, silentLogger } from '../../plugins/logger.js'
import { addRoute, addWebSocketRoute, build, shorthand } from './route.js'
import { attachScope, childApp, createRoot, createScope, scopeOf, type Scope } from './scope.js'
import type {
  Address,
  App,
  AppOptions,
  CloseHook,
  ErrorHandler,
  FullRouteOptions,
  Handler,
  HookName,
  Hooks,
  ListenOptions,
  Plugin,
  RegisterOptions,
  RouteOptions,
  WebSocketHandler,
  WebSocketRouteOptions,
} from './types.js'

export { Request } from './request.js'
export { Reply } from './reply.js'
export type * from './types.js'
export type { PathParamNames, ParamsOf } from './path-params.js'
export type { InjectOptions, InjectResponse } from '../gateway/inject.js'
export type { Payload, ResponseFormat } from '../../plugins/response.js'

/** Creates an app. */
export function postern(options: AppOptions = {}): App {
  const root = createRoot(options)
  const app = function postern(environ: Environ, startResponse: StartResponse): AppResult {
    if (root.dirty) build(root)
    return root.dispatch(environ, startResponse)
  } as App
  const scope = createScope(root, null, 'root', '')
  root.rootScope = scope
  root.app = app
  attachScope(app, scope)
  Object.assign(app, methods)
  const { logger, requestIdHeader, genReqId } = options
  const logging = logger !== undefined && logger !== false
  const log = logging ? createLogger(logger) : silentLogger()
  Object.defineProperty(app, 'log', { value: log, enumerable: true })
  // The outermost root middleware: it sees every request, the router's automatic answers included.
  if (logging) scope.middleware.push(requestLogger({ logger: log, requestIdHeader, genReqId }))
  return app
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

/** Marks the app for a rebuild before its next request. */
function changed(scope: Scope): void {
  scope.root.dirty = true
}

function addResponseFormat(this: App, format: ResponseFormat): App {
  const scope = scopeOf(this)
  scope.formats.unshift(format)
  changed(scope)
  return this
}

/** The public methods, shared by every scope's app object (they find their scope through `this`). */
const methods = {
  get: shorthand('GET'),
  head: shorthand('HEAD'),
  post: shorthand('POST'),
  put: shorthand('PUT'),
  patch: shorthand('PATCH'),
  delete: shorthand('DELETE'),
  options: shorthand('OPTIONS'),
  all: shorthand([...ALL_METHODS]),
  ws(this: App, path: string, a: WebSocketRouteOptions | WebSocketHandler, b?: WebSocketHandler): App {
    return addWebSocketRoute(this, path, a, b)
  },
  route(this: App, options: FullRouteOptions): App {
    const { method, url, handler, ...rest } = options
    return addRoute(this, Array.isArray(method) ? method : [method], url, rest, handler as Handler)
  },
  use(this: App, ...middleware: Middleware[]): App {
    for (const m of middleware) if (typeof m !== 'function') throw new TypeError('postern: middleware must be a function (app) => app')
    const scope = scopeOf(this)
    scope.middleware.push(...middleware)
    changed(scope)
    return this
  },
  register(this: App, plugin: Plugin<RegisterOptions>, options: RegisterOptions = {}): Promise<App> {
    if (typeof plugin !== 'function') return Promise.reject(new TypeError(`postern: register() needs a plugin function, got ${typeof plugin}`))
    const scope = scopeOf(this)
    const name = plugin.name || 'anonymous plugin'
    const child = childApp(this, name, options.prefix ?? '')
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
      changed(scope)
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
    changed(scope)
    return this
  },
  setErrorHandler(this: App, handler: ErrorHandler): App {
    const scope = scopeOf(this)
    scope.errorHandler = handler
    changed(scope)
    return this
  },
  setNotFoundHandler(this: App, handler: Handler, options: RouteOptions = {}): App {
    const scope = scopeOf(this)
    scope.root.notFound = scope.root.notFound.filter((n) => n.scope !== scope)
    scope.root.notFound.push({ scope, handler, options })
    changed(scope)
    return this
  },
  addResponseFormat,
  addResponsePlugin: addResponseFormat,
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
    const { createServer, DEFAULT_HOST, DEFAULT_PORT } = await import('../server/index.js')
    const { port = DEFAULT_PORT, host = DEFAULT_HOST, ...serverOptions } = options
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
      .root.routes.map((r) => `${r.websocket ? 'WS' : r.methods.join(',')} ${r.path}`)
      .join('\n')
  },
}
