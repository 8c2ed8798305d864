/**
 * postern's HTTP/1.1 server: accepts connections on `node:net` (or
 * `node:tls` when given a key and certificate), hands each to a
 * {@link Connection}, enforces timeouts with one sweep timer for all
 * connections (no timer per request), and shuts down gracefully.
 */
import net from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import tls from 'node:tls'
import type { GatewayApp } from '../gateway.js'
import { Connection } from './connection.js'
import type { ConnectionHost } from './connection.js'
import type { ConnectionInfo } from './environ.js'
import type { ResolvedOptions, ServerOptions } from './options.js'
import { resolveOptions } from './options.js'

export interface ListenOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number
  /** Address to listen on; default 127.0.0.1. */
  host?: string
  /** Pending-connection queue length. */
  backlog?: number
}

export class PosternServer implements ConnectionHost {
  readonly app: GatewayApp
  readonly options: ResolvedOptions
  readonly serverLine: string
  /** The underlying `net.Server` (a `tls.Server` for HTTPS). */
  readonly netServer: net.Server
  private readonly connections = new Set<Connection>()
  private readonly scheme: 'http' | 'https'
  private sweep: NodeJS.Timeout | null = null
  private shuttingDown = false
  private closePromise: Promise<void> | null = null
  private whenEmpty: (() => void) | null = null

  constructor(app: GatewayApp, options: ServerOptions = {}) {
    if (typeof app !== 'function') throw new TypeError('postern: createServer(app) needs a gateway app: a function (environ, startResponse) => body')
    this.app = app
    this.options = resolveOptions(options)
    this.serverLine = this.options.serverHeader === false ? '' : `Server: ${this.options.serverHeader}\r\n`
    if (/[\r\n\0]/.test(this.serverLine.slice(0, -2))) throw new TypeError('postern: serverHeader must not hold CR, LF or NUL')
    if (this.options.tls !== undefined) {
      this.scheme = 'https'
      this.netServer = tls.createServer({ ...this.options.tls, allowHalfOpen: true, ALPNProtocols: ['http/1.1'] }, (socket) => this.accept(socket))
      this.netServer.on('tlsClientError', () => {
        // a failed handshake concerns that client only
      })
    } else {
      this.scheme = 'http'
      this.netServer = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.accept(socket))
    }
  }

  get closing(): boolean {
    return this.shuttingDown
  }

  /** How many connections are open. */
  get connectionCount(): number {
    return this.connections.size
  }

  /** Starts listening; resolves with the bound address. */
  listen(options: ListenOptions = {}): Promise<AddressInfo> {
    const { port = 0, host = '127.0.0.1', backlog = 511 } = options
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => {
        this.netServer.off('listening', onListening)
        reject(error)
      }
      const onListening = () => {
        this.netServer.off('error', onError)
        this.startSweep()
        resolve(this.netServer.address() as AddressInfo)
      }
      this.netServer.once('error', onError)
      this.netServer.once('listening', onListening)
      this.netServer.listen(port, host, backlog)
    })
  }

  /** The bound address, or null before `listen`. */
  address(): AddressInfo | null {
    const address = this.netServer.address()
    return address !== null && typeof address === 'object' ? address : null
  }

  /**
   * Stops accepting connections, lets requests in flight finish (their
   * responses say `Connection: close`), closes idle connections, and
   * resolves when every connection is closed.
   */
  close(): Promise<void> {
    if (this.closePromise !== null) return this.closePromise
    this.shuttingDown = true
    this.closePromise = new Promise<void>((resolve) => {
      let pending = 2
      const done = () => {
        if (--pending === 0) {
          this.stopSweep()
          resolve()
        }
      }
      this.netServer.close(() => done())
      if (!this.netServer.listening) {
        // never listened: close() calls back with an error, handled above
      }
      if (this.connections.size === 0) done()
      else this.whenEmpty = done
      for (const conn of this.connections) conn.shutdown()
    })
    return this.closePromise
  }

  /** Ends every connection at once (after `close()` when in-flight work may be stuck). */
  destroyConnections(): void {
    for (const conn of this.connections) conn.socket.destroy()
  }

  connectionClosed(conn: Connection): void {
    this.connections.delete(conn)
    if (this.connections.size === 0 && this.whenEmpty !== null) {
      const done = this.whenEmpty
      this.whenEmpty = null
      done()
    }
  }

  private accept(socket: Socket): void {
    if (this.shuttingDown) {
      socket.destroy()
      return
    }
    const info: ConnectionInfo = {
      serverName: socket.localAddress ?? '',
      serverPort: String(socket.localPort ?? ''),
      remoteAddr: socket.remoteAddress ?? '',
      remotePort: String(socket.remotePort ?? ''),
      scheme: this.scheme,
      errors: this.options.errors,
      multiprocess: this.options.multiprocess,
    }
    if (this.scheme === 'https') socket.setNoDelay(true)
    this.connections.add(new Connection(socket, this, info))
  }

  /** One timer checks every connection's deadlines, often enough for the shortest timeout. */
  private startSweep(): void {
    if (this.sweep !== null) return
    const { headersTimeout, requestTimeout, keepAliveTimeout } = this.options
    const every = Math.max(10, Math.min(1000, Math.floor(Math.min(headersTimeout, requestTimeout, keepAliveTimeout) / 4)))
    this.sweep = setInterval(() => {
      const now = Date.now()
      for (const conn of this.connections) conn.tick(now)
    }, every)
    this.sweep.unref()
  }

  private stopSweep(): void {
    if (this.sweep !== null) clearInterval(this.sweep)
    this.sweep = null
  }
}

/** Creates a postern server for a gateway app. */
export function createServer(app: GatewayApp, options?: ServerOptions): PosternServer {
  return new PosternServer(app, options)
}
