/**
 * The WebSocket limits an adapter takes (`webSocket` in its options, as on
 * postern's server, lib/server/options.ts), with the core's defaults
 * (lib/gateway/limits.ts), so a WebSocket behaves the same under
 * node:http, Bun and Deno as on postern's server. Free of Node built-ins:
 * the Fetch adapter loads it on every runtime.
 */
import {
  DEFAULT_WEBSOCKET_HANDSHAKE_TIMEOUT,
  DEFAULT_WEBSOCKET_IDLE_TIMEOUT,
  DEFAULT_WEBSOCKET_MESSAGE_LIMIT,
  DEFAULT_WEBSOCKET_READ_HIGH_WATER,
  DEFAULT_WEBSOCKET_READ_LIMIT,
  DEFAULT_WEBSOCKET_SEND_HIGH_WATER,
} from '../gateway/limits.js'

export interface WebSocketOptions {
  /** Largest message accepted, in bytes (1 MiB); a bigger one closes the socket with 1009. */
  maxMessageSize?: number
  /** Milliseconds of silence before the client is pinged; as long again without an answer and it is cut (30 000). */
  idleTimeout?: number
  /** Milliseconds the app has to accept a valid handshake or answer it; then the adapter answers 503 (10 000). */
  handshakeTimeout?: number
  /** Unread bytes above which reading stops (64 KiB). */
  readHighWater?: number
  /** Unread bytes above which the socket closes with 1008 (4 MiB): the only bound where reading cannot stop (Deno). */
  readLimit?: number
  /** `send()` resolves once at most this many bytes wait to go out (64 KiB). */
  sendHighWater?: number
  /** Milliseconds to wait for the client's close frame after ours before cutting the connection (5 000; node:http only, Bun and Deno keep their own). */
  closeTimeout?: number
}

/** The close timeout of postern's server (lib/server/options.ts), until the core's limits hold it. */
const DEFAULT_CLOSE_TIMEOUT = 5_000

/** The options with every default filled in. */
export type WebSocketLimits = Required<WebSocketOptions>

/** Fills in the defaults and checks the values: a typo must not silently mean "no limit". */
export function webSocketLimits(options: WebSocketOptions | undefined): WebSocketLimits {
  const limits: WebSocketLimits = {
    maxMessageSize: options?.maxMessageSize ?? DEFAULT_WEBSOCKET_MESSAGE_LIMIT,
    idleTimeout: options?.idleTimeout ?? DEFAULT_WEBSOCKET_IDLE_TIMEOUT,
    handshakeTimeout: options?.handshakeTimeout ?? DEFAULT_WEBSOCKET_HANDSHAKE_TIMEOUT,
    readHighWater: options?.readHighWater ?? DEFAULT_WEBSOCKET_READ_HIGH_WATER,
    readLimit: options?.readLimit ?? DEFAULT_WEBSOCKET_READ_LIMIT,
    sendHighWater: options?.sendHighWater ?? DEFAULT_WEBSOCKET_SEND_HIGH_WATER,
    closeTimeout: options?.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT,
  }
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`webSocket.${name} must be a positive integer, got ${String(value)}`)
  }
  return limits
}
