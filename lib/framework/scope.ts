/**
 * Encapsulation (Fastify's): every `register(plugin)` runs the plugin with a
 * child scope. What the plugin adds there (routes, middleware, hooks,
 * decorators, error and not-found handlers, response formats) applies to
 * that scope and its children only; what the parent has applies to the
 * child too. A scope's app object inherits from its parent's
 * (`Object.create`), and its Request and Reply classes extend its parent's,
 * so decorators follow the same rule.
 *
 * The root holds what the whole app shares: every route, the built
 * dispatcher and the server once listening.
 */
import type { Environ, GatewayApp, Middleware } from '../gateway/spec.js'
import type { ResponseFormat, Serializer } from '../../plugins/response.js'
import type { Checks } from '../../plugins/body.js'
import { createRouter } from '../../plugins/router.js'
import { Reply } from './reply.js'
import { Request, type RequestContext } from './request.js'
import { emptyHooks, type HookLists } from './hooks.js'
import { withWebSocketConstraint, type WebSocketRoute } from './websocket.js'
import type { App, AppOptions, CloseHook, ErrorHandler, Handler, RouteOptions } from './types.js'

export type RequestClass = new (environ: Environ, context: RequestContext) => Request
export type ReplyClass = new (environ: Environ) => Reply

export interface Scope {
  readonly parent: Scope | null
  readonly root: Root
  readonly name: string
  readonly prefix: string
  readonly middleware: Middleware[]
  readonly hooks: HookLists
  /** Response formats added here, most recent first. */
  readonly formats: ResponseFormat[]
  errorHandler: ErrorHandler | null
  readonly Req: RequestClass
  readonly Rep: ReplyClass
  /** Plugins registered in this scope load one after the other. */
  loading: Promise<void>
}

/** A route as added, before it is built. */
export interface RouteRecord {
  methods: string[]
  path: string
  options: RouteOptions
  handler: Handler
  scope: Scope
  /** Compiled at registration: input checks and response serializers. */
  checks: Checks
  serializerFor: (status: number) => Serializer | undefined
  /** Set for a ws route (`app.ws`): its `handler` is unused, this runs instead once the upgrade is accepted. */
  websocket?: WebSocketRoute
}

export interface NotFoundRecord {
  scope: Scope
  handler: Handler
  options: RouteOptions
}

export interface Root {
  routes: RouteRecord[]
  notFound: NotFoundRecord[]
  onClose: CloseHook[]
  options: AppOptions
  /** The app's router options with the `websocket` constraint (websocket.ts), for both routers. */
  routerOptions: NonNullable<AppOptions['router']>
  /** Set by every change; the next request (or `ready()`) rebuilds the dispatcher. */
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

export function createRoot(options: AppOptions): Root {
  const routerOptions = withWebSocketConstraint(options.router)
  return {
    routes: [],
    notFound: [],
    onClose: [],
    options,
    routerOptions,
    dirty: true,
    dispatch: () => {
      throw new Error('postern: app not built')
    },
    server: null,
    rootScope: null,
    app: null,
    checker: createRouter(routerOptions),
  }
}

/** A new scope under `parent` (the root scope when `parent` is null). */
export function createScope(root: Root, parent: Scope | null, name: string, prefix: string): Scope {
  return {
    parent,
    root,
    name,
    prefix: parent === null ? '' : parent.prefix + normalizePrefix(prefix),
    middleware: [],
    hooks: emptyHooks(),
    formats: [],
    errorHandler: null,
    Req: class extends (parent === null ? Request : parent.Req) {},
    Rep: class extends (parent === null ? Reply : parent.Rep) {},
    loading: Promise.resolve(),
  }
}

/** Ties a scope to its app object, which shows the scope's prefix. */
export function attachScope(app: App, scope: Scope): void {
  Object.defineProperty(app, SCOPE, { value: scope })
  Object.defineProperty(app, 'prefix', { get: () => scope.prefix, enumerable: true })
}

export function scopeOf(app: App): Scope {
  return (app as unknown as { [SCOPE]: Scope })[SCOPE]
}

/** The app object a plugin gets: inherits the parent's methods and decorations, has its own scope. */
export function childApp(parentApp: App, name: string, prefix: string): App {
  const parent = scopeOf(parentApp)
  const child = Object.create(parentApp) as App
  attachScope(child, createScope(parent.root, parent, name, prefix))
  return child
}

/** The scopes from the root down to `scope`. */
export function lineage(scope: Scope): Scope[] {
  const out: Scope[] = []
  for (let s: Scope | null = scope; s !== null; s = s.parent) out.unshift(s)
  return out
}

export function joinPath(prefix: string, path: string): string {
  if (prefix === '') return path
  return path === '/' ? prefix : prefix + path
}

function normalizePrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === '' || prefix === '/') return ''
  const withSlash = prefix.startsWith('/') ? prefix : `/${prefix}`
  return withSlash.endsWith('/') ? withSlash.slice(0, -1) : withSlash
}
