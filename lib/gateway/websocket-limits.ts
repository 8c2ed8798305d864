/**
 * The WebSocket extension's bounds as options (`webSocket` of postern's
 * server and of every adapter), their defaults and their check, written
 * once so a bound means the same on every server [ws-limits]. The default
 * numbers are the core's (limits.ts). Free of Node built-ins: the Fetch
 * adapter loads it on every runtime.
 */
import {
  DEFAULT_SEND_TIMEOUT,
  DEFAULT_WEBSOCKET_CLOSE_TIMEOUT,
  DEFAULT_WEBSOCKET_HANDSHAKE_TIMEOUT,
  DEFAULT_WEBSOCKET_IDLE_TIMEOUT,
  DEFAULT_WEBSOCKET_MESSAGE_LIMIT,
  DEFAULT_WEBSOCKET_READ_HIGH_WATER,
  DEFAULT_WEBSOCKET_READ_LIMIT,
  DEFAULT_WEBSOCKET_SEND_HIGH_WATER,
} from './limits.js'

/** The WebSocket bounds, all on by default; each must be a positive integer. */
export interface WebSocketOptions {
  /** Largest message, in bytes (1 MiB). Over it the socket closes with 1009. */
  maxMessageSize?: number
  /** Milliseconds the app has to accept a valid handshake or answer it (10 s). Then 503 and close. */
  handshakeTimeout?: number
  /** Milliseconds of silence from the client before a ping (30 s); as long again with no answer and the connection is cut. */
  idleTimeout?: number
  /** Bytes of messages the app has not read over which the server stops reading the socket (64 KiB); each message counts 128 bytes more than its length (WEBSOCKET_MESSAGE_OVERHEAD), so empty ones are bounded too. */
  readHighWater?: number
  /** Bytes of unread messages over which the socket closes with 1008 (4 MiB): a backstop where reading stops, the only bound where it cannot (Deno). */
  readLimit?: number
  /** `send()` resolves once at most this many bytes wait to go out (64 KiB): awaiting it is backpressure. */
  sendHighWater?: number
  /**
   * Milliseconds bytes may wait for a client that reads none of them; then
   * the connection is cut and a waiting `send()` rejects (30 s). On
   * postern's server it defaults to the server's own `sendTimeout`. Bun and
   * Deno bound a stalled send their own way (Bun closes over its
   * backpressure limit), so their adapter does not read it.
   */
  sendTimeout?: number
  /** Milliseconds to wait for the client's close frame after ours before cutting the connection (5 s; Bun and Deno keep their own). */
  closeTimeout?: number
}

/** The options with every default filled in. */
export type WebSocketLimits = Required<WebSocketOptions>

/** The defaults (lib/gateway/limits.ts). */
export const WEBSOCKET_DEFAULTS: Readonly<WebSocketLimits> = Object.freeze({
  maxMessageSize: DEFAULT_WEBSOCKET_MESSAGE_LIMIT,
  handshakeTimeout: DEFAULT_WEBSOCKET_HANDSHAKE_TIMEOUT,
  idleTimeout: DEFAULT_WEBSOCKET_IDLE_TIMEOUT,
  readHighWater: DEFAULT_WEBSOCKET_READ_HIGH_WATER,
  readLimit: DEFAULT_WEBSOCKET_READ_LIMIT,
  sendHighWater: DEFAULT_WEBSOCKET_SEND_HIGH_WATER,
  sendTimeout: DEFAULT_SEND_TIMEOUT,
  closeTimeout: DEFAULT_WEBSOCKET_CLOSE_TIMEOUT,
})

/**
 * Fills in the defaults (`defaults`, the core's unless a server has its own,
 * as postern's server for `sendTimeout`) and checks every value: a typo must
 * not silently mean "no limit". An option given as `undefined` takes its default.
 */
export function webSocketLimits(options: WebSocketOptions | undefined, defaults: Readonly<WebSocketLimits> = WEBSOCKET_DEFAULTS): WebSocketLimits {
  const limits: WebSocketLimits = { ...defaults }
  for (const key of Object.keys(defaults) as Array<keyof WebSocketLimits>) {
    const value = options?.[key]
    if (value !== undefined) limits[key] = value
    if (!Number.isSafeInteger(limits[key]) || limits[key] <= 0) {
      throw new TypeError(`postern: option webSocket.${key} must be a positive integer, got ${String(limits[key])}`)
    }
  }
  return limits
}
