/**
 * Limits every gateway stack enforces, with their defaults: postern's server,
 * the adapters and the plugins read them from here, so a body limit means the
 * same on every server.
 */

/** Largest request body read by `gateway.input.bytes()` when no limit is given, in bytes (1 MiB). Over it: 413. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024

/** Milliseconds a closing server lets requests in flight finish before it cuts them. */
export const DEFAULT_DRAIN_TIMEOUT = 20_000

/**
 * Milliseconds bytes may wait for a client that reads none of them (nginx's
 * `send_timeout`); then the connection is cut. A stalled HTTP response and a
 * stalled WebSocket send are bounded alike.
 */
export const DEFAULT_SEND_TIMEOUT = 30_000

/** Largest WebSocket message a server accepts, in bytes (1 MiB); over it the socket closes with 1009. */
export const DEFAULT_WEBSOCKET_MESSAGE_LIMIT = 1024 * 1024

/** Bytes of WebSocket messages the app has not read yet above which the server stops reading the socket (64 KiB). */
export const DEFAULT_WEBSOCKET_READ_HIGH_WATER = 64 * 1024

/**
 * Bytes of unread WebSocket messages above which the socket closes with 1008
 * (4 MiB): the bound on a transport that cannot stop reading, and a backstop
 * on one that can (after it stops, at most one read and one message more arrive).
 */
export const DEFAULT_WEBSOCKET_READ_LIMIT = 4 * 1024 * 1024

/** A WebSocket's `send()` resolves once the bytes waiting to go out are at most this many (64 KiB). */
export const DEFAULT_WEBSOCKET_SEND_HIGH_WATER = 64 * 1024

/** Milliseconds of silence after which a server pings a WebSocket client; one more such wait without an answer closes it. */
export const DEFAULT_WEBSOCKET_IDLE_TIMEOUT = 30_000

/** Milliseconds an app has, once a valid WebSocket handshake came in, to accept it or answer; then the server answers 503. */
export const DEFAULT_WEBSOCKET_HANDSHAKE_TIMEOUT = 10_000

/** Milliseconds a server waits for the client's close frame after sending its own, then cuts the connection. */
export const DEFAULT_WEBSOCKET_CLOSE_TIMEOUT = 5_000
