/**
 * postern's HTTP/1.1 server: accepts connections on `node:net` (or
 * `node:tls` when given a key and certificate), hands each to a
 * {@link Connection}, enforces timeouts with one sweep timer for all
 * connections (no timer per request), and shuts down gracefully.
 */
import net from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import tls from 'node:tls'
import type { GatewayApp } from '../gateway/spec.js'
import { Connection } from './connection.js'
import type { ConnectionHost } from './connection.js'
import type { ConnectionInfo } from '../gateway/environ.js'
import type { ResolvedOptions, ServerOptions } from './options.js'
import { resolveOptions } from './options.js'
import { simpleResponse } from './response-head.js'
import type { WebSocketServer } from 'ws'
import { makeWebSocketServer } from './websocket-upgrade.js'

/** What `close()` did. */
export interface CloseResult {
  /** Connections cut at the drain deadline while a request was still in flight on them. */
  cut: number
}

/** Shortest interval of the sweep, however short the timeouts: each sweep walks every connection. */
const MIN_SWEEP = 10
/** How often deadlines are checked while draining (the idle grace is short). */
const SHUTDOWN_SWEEP = 50
/** Most sockets being refused with a 503 at once; past it they are dropped. */
const MAX_REFUSING = 256
/** Milliseconds a refused socket may take to receive its 503 before it is dropped. */
const REFUSE_LINGER = 1000

export interface ListenAddress {
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
  private closePromise: Promise<CloseResult> | null = null
  private whenEmpty: (() => void) | null = null
  /** Connections being refused with a 503 (over `maxConnections`). */
  private refusing = 0
  /** `ws`'s framer for WebSocket upgrades, made at the first one. */
  private wss: WebSocketServer | null = null

  constructor(app: GatewayApp, options: ServerOptions = {}) {
    if (typeof app !== 'function') throw new TypeError('postern: createServer(app) needs a gateway app: a function (environ, startResponse) => body')
    this.app = app
    this.options = resolveOptions(options)
    this.serverLine = this.options.serverHeader === false ? '' : `Server: ${this.options.serverHeader}\r\n`
    if (/[\r\n\0]/.test(this.serverLine.slice(0, -2))) throw new TypeError('postern: serverHeader must not hold CR, LF or NUL')
    if (this.options.tls !== undefined) {
      this.scheme = 'https'
      // Not half-open until the handshake is done (see accept): a client that leaves mid-handshake must free its socket.
      const tlsOptions = { ...this.options.tls, ALPNProtocols: ['http/1.1'], handshakeTimeout: this.options.handshakeTimeout }
      this.netServer = tls.createServer(tlsOptions, (socket) => this.accept(socket))
      // A failed, abandoned or timed-out handshake concerns that client only, but its socket must
      // go now: with allowHalfOpen nothing else would ever close it.
      this.netServer.on('tlsClientError', (_error: Error, socket: tls.TLSSocket) => socket.destroy())
      // Handshakes cost CPU and memory before any HTTP is seen: past the limit, Node drops the raw socket.
      this.netServer.maxConnections = this.options.maxConnections
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
  listen(options: ListenAddress = {}): Promise<AddressInfo> {
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
   * Stops accepting connections and drains: requests in flight finish (their
   * responses say `Connection: close`), idle connections close after a short
   * grace (a request racing the close is still answered), open WebSockets
   * are closed with 1001 (their clients answer the close and go), and after
   * `drainTimeout` whatever is left is cut. Resolves when every connection is
   * closed, with how many were cut while work was in flight.
   */
  close(): Promise<CloseResult> {
    if (this.closePromise !== null) return this.closePromise
    this.shuttingDown = true
    this.closePromise = new Promise<CloseResult>((resolve) => {
      let cut = 0
      let pending = 2
      const deadline = setTimeout(() => {
        for (const conn of this.connections) {
          if (conn.busy) cut++
          conn.socket.destroy()
        }
      }, this.options.drainTimeout)
      const done = () => {
        if (--pending === 0) {
          clearTimeout(deadline)
          this.stopSweep()
          resolve({ cut })
        }
      }
      this.netServer.close(() => done())
      if (this.connections.size === 0) done()
      else this.whenEmpty = done
      // From now on responses say `Connection: close`, and the sweep ends each connection once it
      // has been idle for a short grace (Connection.tick): sweep often while draining.
      this.startSweep(SHUTDOWN_SWEEP)
    })
    return this.closePromise
  }

  /** Ends every connection at once (after `close()` when in-flight work may be stuck). */
  destroyConnections(): void {
    for (const conn of this.connections) conn.socket.destroy()
  }

  webSocketServer(): WebSocketServer {
    if (this.options.webSocket === false) throw new Error('postern: WebSocket upgrades are turned off (webSocket: false)')
    this.wss ??= makeWebSocketServer(this.options.webSocket, this.serverLine)
    return this.wss
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
    // During shutdown a connection can still arrive (a cluster primary handing one over as this
    // worker closes): it is served like any other, its response says `Connection: close`.
    if (this.connections.size >= this.options.maxConnections && this.scheme === 'http') {
      this.refuse(socket)
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
    if (this.scheme === 'https') {
      socket.setNoDelay(true)
      // The connection may now stay half-open: responses still go out after a client's FIN (see Connection).
      socket.allowHalfOpen = true
    }
    this.connections.add(new Connection(socket, this, info))
  }

  /**
   * Over `maxConnections`: a fast 503 that says to come back, then close. The
   * refused sockets are bounded too: past {@link MAX_REFUSING} at once, or
   * after {@link REFUSE_LINGER} ms, they are dropped without a word.
   */
  private refuse(socket: Socket): void {
    if (this.refusing >= MAX_REFUSING) {
      socket.destroy()
      return
    }
    this.refusing++
    const timer = setTimeout(() => socket.destroy(), REFUSE_LINGER)
    socket.once('close', () => {
      this.refusing--
      clearTimeout(timer)
    })
    socket.on('error', () => {})
    socket.end(simpleResponse(503, 'the server has too many open connections; try again shortly', this.serverLine, 'Retry-After: 1\r\nConnection: close\r\n'))
    socket.resume() // read and drop what the client sends, so our answer is not lost to a reset
  }

  /**
   * One timer checks every connection's deadlines, often enough for the
   * shortest timeout: a deadline is kept to within a quarter of it (the
   * WebSocket idle rule acts twice per `idleTimeout`: a ping, then the cut).
   * The floor bounds the cost, since each sweep walks every connection.
   */
  private startSweep(interval?: number): void {
    const { headersTimeout, requestTimeout, keepAliveTimeout, sendTimeout, webSocket } = this.options
    let shortest = Math.min(headersTimeout, requestTimeout, keepAliveTimeout, sendTimeout)
    if (webSocket !== false) shortest = Math.min(shortest, webSocket.handshakeTimeout, webSocket.idleTimeout / 2, webSocket.sendTimeout)
    const every = interval ?? Math.max(MIN_SWEEP, Math.min(1000, Math.floor(shortest / 4)))
    if (this.sweep !== null) {
      if (interval === undefined) return
      clearInterval(this.sweep)
    }
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
