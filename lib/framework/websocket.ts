/**
 * WebSocket routes (`app.ws`), on top of the gateway's `gateway.websocket`
 * extension (lib/gateway/websocket.ts). A ws route is a GET route that the
 * router picks only for upgrade requests: it carries a `websocket`
 * constraint, derived from the extension's presence on the environ. So a
 * plain GET route may share its path (it answers the plain GETs), and a
 * plain GET to a path only a ws route has meets a stand-in route that
 * answers 426 (route.ts adds it).
 *
 * Both run as ordinary routes of their scope (handle-request.ts): the
 * onRequest hooks, the params/query/headers checks and the preHandler hooks
 * come first, and any of them may answer instead (a 401), in which case the
 * socket is never accepted. A route with an `origin` option checks the
 * handshake's `Origin` before all of them (403). Then the handler here accepts and runs the
 * user's handler with the socket; the app's result is an empty body once
 * that handler returns, or its error if it throws (the server then closes
 * the socket with 1011).
 */
import type FindMyWay from 'find-my-way'
import type { Environ } from '../gateway/spec.js'
import { type GatewayWebSocket, WEBSOCKET_KEY } from '../gateway/websocket.js'
import { WebSocketClosedError } from '../gateway/websocket-transport.js'
import type { RouterOptions } from '../../plugins/router.js'
import { runOnError, type ErrorBody } from './error-handler.js'
import { runOnResponse } from './hooks.js'
import type { Reply } from './reply.js'
import type { Request } from './request.js'
import type { ErrorHook, Handler, RequestHook, WebSocketHandler, WebSocketOrigin, WebSocketRouteOptions } from './types.js'

/** The router constraint a ws route carries, and the one value it takes. */
export const WEBSOCKET_CONSTRAINT = 'websocket'
const UPGRADE = 'upgrade'

/** A ws route as added: the user's handler, its subprotocol choice and the origins it accepts. */
export interface WebSocketRoute {
  readonly handler: WebSocketHandler
  readonly protocol: WebSocketRouteOptions['protocol']
  /** The origin check (a step run before the route's hooks), when the route has an `origin` option. */
  readonly originCheck?: RequestHook
}

/** The 403 for a handshake from a page the route does not accept. */
class ForbiddenOrigin extends Error {
  readonly statusCode = 403
}

/**
 * The step that refuses a handshake from a page `allowed` does not name
 * (403), checked from `route` (for the message). Browsers send cookies with
 * a cross-site WebSocket handshake and no CORS applies to it, so this is the
 * one guard a cookie-authenticated socket has against other sites' pages. A
 * handshake without `Origin` is not a browser's and passes. Run before the
 * route's hooks, so a refused page's request has no side effects there.
 */
export function originCheck(route: string, allowed: WebSocketOrigin): RequestHook {
  const test = originTest(route, allowed)
  return (req) => {
    const origin = req.environ.HTTP_ORIGIN
    if (typeof origin !== 'string' || test(origin, req)) return
    throw new ForbiddenOrigin(`${req.path} does not accept WebSocket connections from origin ${JSON.stringify(origin)}`)
  }
}

/** `allowed` as one test, checked when the route is added (a wrong option fails at startup, not per request). */
function originTest(route: string, allowed: WebSocketOrigin): (origin: string, req: Request) => boolean {
  const wrong = () =>
    new TypeError(`postern: the origin option of WebSocket route ${route} must be an origin string, a list of them, a RegExp or a function (origin, req) => boolean`)
  if (typeof allowed === 'function') return (origin, req) => allowed(origin, req) === true
  if (allowed instanceof RegExp) {
    // A global or sticky RegExp keeps lastIndex between tests: each test starts afresh.
    return (origin) => {
      allowed.lastIndex = 0
      return allowed.test(origin)
    }
  }
  const list = typeof allowed === 'string' ? [allowed] : allowed
  if (!Array.isArray(list) || list.some((o) => typeof o !== 'string')) throw wrong()
  // Origins are compared without regard to case (scheme and host are case-insensitive); a trailing slash is a mistake worth naming.
  const origins = new Set(list.map((o: string) => o.toLowerCase()))
  for (const o of origins) {
    if (o.endsWith('/'))
      throw new TypeError(`postern: the origin ${JSON.stringify(o)} of WebSocket route ${route} ends with "/": an Origin header is scheme://host[:port], without a path`)
  }
  return (origin) => origins.has(origin.toLowerCase())
}

/**
 * What the accepting handler returns: the socket was accepted, so there is
 * no response to make; `done` settles with the user's handler, and the app's
 * result with it (handle-request.ts).
 */
export class Accepted {
  readonly done: Promise<void>
  constructor(done: Promise<void>) {
    this.done = done
  }
}

/**
 * The `websocket` constraint for find-my-way. `mustMatchWhenDerived` is
 * false: an upgrade request to a path with only a plain GET route still
 * reaches it (the app then answers it as any GET; the server sees no
 * `accept()` and answers normally).
 */
const websocketStrategy: FindMyWay.ConstraintStrategy<FindMyWay.HTTPVersion.V1, string> = {
  name: WEBSOCKET_CONSTRAINT,
  mustMatchWhenDerived: false,
  storage() {
    const handlers = new Map<string, FindMyWay.Handler<FindMyWay.HTTPVersion.V1>>()
    return {
      get: (value) => handlers.get(value) ?? null,
      set: (value, handler) => void handlers.set(value, handler),
    }
  },
  validate(value) {
    if (value !== UPGRADE) throw new TypeError(`postern: the ${WEBSOCKET_CONSTRAINT} constraint is set by app.ws(), not by hand`)
  },
  // Our router derives constraints from the environ (below), never from a node request.
  deriveConstraint: () => '',
}

type AppRouterOptions = Omit<RouterOptions, 'notFound' | 'methodNotAllowed'>

/** The app's router options with the `websocket` constraint added (its strategy, and deriving it from the environ). */
export function withWebSocketConstraint(options: AppRouterOptions = {}): AppRouterOptions {
  const derive = options.deriveConstraints
  return {
    ...options,
    constraints: { ...options.constraints, [WEBSOCKET_CONSTRAINT]: websocketStrategy },
    deriveConstraints: (environ: Environ) => {
      const derived = derive ? derive(environ) : {}
      return environ[WEBSOCKET_KEY] === undefined ? derived : { ...derived, [WEBSOCKET_CONSTRAINT]: UPGRADE }
    },
  }
}

/** A ws route's router constraints: its own and `websocket`. */
export function webSocketConstraints(own: Record<string, string | RegExp> | undefined): Record<string, string | RegExp> {
  return { ...own, [WEBSOCKET_CONSTRAINT]: UPGRADE }
}

/**
 * The answer to a plain request for a ws route (no upgrade offered: the
 * client did not ask, or the server cannot upgrade): 426 with `Upgrade:
 * websocket`, in the framework's error form.
 */
export const upgradeRequired: Handler = (req, reply) => {
  reply.status(426)
  // Set as is: Reply.header() refuses hop-by-hop names, and this is the one place the spec lets an app name the upgrade it wants.
  ;(reply.headers ??= []).push(['upgrade', 'websocket'])
  return { statusCode: 426, error: 'Upgrade Required', message: `${req.path} takes WebSocket connections only` } satisfies ErrorBody
}

/**
 * The handler a ws route runs after its hooks: accepts the upgrade (with the
 * subprotocol the route chose and the headers hooks set on the reply) and
 * starts the user's handler with the socket.
 */
export function acceptingHandler(route: WebSocketRoute, onResponse: readonly RequestHook[], onError: readonly ErrorHook[]): Handler {
  return (req, reply) => {
    const upgrade = req.environ[WEBSOCKET_KEY]
    // Middleware above may have taken the offer away; then this is a plain request.
    if (upgrade === undefined) return upgradeRequired(req, reply)
    const protocol = route.protocol?.(upgrade.protocols, req)
    // accept() would refuse it too [ws-protocol]; refusing here names the route's option, and breaks no rule of the interface.
    if (protocol !== undefined && !upgrade.protocols.includes(protocol)) {
      throw new TypeError(
        `postern: the protocol option of ${req.method} ${req.path} chose ${JSON.stringify(protocol)}, which the client did not offer (${JSON.stringify(upgrade.protocols)})`,
      )
    }
    const socket = upgrade.accept({ ...(protocol !== undefined ? { protocol } : {}), ...(reply.headers !== null ? { headers: reply.headers } : {}) })
    reply.statusCode = 101
    return new Accepted(run(route.handler, socket, req, reply, onResponse, onError))
  }
}

/**
 * Runs the user's handler for as long as the socket lives. When it returns
 * the socket is closed with 1000 (if still open). When it throws, the
 * onError hooks see the error and it is thrown on: the app's result rejects
 * after `accept()`, so the server reports it and closes the socket with 1011
 * (lib/gateway/runner.ts), as for any gateway app. The onResponse hooks run
 * once the socket is closed.
 */
async function run(
  handler: WebSocketHandler,
  socket: GatewayWebSocket,
  req: Request,
  reply: Reply,
  onResponse: readonly RequestHook[],
  onError: readonly ErrorHook[],
): Promise<void> {
  if (onResponse.length > 0) void socket.closed.then(() => runOnResponse(onResponse, req, reply))
  try {
    await handler(socket, req)
  } catch (error) {
    // Not awaited: the 1011 must not wait for observers (the socket's own 1000 for a loop left by a throw comes a macrotask later).
    // A send() on a socket the peer or the server closed is not the app's error: no hook hears of it (the runner does not report it either).
    if (!(error instanceof WebSocketClosedError)) void runOnError(onError, req, reply, error)
    throw error
  }
  socket.close(1000)
}
