/**
 * `toNodeUpgrade(app)`: the `gateway.websocket` extension on node:http and
 * node:https, as a listener for the server's `'upgrade'` event (Node emits
 * WebSocket handshakes there, not as requests):
 *
 *     const server = http.createServer(toNodeListener(app))
 *     server.on('upgrade', toNodeUpgrade(app))
 *
 * (`serveNode` wires both.) Each upgrade request is checked with the core's
 * one handshake check: an invalid one gets 400/426 without calling the app
 * [ws-handshake]; a valid one calls the app with the offer in its environ
 * [ws-offered]; a request that upgrades to something else (`h2c`) is served
 * as a normal request when it has no body. One with a body (`POST` with
 * `Upgrade: h2c`, as curl --http2 sends) is refused with 501: Node stopped
 * parsing at the upgrade, so its body would reach the app empty, and a
 * refusal the client can read beats silently losing it. Until the app accepts, the connection answers like
 * any Node response (a 401, say, then closes); at `accept()` `ws` takes the
 * socket with the bytes Node already read past the head [ws-handoff] and
 * frames the rest, with the core's limits [ws-limits].
 *
 * Without this listener Node 20 serves a handshake as a normal request, so
 * the app sees no `gateway.websocket` and answers 426 itself.
 */
import { ServerResponse, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { stderrStream } from '../gateway/errors.js'
import type { ConnectionInfo } from '../gateway/environ.js'
import type { Environ, GatewayApp } from '../gateway/spec.js'
import { WEBSOCKET_KEY } from '../gateway/websocket.js'
import { checkWebSocketHandshake, type HandshakeField } from '../gateway/websocket-handshake.js'
import type { TransportWebSocket } from '../gateway/websocket-transport.js'
import { WsTransport, wsServerSetup, type WsChoice } from '../gateway/websocket-ws.js'
import { NodeCall, environOf, type NodeAdapterOptions, type Res } from './to-node.js'
import { hasRequestBody, writeRefusal, writeUpgradeBodyRefusal } from './node-handshake.js'
import { handshakeDeadline, offerWebSocket } from './websocket-offer.js'
import { webSocketLimits } from '../gateway/websocket-limits.js'
import { WebSocketRegistry } from '../gateway/websocket-registry.js'

/** A listener for the `'upgrade'` event of `http.Server` or `https.Server`. */
export interface NodeUpgradeListener {
  (req: IncomingMessage, socket: Duplex, head: Buffer): void
  /**
   * Closes every open WebSocket with 1001 (going away) and refuses those
   * accepted from now on [ws-shutdown]; resolves once all are closed.
   * `serveNode`'s `close()` calls it.
   */
  closeAll(): Promise<void>
  /** The WebSockets open now. */
  readonly size: number
  /**
   * Connections on the upgrade path whose answer is not finished: handshakes
   * the app has not accepted or answered yet, normal answers to other
   * upgrades. With {@link size}, what a drain deadline would cut.
   */
  readonly answering: number
}

const ignore = (): void => {}

/** Wraps `app` as the `'upgrade'` listener of a node:http or node:https server. */
export function toNodeUpgrade(app: GatewayApp, options: NodeAdapterOptions = {}): NodeUpgradeListener {
  const errors = options.errors ?? stderrStream
  if (options.webSocket === false) throw new TypeError('toNodeUpgrade: webSocket is false; do not listen for upgrades then')
  const limits = webSocketLimits(options.webSocket)
  const infos = new WeakMap<object, ConnectionInfo>()
  /** What the app chose at `accept()`, read by `ws` while it writes the 101. */
  const chosen = new WeakMap<object, WsChoice>()
  const setup = wsServerSetup(limits, (req) => chosen.get(req))
  const wss = new WebSocketServer(setup.options)
  wss.on('headers', setup.headers)
  wss.on('wsClientError', ignore)
  const registry = new WebSocketRegistry<TransportWebSocket>()
  /** The transports of the open sockets, for the sweep. */
  const open = new Set<WsTransport>()
  /** Responses on the upgrade path not finished yet (see `answering`). */
  const answering = new Set<ServerResponse>()
  let sweep: ReturnType<typeof setInterval> | null = null

  const track = (transport: WsTransport, socket: TransportWebSocket): void => {
    const added = registry.add(socket, () => {
      open.delete(transport)
      if (open.size === 0 && sweep !== null) {
        clearInterval(sweep)
        sweep = null
      }
    })
    if (!added) return
    open.add(transport)
    // One timer for every socket of this listener, for pings and stalled sends.
    sweep ??= setInterval(
      () => {
        const now = Date.now()
        for (const t of open) t.tick(now, limits)
      },
      Math.max(10, Math.floor(Math.min(limits.idleTimeout, limits.sendTimeout) / 4)),
    )
    sweep.unref()
  }

  const listener = (req: IncomingMessage, stream: Duplex, head: Buffer): void => {
    const socket = stream as Socket
    // Errors on a connection the app has not taken yet are the client leaving: the 'close' that follows ends the call.
    socket.on('error', ignore)
    const res = new ServerResponse(req)
    res.shouldKeepAlive = false
    res.assignSocket(socket)
    answering.add(res)
    const answered = (): void => void answering.delete(res)
    res.once('finish', () => {
      answered()
      res.detachSocket(socket)
      socket.destroySoon()
    })
    res.once('close', answered)
    const handshake = checkWebSocketHandshake(req.method ?? 'GET', `HTTP/${req.httpVersion}`, (name) => headerOf(req, name))
    if (handshake !== null && !handshake.valid) {
      // [ws-handshake]: answered here, the app is not called.
      writeRefusal(res, handshake, req.method ?? 'GET')
      return
    }
    if (handshake === null && hasRequestBody(req.headers)) {
      // Node stopped parsing at the upgrade: the body is not in `req`. Refuse, never serve it empty.
      writeUpgradeBodyRefusal(res, req.method ?? 'GET')
      return
    }
    const call = new NodeCall(req, res as unknown as Res, errors)
    let environ: Environ
    try {
      environ = environOf(req, options, errors, infos)
    } catch (error) {
      call.refuseFor(error)
      return
    }
    if (handshake !== null) {
      const cancel = handshakeDeadline(call, limits)
      res.once('finish', cancel)
      res.once('close', cancel)
      environ[WEBSOCKET_KEY] = offerWebSocket(call, handshake, limits, (choice, ws) => {
        cancel()
        answered()
        // The response never started: Node gives the connection up, `ws` takes it.
        res.detachSocket(socket)
        chosen.set(req, choice)
        // The check above allows `Upgrade: websocket, other`; `ws` wants the bare token.
        req.headers.upgrade = 'websocket'
        let taken = false
        wss.handleUpgrade(req, socket, head, (taker: WebSocket) => {
          taken = true
          track(new WsTransport(taker, ws, socket), ws)
        })
        // `ws` destroys a connection that closed meanwhile, without calling back.
        if (!taken) ws.ended(1006, '')
      })
    }
    call.run(app, environ)
    if (!call.done) call.watch()
  }

  // Object.assign would copy the getters' values once; these must stay live.
  return Object.defineProperties(listener, {
    closeAll: { value: (): Promise<void> => registry.closeAll() },
    size: { get: () => registry.size },
    answering: { get: () => answering.size },
  }) as NodeUpgradeListener
}

/** A request header by lower-case name; Node joins a repeated one with `, `, as the check expects. */
function headerOf(req: IncomingMessage, name: HandshakeField): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}
