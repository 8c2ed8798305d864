/**
 * The `gateway.websocket` extension under Bun.serve, for `toFetch`. Bun
 * upgrades with `server.upgrade(request, { headers, data })` (it sends the
 * 101 and calls the `open` handler at once) and then frames the socket
 * itself, calling the `websocket` handlers given to Bun.serve, which are
 * per server, not per request. So `toFetch(app).websocket` is that handler
 * object, and it must be passed along:
 *
 *     const handler = toFetch(app)
 *     Bun.serve({ fetch: handler, websocket: handler.websocket })
 *
 * Bun reads the object's members when the server starts; the getters below
 * note it, and only then is the extension offered. A handler served without
 * it never offers `gateway.websocket` (the app answers 426 as on any server
 * without it) rather than failing at `accept()`, and its error log says once
 * how to serve it (fetch-websocket.ts).
 *
 * Limits map onto Bun's: `maxPayloadLength` (Bun closes with 1009),
 * `idleTimeout` in seconds with Bun's own pings, `backpressureLimit` with
 * `closeOnBackpressureLimit` (a send Bun would drop closes the socket
 * instead); reading stops with `pause()` where Bun has it (1.2+), else the
 * core's read limit closes with 1008.
 *
 * Bun's own limits, which the adapter cannot change: its `close` handler
 * says 1006 for a message over the limit (the client gets 1009); a client
 * that sends frames in the handshake's packet, before the 101, is answered
 * 400 by Bun if the app awaits before accepting (Bun parses them as the
 * next request; browsers never do this); Fetch requests do not carry the
 * HTTP version, so a handshake over HTTP/1.0 is offered too.
 */
import type { WebSocketTransport } from '../gateway/websocket-transport.js'
import type { WebSocketMessage } from '../gateway/websocket.js'
import type { BunServer, BunSocketData } from './bun-server.js'
import type { OpenWebSocket } from './websocket-offer.js'
import type { WebSocketLimits } from '../gateway/websocket-limits.js'

/** The part of Bun's `ServerWebSocket` used here. */
export interface BunServerWebSocket {
  readonly data: BunSocketData
  binaryType?: string
  readonly readyState: number
  send(data: string | Uint8Array): number
  close(code?: number, reason?: string): void
  getBufferedAmount?(): number
  pause?(): void
  resume?(): void
}

/** The `websocket` member of Bun.serve's options. */
export interface BunWebSocketHandler {
  readonly open: (ws: BunServerWebSocket) => void
  readonly message: (ws: BunServerWebSocket, message: string | Uint8Array) => void
  readonly close: (ws: BunServerWebSocket, code: number, reason: string) => void
  readonly drain: (ws: BunServerWebSocket) => void
  readonly maxPayloadLength: number
  readonly idleTimeout: number
  readonly backpressureLimit: number
  readonly closeOnBackpressureLimit: boolean
  readonly perMessageDeflate: boolean
}

/**
 * Bytes Bun may buffer past `sendHighWater` before it closes the socket
 * (`closeOnBackpressureLimit`): room for one large message sent while the
 * buffer sits at the high water, and for sends an app does not await.
 */
const BUN_SEND_MARGIN = 16 * 1024 * 1024

/** Bun's longest idle timeout, in seconds. */
const BUN_MAX_IDLE = 960

/**
 * Bun's `websocket` handlers for one `toFetch` handler. `onRead` is called
 * when Bun reads them (Bun.serve starting with them).
 */
export function bunWebSocketHandler(limits: WebSocketLimits, onRead: () => void): BunWebSocketHandler {
  const open = (ws: BunServerWebSocket): void => {
    ws.binaryType = 'uint8array'
    ws.data.socket.attach(new BunTransport(ws))
  }
  const message = (ws: BunServerWebSocket, data: string | Uint8Array): void => {
    ws.data.socket.receive(typeof data === 'string' ? data : plainBytes(data))
  }
  const close = (ws: BunServerWebSocket, code: number, reason: string): void => ws.data.socket.ended(code, reason)
  const drain = (ws: BunServerWebSocket): void => ws.data.socket.drained()
  return {
    get open() {
      onRead()
      return open
    },
    message,
    close,
    drain,
    maxPayloadLength: limits.maxMessageSize,
    // Bun pings a silent client and closes it after this many seconds: our ping wait and the answer's.
    idleTimeout: Math.min(BUN_MAX_IDLE, Math.ceil((2 * limits.idleTimeout) / 1000)),
    // The send side's bound: send() waits at sendHighWater, so only an app that does not await its sends (or one big message) goes far past it.
    backpressureLimit: limits.sendHighWater + BUN_SEND_MARGIN,
    closeOnBackpressureLimit: true,
    perMessageDeflate: false,
  }
}

/** `accept()` on Bun: `server.upgrade` sends the 101 and calls `open`, which attaches the transport. */
export function openOnBun(server: BunServer, request: Request, answer: (response: Response) => void): OpenWebSocket {
  return (choice, socket) => {
    const headers: Array<[string, string]> = [...choice.headers]
    if (choice.protocol !== '') headers.push(['Sec-WebSocket-Protocol', choice.protocol])
    let upgraded: boolean
    let failure: unknown = null
    try {
      upgraded = server.upgrade(request, { headers, data: { socket } })
    } catch (error) {
      upgraded = false
      failure = error
    }
    if (upgraded) {
      // Bun ignores what fetch returns after an upgrade; the handler's promise must still settle.
      answer(new Response(null))
      return
    }
    socket.ended(1006, '')
    answer(new Response('WebSocket upgrade failed\n', { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' } }))
    // Bun throws when its server has no websocket handlers, and returns false when it will not upgrade (the client left, say).
    throw new Error(
      failure === null
        ? 'postern: Bun did not upgrade this request (the client may have left)'
        : `postern: Bun could not upgrade this request (${String(failure)}); serve the toFetch handler with its websocket handlers: Bun.serve({ fetch: handler, websocket: handler.websocket })`,
    )
  }
}

/** Bun's `ServerWebSocket` as the core's transport. */
class BunTransport implements WebSocketTransport {
  private readonly ws: BunServerWebSocket

  constructor(ws: BunServerWebSocket) {
    this.ws = ws
  }

  get bufferedAmount(): number {
    return this.ws.getBufferedAmount?.() ?? 0
  }

  send(data: WebSocketMessage): void {
    // -1: queued behind backpressure (drain follows); 0: dropped, which closeOnBackpressureLimit turns into a close.
    this.ws.send(data)
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason)
  }

  pause(): void {
    this.ws.pause?.()
  }

  resume(): void {
    this.ws.resume?.()
  }
}

/** Bun may hand a Buffer (a Uint8Array subclass with more methods); the app gets plain bytes, as on Deno. */
function plainBytes(data: Uint8Array): Uint8Array {
  return data.constructor === Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}
