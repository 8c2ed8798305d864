/**
 * The node:http adapters, both ways: postern apps on Node servers
 * (`toNodeListener`, `toNodeUpgrade` for WebSockets, `serveNode` wiring
 * both) and Node listeners such as Express or Fastify on postern
 * (`fromNode`).
 */
export { toNodeListener, nodeEnviron, type NodeAdapterOptions, type NodeRequest, type NodeResponse, type NodeRequestListener } from './to-node.js'
export { toNodeUpgrade, type NodeUpgradeListener } from './node-websocket.js'
export type { WebSocketOptions } from '../gateway/websocket-limits.js'
export { serveNode, type NodeServeOptions, type NodeServed } from './node-server.js'
export { fromNode, type NodeListener } from './from-node.js'
