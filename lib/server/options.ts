/**
 * The server's options, with limits and timeouts on by default: a server that
 * faces the internet must not be starved by a slow or huge client, so every
 * bound has a safe value and each can be changed.
 */
import type { SecureContextOptions, TlsOptions } from 'node:tls'
import type { ErrorStream } from '../gateway/spec.js'
import { DEFAULT_BODY_LIMIT, DEFAULT_DRAIN_TIMEOUT, DEFAULT_SEND_TIMEOUT } from '../gateway/limits.js'
import { stderrStream } from '../gateway/errors.js'
import { WEBSOCKET_DEFAULTS, webSocketLimits, type WebSocketLimits, type WebSocketOptions } from '../gateway/websocket-limits.js'

/** The WebSocket extension's bounds (`gateway.websocket`), the core's type: the adapters take the same. */
export type { WebSocketOptions }

export interface ServerOptions {
  /** Serve HTTPS with `node:tls`: give at least `key` and `cert`. */
  tls?: TlsOptions & SecureContextOptions
  /** Largest request head (request line and header fields), in bytes. Over it: 431 (414 when the request line alone is over it). */
  maxHeaderSize?: number
  /** Most header fields in one request (trailers count too). Over it: 431. */
  maxHeaderCount?: number
  /** Longest request target, in bytes. Over it: 414. */
  maxTargetLength?: number
  /** Largest request body, in bytes. Over it: 413. */
  maxBodySize?: number
  /** Largest total of chunk extensions in one chunked body, in bytes. Over it: 400. */
  maxChunkExtensionSize?: number
  /** Most chunks in one chunked request body (each costs framing and bookkeeping beyond its bytes). Over it: 413. */
  maxChunkCount?: number
  /** Most requests parsed ahead of their responses on one connection (pipelining). */
  maxPipelineDepth?: number
  /** Most open connections. Past it a new connection gets a fast 503 and is closed (on TLS it is closed before the handshake). */
  maxConnections?: number
  /** Milliseconds to receive a whole request head once it started (slow-loris). Then 408 and close. */
  headersTimeout?: number
  /** Milliseconds to receive a whole request, head and body. Then 408 and close. */
  requestTimeout?: number
  /** Milliseconds an idle keep-alive connection is kept open. */
  keepAliveTimeout?: number
  /** Milliseconds a response may wait on a client that reads none of it (nginx's `send_timeout`). Then the connection is cut. Also bounds a WebSocket's stalled sends, unless `webSocket.sendTimeout` is given. */
  sendTimeout?: number
  /** Milliseconds for a TLS client to finish its handshake. Then the socket is destroyed. */
  handshakeTimeout?: number
  /** Milliseconds `close()` lets requests in flight finish (gunicorn's `graceful_timeout`); then the rest are cut. */
  drainTimeout?: number
  /** The `Server` header; `false` sends none. */
  serverHeader?: string | false
  /** Where app errors are reported (`gateway.errors`); default: standard error. */
  errors?: ErrorStream
  /** Whether other processes serve the same app (`gateway.multiprocess`). */
  multiprocess?: boolean
  /**
   * WebSocket upgrades (`gateway.websocket`): their bounds, or `false` to
   * offer none (upgrade requests then reach the app as plain requests).
   * Invalid handshakes get 400/426 without calling the app; graceful
   * shutdown closes open sockets with 1001.
   */
  webSocket?: WebSocketOptions | false
}

/** Options with every default filled in. */
export type ResolvedOptions = Required<Omit<ServerOptions, 'tls' | 'webSocket'>> & Pick<ServerOptions, 'tls'> & { webSocket: WebSocketLimits | false }

/**
 * The port postern listens on when none is given: `app.listen()` and the
 * `postern` command (which reads `$PORT` first) agree on it.
 */
export const DEFAULT_PORT = 8888

/** The host postern listens on when none is given: loopback, so nothing is exposed by accident. */
export const DEFAULT_HOST = '127.0.0.1'

export const DEFAULTS: Readonly<Omit<ResolvedOptions, 'tls' | 'errors'>> = {
  maxHeaderSize: 16 * 1024,
  maxHeaderCount: 100,
  maxTargetLength: 8 * 1024,
  maxBodySize: DEFAULT_BODY_LIMIT,
  maxChunkExtensionSize: 4 * 1024,
  maxChunkCount: 16 * 1024,
  maxPipelineDepth: 64,
  maxConnections: 10_000,
  headersTimeout: 10_000,
  requestTimeout: 60_000,
  keepAliveTimeout: 5_000,
  sendTimeout: DEFAULT_SEND_TIMEOUT,
  handshakeTimeout: 10_000,
  drainTimeout: DEFAULT_DRAIN_TIMEOUT,
  serverHeader: 'postern',
  multiprocess: false,
  webSocket: WEBSOCKET_DEFAULTS,
}

/** Fills in defaults and checks that every number is a usable bound. */
export function resolveOptions(options: ServerOptions = {}): ResolvedOptions {
  const { webSocket, ...rest } = options
  const resolved: ResolvedOptions = { ...DEFAULTS, errors: stderrStream, ...stripUndefined(rest), webSocket: false }
  for (const key of [
    'maxHeaderSize',
    'maxHeaderCount',
    'maxTargetLength',
    'maxBodySize',
    'maxChunkExtensionSize',
    'maxChunkCount',
    'maxPipelineDepth',
    'maxConnections',
    'headersTimeout',
    'requestTimeout',
    'keepAliveTimeout',
    'sendTimeout',
    'handshakeTimeout',
    'drainTimeout',
  ] as const) {
    const value = resolved[key]
    if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`postern: option ${key} must be a positive integer, got ${String(value)}`)
  }
  resolved.webSocket = resolveWebSocket(webSocket, resolved.sendTimeout)
  return resolved
}

/** The core's check; a stalled send's bound defaults to the server's own `sendTimeout`. */
function resolveWebSocket(options: WebSocketOptions | false | undefined, sendTimeout: number): WebSocketLimits | false {
  if (options === false) return false
  // Untouched defaults are the core's own object (one shared, frozen set), not a copy.
  if (options === undefined && sendTimeout === WEBSOCKET_DEFAULTS.sendTimeout) return WEBSOCKET_DEFAULTS
  return webSocketLimits(options, { ...WEBSOCKET_DEFAULTS, sendTimeout })
}

function stripUndefined<T extends object>(options: T): Partial<T> {
  const out: Partial<T> = {}
  for (const key of Object.keys(options) as Array<keyof T>) if (options[key] !== undefined) out[key] = options[key]
  return out
}
