/**
 * `postern/gateway`: the gateway interface (its types and rules) and the
 * parts a server needs to speak it: the environ builder, the runner that
 * calls an app, the error policy, the request-body input and the limits.
 * A new server subclasses `GatewayCall` and implements its sink methods.
 * Everything here is the gateway core: it imports nothing else of postern.
 */
export * from './spec.js'
export { GatewayViolation, RULE_SIDE, checkHeaders, checkStatus, chunkLength, hasNoBody, type HeaderFacts, type RuleId } from './rules.js'
export { describeError, errorAnswer, errorStatus, publicMessage, reportError, statusOf, stderrStream } from './errors.js'
export { MALFORMED_PATH, buildEnviron, type ConnectionInfo, type Mount } from './environ.js'
export { GatewayCall, type UpgradedSocket } from './runner.js'
export { chunkBytes, joinChunks } from './chunks.js'
export { StreamInput } from './stream-input.js'
export {
  DEFAULT_BODY_LIMIT,
  DEFAULT_DRAIN_TIMEOUT,
  DEFAULT_SEND_TIMEOUT,
  DEFAULT_WEBSOCKET_CLOSE_TIMEOUT,
  DEFAULT_WEBSOCKET_HANDSHAKE_TIMEOUT,
  DEFAULT_WEBSOCKET_IDLE_TIMEOUT,
  DEFAULT_WEBSOCKET_MESSAGE_LIMIT,
  DEFAULT_WEBSOCKET_READ_HIGH_WATER,
  DEFAULT_WEBSOCKET_READ_LIMIT,
  DEFAULT_WEBSOCKET_SEND_HIGH_WATER,
} from './limits.js'
export type { GatewayWebSocket, WebSocketAcceptOptions, WebSocketClose, WebSocketMessage, WebSocketUpgrade } from './websocket.js'
export {
  WEBSOCKET_VERSION,
  checkWebSocketEnviron,
  checkWebSocketHandshake,
  type HandshakeField,
  type HandshakeHeaders,
  type InvalidHandshake,
  type ValidHandshake,
  type WebSocketHandshake,
} from './websocket-handshake.js'
export { MAX_CLOSE_REASON, checkAcceptOptions, checkCloseCode, type AcceptChoice } from './websocket-rules.js'
export { TransportWebSocket, WebSocketClosedError, type WebSocketQueueOptions, type WebSocketTransport } from './websocket-transport.js'
export { WEBSOCKET_DEFAULTS, webSocketLimits, type WebSocketLimits, type WebSocketOptions } from './websocket-limits.js'
export { WsTransport, type DrainingStream, type WsLiveness } from './websocket-ws.js'
