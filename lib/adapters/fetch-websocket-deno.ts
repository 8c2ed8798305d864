/**
 * The `gateway.websocket` extension under Deno.serve, for `toFetch`.
 * `Deno.upgradeWebSocket(request, { idleTimeout })` gives the 101
 * response (the handler's promise resolves with it, plus the subprotocol
 * and the app's extra headers, which Deno lets us append) and a browser-style WebSocket
 * that opens once the response went out; the core's socket buffers the
 * app's early sends until then.
 *
 * What Deno's WebSocket cannot do, the core's bounds stand in for
 * [ws-limits]:
 * - it cannot stop reading: the unread queue's limit closes with 1008;
 * - it has no message size option (its own limit is far above 1 MiB): a
 *   message over `maxMessageSize` closes with 1009 only once Deno has
 *   received all of it, so on Deno `maxMessageSize` bounds what the app
 *   gets, not what the server holds: a client can make Deno buffer one
 *   message up to Deno's own limit per connection before the 1009 (on
 *   postern's server, node:http and Bun the frame is refused as its
 *   length arrives);
 * - it has no drain event: a waiting `send()` polls `bufferedAmount`.
 * Deno pings a silent client every `idleTimeout` seconds and closes it when
 * no pong comes; `Deno.serve`'s `shutdown()` closes sockets with 1001.
 * Deno's framing drops a connection that sends invalid UTF-8 in a text
 * message without a 1007 close frame, and upgrades a handshake over
 * HTTP/1.0 (Fetch requests do not carry the version).
 */
import { chunkLength } from '../gateway/rules.js'
import type { WebSocketTransport } from '../gateway/websocket-transport.js'
import type { WebSocketMessage } from '../gateway/websocket.js'
import type { OpenWebSocket } from './websocket-offer.js'
import type { WebSocketLimits } from '../gateway/websocket-limits.js'

/** The part of a browser-style WebSocket Deno gives. */
interface DenoWebSocket {
  binaryType: string
  readonly bufferedAmount: number
  onopen: (() => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: { code: number; reason: string }) => void) | null
  onerror: (() => void) | null
  send(data: string | Uint8Array): void
  close(code?: number, reason?: string): void
}

type UpgradeWebSocket = (request: Request, options?: { protocol?: string; idleTimeout?: number }) => { socket: DenoWebSocket; response: Response }

/** `Deno.upgradeWebSocket` when running on Deno and `info` is Deno.serve's handler info; else null. */
export function denoUpgrade(info: unknown): UpgradeWebSocket | null {
  const deno = (globalThis as { Deno?: { upgradeWebSocket?: unknown } }).Deno
  if (typeof deno?.upgradeWebSocket !== 'function') return null
  // Deno.serve passes { remoteAddr, completed }; a request built in process cannot be upgraded.
  if (typeof info !== 'object' || info === null || !('remoteAddr' in info)) return null
  return deno.upgradeWebSocket as UpgradeWebSocket
}

/** `accept()` on Deno: the 101 response answers the handler; the transport attaches when the socket opens. */
export function openOnDeno(upgradeWebSocket: UpgradeWebSocket, request: Request, limits: WebSocketLimits, answer: (response: Response) => void): OpenWebSocket {
  return (choice, socket) => {
    let upgraded: { socket: DenoWebSocket; response: Response }
    try {
      // The subprotocol goes in as a header below: Deno's own check splits the offer on ', ' only, refusing `chat,x`.
      upgraded = upgradeWebSocket(request, { idleTimeout: Math.max(1, Math.ceil(limits.idleTimeout / 1000)) })
    } catch (error) {
      socket.ended(1006, '')
      answer(new Response('WebSocket upgrade failed\n', { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' } }))
      throw error
    }
    const { socket: ws, response } = upgraded
    for (const [name, value] of choice.headers) response.headers.append(name, value)
    if (choice.protocol !== '') response.headers.set('Sec-WebSocket-Protocol', choice.protocol)
    ws.binaryType = 'arraybuffer'
    const transport = new DenoTransport(ws)
    ws.onopen = () => socket.attach(transport)
    ws.onmessage = (event) => {
      const data = event.data
      const message: WebSocketMessage = typeof data === 'string' ? data : new Uint8Array(data as ArrayBuffer)
      if (chunkLength(message) > limits.maxMessageSize) socket.closeFromServer(1009, 'message too big')
      else socket.receive(message)
    }
    ws.onerror = () => {
      // The close event follows with the code.
    }
    // Deno reports a dropped connection with code 0.
    ws.onclose = (event) => socket.ended(event.code === 0 ? 1006 : event.code, event.reason)
    answer(response)
  }
}

/** Deno's WebSocket as the core's transport: no pause, no drain event. */
class DenoTransport implements WebSocketTransport {
  private readonly ws: DenoWebSocket

  constructor(ws: DenoWebSocket) {
    this.ws = ws
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount
  }

  send(data: WebSocketMessage): void {
    this.ws.send(data)
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason)
  }
}
