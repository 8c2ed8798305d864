/**
 * One WebSocket upgrade on postern's server, from the valid handshake to
 * the open socket: the offer the app finds at `environ['gateway.websocket']`
 * [ws-offered], its `accept()` [ws-accept] [ws-app], the hand-over of the
 * connection to `ws` with the bytes already read after the head
 * [ws-handoff], and then the socket's liveness and shutdown [ws-limits]
 * [ws-shutdown].
 *
 * Framing is `ws`'s (`WebSocketServer` in `noServer` mode and
 * `handleUpgrade`): it writes the 101 and parses frames, enforcing the
 * maximum message size (1009) and UTF-8 (1007). The handshake was already
 * checked by the core's `checkWebSocketHandshake`, so `ws` is given a
 * request carrying exactly the fields it reads, normalised: it cannot refuse
 * what the app accepted. The app's extra headers and the chosen subprotocol
 * reach `ws`'s 101 through its `headers` event and `handleProtocols`, set
 * up by the core's `wsServerSetup` (as on the node:http adapter).
 */
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { WebSocketServer } from 'ws'
import type { WebSocket } from 'ws'
import type { Environ, GatewayApp } from '../gateway/spec.js'
import { WEBSOCKET_KEY, type WebSocketAcceptOptions, type WebSocketUpgrade } from '../gateway/websocket.js'
import type { ValidHandshake } from '../gateway/websocket-handshake.js'
import type { WebSocketLimits } from '../gateway/websocket-limits.js'
import { checkAcceptOptions, type AcceptChoice } from '../gateway/websocket-rules.js'
import { TransportWebSocket } from '../gateway/websocket-transport.js'
import { WsTransport, wsServerSetup } from '../gateway/websocket-ws.js'
import type { Exchange } from './exchange.js'

/** What the upgrade needs of its connection. */
export interface UpgradeHost {
  readonly socket: Socket
  readonly closing: boolean
  /**
   * Stops speaking HTTP on the socket and gives up its reading: returns the
   * bytes read after the request head (empty when none), or null when the
   * connection is already gone.
   */
  handOff(): Buffer | null
}

/** The request `ws`'s `handleUpgrade` reads, with what the app chose. */
interface UpgradeRequest {
  method: 'GET'
  headers: Record<string, string>
  choice: AcceptChoice
}

const EMPTY = Buffer.alloc(0)

/**
 * The `ws` server of one postern server: frames only, tracks nothing (the
 * connections are the server's). `serverLine` is the server's `Server: ...`
 * line with its CRLF, or ''.
 */
export function makeWebSocketServer(options: WebSocketLimits, serverLine = ''): WebSocketServer {
  const setup = wsServerSetup(options, (request) => (request as UpgradeRequest).choice, serverLine.slice(0, -2))
  const wss = new WebSocketServer(setup.options)
  wss.on('headers', setup.headers)
  return wss
}

const OFFERED = 0
const ACCEPTED = 1
const OPEN = 2
const GONE = 3

export class PendingUpgrade implements WebSocketUpgrade {
  readonly protocols: readonly string[]
  readonly ex: Exchange
  private readonly host: UpgradeHost
  private readonly handshake: ValidHandshake
  private readonly options: WebSocketLimits
  private readonly wss: () => WebSocketServer
  private state = OFFERED
  /** When the app was called (0: not yet, it waits for the responses ahead of it). */
  private calledAt = 0
  private socket: TransportWebSocket | null = null
  private transport: WsTransport | null = null
  private shutdownSent = false

  constructor(host: UpgradeHost, ex: Exchange, handshake: ValidHandshake, options: WebSocketLimits, wss: () => WebSocketServer) {
    this.host = host
    this.ex = ex
    this.handshake = handshake
    this.protocols = Object.freeze(handshake.protocols.slice())
    this.options = options
    this.wss = wss
  }

  /** Calls the app with the offer in its environ. */
  run(app: GatewayApp, environ: Environ): void {
    this.calledAt = Date.now()
    environ[WEBSOCKET_KEY] = this
    this.ex.run(app, environ)
  }

  /** Whether the connection now belongs to the WebSocket (or is about to). */
  get accepted(): boolean {
    return this.state !== OFFERED
  }

  accept(options?: WebSocketAcceptOptions): TransportWebSocket {
    const choice = checkAcceptOptions(options, this.protocols)
    const { readHighWater, readLimit, sendHighWater } = this.options
    const socket = new TransportWebSocket(choice.protocol, null, { readHighWater, readLimit, sendHighWater })
    this.ex.markUpgraded(socket) // throws when accept() comes out of order: nothing was sent
    this.state = ACCEPTED
    this.socket = socket
    // The parse of the read that brought the head finishes first, so its remaining bytes are known.
    queueMicrotask(() => this.open(choice, socket))
    return socket
  }

  /** Hands the connection to `ws`: it writes the 101 and reads the frames, starting with the bytes already read. */
  private open(choice: AcceptChoice, socket: TransportWebSocket): void {
    const head = this.host.handOff()
    if (head === null) {
      this.state = GONE
      socket.ended(1006, '')
      return
    }
    const headers: Record<string, string> = {
      upgrade: 'websocket',
      'sec-websocket-key': this.handshake.key,
      'sec-websocket-version': '13',
    }
    if (this.protocols.length > 0) headers['sec-websocket-protocol'] = this.protocols.join(', ')
    const request: UpgradeRequest = { method: 'GET', headers, choice }
    const net = this.host.socket
    let client: WebSocket | null = null
    this.wss().handleUpgrade(request as unknown as IncomingMessage, net, head.length === 0 ? EMPTY : head, (ws) => (client = ws))
    if (client === null) {
      // ws found the socket already half-closed and destroyed it.
      this.state = GONE
      socket.ended(1006, '')
      return
    }
    const ws: WebSocket = client
    this.state = OPEN
    this.transport = new WsTransport(ws, socket, net)
    if (!ws.isPaused) net.resume()
    if (this.host.closing) this.shutdown()
  }

  /**
   * The server's sweep: the app's time to accept or answer
   * (`handshakeTimeout`, then 503), the open socket's liveness, and 1001
   * once the server shuts down. A stalled send is cut after
   * `webSocket.sendTimeout`, which defaults to the server's `sendTimeout`
   * (options.ts).
   */
  tick(now: number): void {
    if (this.state === OFFERED) {
      if (this.calledAt !== 0 && now - this.calledAt > this.options.handshakeTimeout) {
        this.ex.refuse(503, 'the app did not accept the WebSocket handshake in time')
      }
      return
    }
    if (this.state !== OPEN) return
    if (this.host.closing) this.shutdown()
    this.transport!.tick(now, this.options)
  }

  /** Graceful shutdown: 1001, once [ws-shutdown]. */
  shutdown(): void {
    if (this.shutdownSent || this.socket === null) return
    this.shutdownSent = true
    this.socket.closeFromServer(1001, 'server shutting down')
  }

  /** The connection closed before the socket opened: the accepted socket learns it. */
  connectionClosed(): void {
    if (this.state === ACCEPTED) {
      this.state = GONE
      this.socket?.ended(1006, '')
    }
  }
}
