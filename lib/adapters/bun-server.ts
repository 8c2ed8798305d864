/**
 * Bun's `Server`, the second argument Bun.serve passes to `fetch`: the one
 * way `toFetch` tells it runs on Bun (for the addresses, to-fetch.ts) and
 * can upgrade (fetch-websocket-bun.ts). Only the members postern uses.
 * Free of Node built-ins.
 */
import type { TransportWebSocket } from '../gateway/websocket-transport.js'

/** What `server.upgrade` is given as `data`: the socket the app holds. */
export interface BunSocketData {
  readonly socket: TransportWebSocket
}

export interface BunServer {
  /** Where it listens; absent on a Unix socket. */
  readonly hostname?: string
  readonly port?: number
  /** A request's client address. */
  requestIP(request: Request): { address?: unknown; port?: unknown } | null
  /** Sends the 101 and hands the socket to the server's `websocket` handlers; false when it will not (the client left). */
  upgrade(request: Request, options: { headers?: Array<[string, string]>; data?: BunSocketData }): boolean
}

/** Whether `info`, what the host passed to the Fetch handler, is Bun's server. */
export function isBunServer(info: unknown): info is BunServer {
  if (typeof info !== 'object' || info === null) return false
  const bun = info as Partial<BunServer>
  return typeof bun.upgrade === 'function' && typeof bun.requestIP === 'function'
}
