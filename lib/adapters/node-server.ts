/**
 * `serveNode(app)`: the reference gateway server on node:http (or node:https),
 * like Python's `wsgiref.simple_server`. It is the yardstick for postern's
 * own server and the `--server node` choice of the CLI: same app, Node's
 * HTTP stack underneath. Its `close()` keeps the same promise as postern's
 * server (a drain deadline, then `{ cut }`), so the CLI and its supervisor
 * treat both alike.
 */
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import type { GatewayApp } from '../gateway/spec.js'
import { DEFAULT_DRAIN_TIMEOUT } from '../gateway/limits.js'
import { toNodeListener, type NodeAdapterOptions } from './to-node.js'
import { toNodeUpgrade } from './node-websocket.js'

export interface NodeServeOptions extends NodeAdapterOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number
  /** Address to listen on; default `127.0.0.1`. */
  host?: string
  /** Serve HTTPS: at least `key` and `cert`. */
  tls?: https.ServerOptions
  /** Milliseconds `close()` lets requests in flight finish before cutting them; default as postern's server (20 000). */
  drainTimeout?: number
}

export interface NodeServed {
  server: http.Server
  /** The port actually listened on. */
  port: number
  host: string
  /** True from the first `close()`. */
  readonly closing: boolean
  /**
   * Stops accepting, lets in-flight responses finish (they say
   * `Connection: close`), closes open WebSockets with 1001, drops idle
   * connections; after `drainTimeout` destroys what is left. `cut` counts
   * the connections that still had a request in flight then, an open
   * WebSocket or a handshake not yet answered, as postern's server does.
   */
  close(): Promise<{ cut: number }>
}

/** Serves `app` on node:http (or node:https with `tls`) until `close()`. */
export async function serveNode(app: GatewayApp, options: NodeServeOptions = {}): Promise<NodeServed> {
  const drainTimeout = options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT
  if (!Number.isSafeInteger(drainTimeout) || drainTimeout <= 0) throw new TypeError(`serveNode: drainTimeout must be a positive integer, got ${String(drainTimeout)}`)
  const listener = toNodeListener(app, options)
  // Responses not yet finished: what a deadline would cut.
  const active = new Set<http.ServerResponse>()
  const sockets = new Set<Socket>()
  let closing: Promise<{ cut: number }> | undefined
  const track = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (closing !== undefined) res.shouldKeepAlive = false
    active.add(res)
    const finished = () => {
      if (!active.delete(res)) return
      // While draining, a connection whose last response went out is idle: close it now.
      if (closing !== undefined) setImmediate(() => server.closeIdleConnections())
    }
    res.once('finish', finished)
    res.once('close', finished)
    listener(req, res)
  }
  const server: http.Server = options.tls === undefined ? http.createServer(track) : https.createServer(options.tls, track)
  const upgrade = options.webSocket === false ? null : toNodeUpgrade(app, options)
  if (upgrade !== null) server.on('upgrade', upgrade)
  // Raw sockets, TLS handshakes included, so the deadline can end every one of them.
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  return {
    server,
    port,
    host,
    get closing() {
      return closing !== undefined
    },
    close() {
      closing ??= new Promise<{ cut: number }>((resolve) => {
        let cut = 0
        // Responses not started yet say `Connection: close`; started ones end their connection once idle.
        for (const res of active) if (!res.headersSent) res.shouldKeepAlive = false
        // [ws-shutdown]: a closing handshake each; the deadline below cuts clients that never answer it.
        void upgrade?.closeAll()
        const deadline = setTimeout(() => {
          // Upgraded and upgrading connections are not in `active`: Node handed them to the upgrade listener.
          cut = new Set([...active].map((res) => res.socket)).size + (upgrade === null ? 0 : upgrade.size + upgrade.answering)
          for (const socket of sockets) socket.destroy()
        }, drainTimeout)
        deadline.unref()
        server.close(() => {
          clearTimeout(deadline)
          resolve({ cut })
        })
        server.closeIdleConnections()
      })
      return closing
    },
  }
}
