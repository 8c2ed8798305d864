/**
 * The WebSocket extension of the gateway interface (`gateway.websocket`):
 * one contract for upgrades, so an app that uses it runs on every server
 * that offers it (postern's server, node:http, Bun, Deno). Like the rest of
 * the spec, MUST/SHOULD/MAY as in RFC 2119, each rule with an id.
 *
 * ## Servers
 *
 * A server that supports upgrades puts a {@link WebSocketUpgrade} at
 * `environ['gateway.websocket']` on every request that asks for a valid
 * WebSocket handshake (RFC 6455 §4.2.1: `GET`, HTTP/1.1, `Connection`
 * holding the `upgrade` token, `Upgrade` holding `websocket`, a
 * `Sec-WebSocket-Key` that is base64 of 16 bytes, `Sec-WebSocket-Version:
 * 13`) and on no other [ws-offered]. A request that asks for an upgrade but
 * whose handshake is invalid is answered by the server without calling the
 * app: 400, or 426 with `Sec-WebSocket-Version: 13` for a wrong version
 * [ws-handshake] (`checkWebSocketHandshake` in
 * lib/gateway/websocket-handshake.ts is the one check). That includes a
 * WebSocket handshake over HTTP/1.0, answered 400 although RFC 9110 §7.8
 * says a server must ignore `Upgrade` on HTTP/1.0: a WebSocket cannot run
 * over HTTP/1.0, and a 400 tells such a client what went wrong where
 * serving the GET as a page would leave it waiting for a 101. A request whose
 * `Upgrade` names only other protocols (`h2c`) is served as a normal one.
 * A server without the extension calls the app as for any request; the
 * key is then absent.
 *
 * The server MUST:
 * - send the `101 Switching Protocols` answer when the app calls `accept()`
 *   (not when the app returns), with the chosen subprotocol and the app's
 *   extra headers [ws-accept];
 * - deliver each complete message once, in order, through the socket's
 *   async iterator: text frames as `string`, binary as a plain
 *   `Uint8Array`, never a subclass such as Node's `Buffer` (whose `slice()`
 *   is a view where `Uint8Array`'s is a copy), so code behaves alike on
 *   every server; it may be a view into a larger `ArrayBuffer` (mind
 *   `byteOffset`); ping/pong and fragmentation are the server's business
 *   [ws-messages];
 * - bound what a client can hold: a maximum message size (default 1 MiB,
 *   closing with 1009 when exceeded), invalid UTF-8 in a text message closes
 *   with 1007, a handshake/idle timeout with pings, and messages the app has
 *   not read yet are bounded (the server stops reading the socket, or
 *   closes with 1008 where it cannot), each counted with a cost of its own
 *   beside its length, so that empty messages are bounded too [ws-limits];
 * - on graceful shutdown, close open sockets with 1001 [ws-shutdown];
 * - never lose or misparse bytes the client sent after the handshake in
 *   the same packet: they are the socket's first frames [ws-handoff].
 *
 * ## Apps
 *
 * An app that wants the socket calls `accept()` instead of `startResponse`
 * and returns an empty body (`[]`) [ws-app]; it may `await` first (an
 * authorisation lookup) and may answer with a normal response instead (a
 * 401, say), in which case it never calls `accept()`. Calling
 * `startResponse` after `accept()`, `accept()` after `startResponse`, or
 * `accept()` twice is a violation; a non-empty body after `accept()` is
 * logged and discarded. An error the app throws after accepting closes the
 * socket with 1011. When `gateway.websocket` is absent on a request that
 * asks for an upgrade, an app that needs the socket answers 426 Upgrade
 * Required (the framework's `app.ws()` does).
 *
 * Browsers do not hold WebSocket handshakes to the same-origin policy: a
 * page on any site may open a WebSocket to the app, and the browser sends
 * the app's cookies with it. An app that authenticates a WebSocket by
 * cookie (or by anything else the browser adds on its own, such as HTTP
 * authentication) MUST check the `Origin` of the handshake
 * (`environ.HTTP_ORIGIN`) against the origins it trusts before it accepts,
 * or any site its users visit can talk to it in their name (cross-site
 * WebSocket hijacking). The framework's `app.ws()` takes an `origin` option
 * for this. A token the page sends itself (in the URL or the first
 * message) needs no such check.
 */
import type { Headers } from './spec.js'

/** The environ key of the extension, written once: every server, `validate()` and the framework use it. */
export const WEBSOCKET_KEY = 'gateway.websocket'

/** A message: text frames arrive as strings, binary frames as a plain `Uint8Array` (not a `Buffer`, on every server). */
export type WebSocketMessage = string | Uint8Array

/** How a socket closed: the close code (1005 when none was sent, 1006 when the connection dropped) and reason. */
export interface WebSocketClose {
  readonly code: number
  readonly reason: string
}

export interface WebSocketAcceptOptions {
  /** The subprotocol to speak; MUST be one of {@link WebSocketUpgrade.protocols} [ws-protocol]. */
  readonly protocol?: string
  /**
   * Extra headers on the 101 answer (`Set-Cookie`, say); no hop-by-hop,
   * `Content-Length` (a 1xx has no content, RFC 9110 §8.6) or
   * `Sec-WebSocket-*` names [ws-protocol]. A `Server` field replaces the
   * server's own, as on any response.
   */
  readonly headers?: Headers
}

/** `environ['gateway.websocket']`: the offer of an upgrade, present only on a valid WebSocket handshake. */
export interface WebSocketUpgrade {
  /** The subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order; empty when none. */
  readonly protocols: readonly string[]
  /** Accepts the upgrade: the server answers 101 now and returns the socket. */
  accept(options?: WebSocketAcceptOptions): GatewayWebSocket
}

/**
 * An accepted WebSocket, the same on every server. Messages come in through
 * the async iterator (one reader), which ends when the socket closes.
 * Leaving the loop early closes the socket with 1000. postern's servers all
 * give `TransportWebSocket` (lib/gateway/websocket-transport.ts), where the
 * details are written down.
 */
export interface GatewayWebSocket extends AsyncIterable<WebSocketMessage> {
  /** The subprotocol chosen at `accept()`, `''` when none. */
  readonly protocol: string
  /** Bytes queued by `send()` and not yet handed to the operating system. */
  readonly bufferedAmount: number
  /**
   * Sends one message. Resolves when the server can take more (its buffer is
   * under its high-water mark), so `await ws.send(x)` in a loop is
   * backpressure; rejects when the socket is closed.
   */
  send(data: WebSocketMessage): Promise<void>
  /**
   * Starts the closing handshake. Idempotent. Code 1000 by default; an app
   * may use 3000–4999 or the RFC 6455 codes that fit an endpoint (1001,
   * 1003, 1007, 1008, 1009, 1011), not the framing layer's or reserved ones.
   */
  close(code?: number, reason?: string): void
  /** Settles once the socket is closed, whoever closed it. */
  readonly closed: Promise<WebSocketClose>
}
