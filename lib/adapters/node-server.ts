/**
 * `serveNode(app)`: the reference gateway server on node:http (or node:https),
 * like Python's `wsgiref.simple_server`. It is the yardstick for postern's
 * own server and the `--server node` choice of the CLI: same app, Node's
 * HTTP stack underneath.
 */
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import type { GatewayApp } from '../gateway.js'
import { toNodeListener, type NodeAdapterOptions } from './to-node.js'

export interface NodeServeOptions extends NodeAdapterOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number
  /** Address to listen on; default `127.0.0.1`. */
  host?: string
  /** Serve HTTPS: at least `key` and `cert`. */
  tls?: https.ServerOptions
}

export interface NodeServed {
  server: http.Server
  /** The port actually listened on. */
  port: number
  host: string
  /** Stops accepting, lets in-flight responses finish, drops idle connections. */
  close(): Promise<void>
}

/** Serves `app` on node:http (or node:https with `tls`) until `close()`. */
export async function serveNode(app: GatewayApp, options: NodeServeOptions = {}): Promise<NodeServed> {
  const listener = toNodeListener(app, options)
  const server: http.Server = options.tls === undefined ? http.createServer(listener) : https.createServer(options.tls, listener)
  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  let closing: Promise<void> | undefined
  return {
    server,
    port,
    host,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)))
        server.closeIdleConnections()
      })
      return closing
    },
  }
}
