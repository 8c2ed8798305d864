/**
 * The adapters' `webSocket` option: the core's type (lib/gateway/websocket-limits.ts),
 * named and defaulted as on postern's server. Kept for the files that still
 * import it from here; new code imports the core's.
 */
export { webSocketLimits, type WebSocketLimits, type WebSocketOptions } from '../gateway/websocket-limits.js'
