/**
 * One client connection: feeds the socket's bytes to the parser, starts an
 * exchange per request, and writes responses strictly in request order.
 *
 * Pipelined requests run concurrently (up to `maxPipelineDepth`); output of a
 * response that is ready before the ones ahead of it waits in the
 * connection's `held` map until its turn. The bytes
 * go out through the connection's SocketWriter (socket-writer.ts), which
 * batches them. Reading stops while the socket's write buffer is full, while
 * an app leaves too much of its body unread, or while the pipeline is full.
 *
 * A request with an `Upgrade` header is checked as a WebSocket handshake
 * (the core's check; one environ lookup for every other request): an
 * invalid one is answered 400/426 without the app, a valid one is the
 * connection's last HTTP request: parsing stops after its head, and if the
 * app accepts, the socket and the bytes read after the head go to the
 * WebSocket (websocket-upgrade.ts); if it answers instead, the connection
 * closes after that answer.
 */
import type { Socket } from 'node:net'
import type { Environ, GatewayApp } from '../gateway/spec.js'
import { GatewayError } from '../gateway/spec.js'
import type { ConnectionInfo } from '../gateway/environ.js'
import { buildEnviron } from '../gateway/environ.js'
import type { ExchangeOwner } from './exchange.js'
import { Exchange } from './exchange.js'
import { HIGH_WATER, RequestInput } from './body-input.js'
import { EMPTY_INPUT } from '../gateway/empty-input.js'
import type { ResolvedOptions } from './options.js'
import type { ParserHandler, RequestHead } from './parser.js'
import { ParseError, RequestParser } from './parser.js'
import { simpleResponse } from './response-head.js'
import type { WriterOwner } from './socket-writer.js'
import { SocketWriter } from './socket-writer.js'
import { checkWebSocketEnviron } from '../gateway/websocket-handshake.js'
import type { WebSocketServer } from 'ws'
import { PendingUpgrade, type UpgradeHost } from './websocket-upgrade.js'

/** Why reading is paused; reading resumes when no reason is left. */
const PAUSE_WRITE = 1
const PAUSE_INPUT = 2
const PAUSE_PIPELINE = 4
const PAUSE_UPGRADE = 8

/** While the server drains, a connection idle this long is closed (a request racing the close is still answered). */
const SHUTDOWN_IDLE_GRACE = 250
/** After we end a connection we keep reading (so our last response is not lost to a reset), but at most this much. */
const LINGER_MAX_BYTES = 1024 * 1024

/** What the connection needs from its server. */
export interface ConnectionHost {
  readonly app: GatewayApp
  readonly options: ResolvedOptions
  readonly serverLine: string
  readonly closing: boolean
  connectionClosed(conn: Connection): void
  /** The server's `ws` framer, made on first use. */
  webSocketServer(): WebSocketServer
}

const ERROR_HEAD: RequestHead = Object.freeze({
  method: 'GET',
  target: '',
  path: '',
  query: '',
  minor: 1,
  headers: [],
  host: '',
  contentLength: 0,
  keepAlive: false,
  expectContinue: false,
})

/** Output an exchange produced before its turn. */
interface Held {
  chunks: Array<string | Uint8Array>
  bytes: number
}

export class Connection implements ParserHandler, ExchangeOwner, WriterOwner, UpgradeHost {
  readonly socket: Socket
  private readonly host: ConnectionHost
  private readonly info: ConnectionInfo
  private readonly parser: RequestParser
  private readonly options: ResolvedOptions
  readonly serverLine: string
  readonly errors: { write(message: string): void }

  /** Exchanges whose responses are not fully sent, in request order. */
  private readonly queue: Exchange[] = []
  /** Output of pipelined exchanges held back until the ones ahead are sent; made on first use. */
  private held: Map<Exchange, Held> | null = null
  /** The exchange whose request body is being received. */
  private current: Exchange | null = null
  /** No request after the current one will be read. */
  private lastRequest = false
  /** The client sent its FIN. */
  private peerEnded = false

  /** The output side: write batching and drain tracking. */
  private readonly writer: SocketWriter
  private pauseMask = 0

  /** When the current request's first byte arrived (0: between requests). */
  private requestStart = 0
  /** When the connection became idle. */
  private idleSince: number
  /** We ended the socket: nothing more is read or written. */
  private ending = false
  /** When our end of the socket finished flushing; the socket is destroyed if the peer lingers after it. */
  private lingerSince = 0
  /** Bytes read and dropped since we ended the socket. */
  private lingerBytes = 0
  /** Since when the bytes we wrote have waited with no progress (0: none waiting, or progress). */
  private stallSince = 0
  /** Unsent bytes at the last check, to see progress. */
  private lastUnsent = 0
  private closed = false
  /** The WebSocket handshake this connection ends with, once one came. */
  private upgrade: PendingUpgrade | null = null
  /** The socket belongs to the WebSocket now: no more HTTP, reading is `ws`'s. */
  private handedOff = false

  constructor(socket: Socket, host: ConnectionHost, info: ConnectionInfo) {
    this.socket = socket
    this.host = host
    this.info = info
    this.options = host.options
    this.serverLine = host.serverLine
    this.errors = host.options.errors
    this.parser = new RequestParser(host.options, this)
    this.writer = new SocketWriter(socket, this)
    this.idleSince = Date.now()
    socket.on('data', (data: Buffer) => this.onData(data))
    socket.on('error', () => {
      // ECONNRESET and friends: 'close' follows and cleans up.
    })
    socket.on('close', () => this.onClose())
    socket.on('end', () => this.onEnd())
  }

  /** The server is shutting down: responses say `Connection: close`. */
  get closing(): boolean {
    return this.host.closing
  }

  // --- reading ----------------------------------------------------------------

  private onData(data: Buffer): void {
    if (this.ending) {
      this.lingerBytes += data.length
      if (this.lingerBytes > LINGER_MAX_BYTES) this.socket.destroy()
      return
    }
    if (this.requestStart === 0) this.requestStart = Date.now()
    // What the requests in this read produce goes out as one write, after it.
    const writer = this.writer
    writer.gathering = true
    this.parser.execute(data)
    writer.gathering = false
    if (this.requestStart !== 0 && !this.parser.midRequest) this.requestStart = 0
    writer.flush()
  }

  private onEnd(): void {
    this.peerEnded = true
    // A body that was still arriving can never complete now.
    if (this.current !== null) this.onError(new ParseError(400, 'the connection ended in the middle of a request body'))
    if (this.queue.length > 0 && !this.ending) {
      // The client's FIN came while its requests are unanswered: it has left (as node:http, nginx
      // and Go take it; TCP cannot tell a half-close from a close without writing). What is ready
      // goes out; the apps still working are abandoned, their bodies closed when they return.
      this.endSocket()
      return
    }
    this.endIfPeerDone()
  }

  /** After the client's FIN: end once every request it sent is answered. */
  private endIfPeerDone(): void {
    if (!this.peerEnded || this.queue.length > 0 || this.parser.hasLeftover) return
    if (this.parser.midRequest) {
      if (this.current !== null) this.onError(new ParseError(400, 'the connection ended in the middle of a request body'))
      else this.sendErrorAndClose(new ParseError(400, 'the connection ended in the middle of a request head'))
      return
    }
    this.endSocket()
  }

  onHead(head: RequestHead): void {
    if (this.requestStart === 0) this.requestStart = Date.now()
    const ex = new Exchange(this, head)
    if (!head.keepAlive) this.lastRequest = true
    this.queue.push(ex)
    if (head.contentLength !== 0) {
      ex.input = new RequestInput(ex, head.contentLength < 0 ? null : head.contentLength, this.options.maxBodySize)
      this.current = ex
    }
    let env: Environ
    try {
      env = buildEnviron(head.method, head.target, head.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0', head.headers, this.info, ex.input ?? EMPTY_INPUT)
    } catch (error) {
      // The path cannot be decoded: the client's fault, and the app never sees the request.
      if (this.current === ex) this.current = null
      this.parser.destroy()
      this.lastRequest = true
      ex.keepAlive = false
      ex.refuseFor(error)
      return
    }
    if (env.HTTP_UPGRADE !== undefined && this.options.webSocket !== false && this.offerUpgrade(ex, env, head)) return
    ex.run(this.host.app, env)
  }

  /**
   * A request with `Upgrade`: false when it asks for no WebSocket (`h2c`:
   * served normally). Otherwise an invalid handshake is answered here; a
   * valid one stops the parser after its head and runs the app with the
   * offer once the responses ahead of it are done.
   */
  private offerUpgrade(ex: Exchange, env: Environ, head: RequestHead): boolean {
    const handshake = checkWebSocketEnviron(env)
    if (handshake === null) return false
    this.lastRequest = true
    ex.keepAlive = false
    if (!handshake.valid || head.contentLength !== 0) {
      if (this.current === ex) this.current = null
      this.parser.destroy()
      if (handshake.valid) ex.refuseHandshake(400, 'a WebSocket handshake has no body', [])
      else ex.refuseHandshake(handshake.status, handshake.message, handshake.headers)
      return true
    }
    // What follows the head is frames (or nothing, if the app says no): stop parsing and reading here.
    this.parser.pause()
    this.pause(PAUSE_UPGRADE)
    const options = this.options.webSocket as Exclude<typeof this.options.webSocket, false>
    const upgrade = new PendingUpgrade(this, ex, handshake, options, () => this.host.webSocketServer())
    this.upgrade = upgrade
    if (this.queue[0] === ex) upgrade.run(this.host.app, env)
    else this.upgradeEnviron = env
    return true
  }

  /** The environ of a handshake waiting for the responses ahead of it. */
  private upgradeEnviron: Environ | null = null

  handOff(): Buffer | null {
    if (this.closed || this.ending) return null
    this.writer.flush()
    this.writer.close()
    this.handedOff = true
    const rest = this.parser.takeLeftover()
    this.queue.length = 0
    this.held = null
    this.current = null
    // From here the socket is ws's: our reading and end handling stop; 'close' still tells the server.
    this.socket.removeAllListeners('data')
    this.socket.removeAllListeners('end')
    return rest ?? Buffer.alloc(0)
  }

  onBody(chunk: Buffer): void {
    this.current?.input?.push(chunk)
  }

  onBodyEnd(trailers: string[]): void {
    const ex = this.current
    if (ex !== null) {
      this.current = null
      ex.input?.end(trailers)
    }
    this.requestStart = 0
    if (this.lastRequest) {
      if (this.upgrade === null) this.parser.destroy() // a handshake's parser keeps the bytes after its head
    } else if (this.queue.length >= this.options.maxPipelineDepth || this.writer.needDrain) {
      // Take no more requests while too many wait for their turn, or while the client is not
      // reading what we send: a pipelining client that never reads must not fill our memory.
      this.parser.pause()
      this.pause(PAUSE_PIPELINE)
    }
  }

  onError(error: ParseError): void {
    const ex = this.current
    this.lastRequest = true
    if (ex !== null) {
      // A fault inside a body: the app reading it gets the error; the connection ends after its response.
      this.current = null
      ex.keepAlive = false
      ex.input?.fail(new GatewayError(error.status, error.message))
      return
    }
    this.sendErrorAndClose(error)
  }

  /** Queues an error response after the pending ones; the connection ends after it. */
  private sendErrorAndClose(error: ParseError): void {
    this.parser.destroy()
    this.lastRequest = true
    const ex = new Exchange(this, ERROR_HEAD)
    this.queue.push(ex)
    ex.keepAlive = false
    ex.refuse(error.status, error.message)
  }

  // --- writing ----------------------------------------------------------------

  output(ex: Exchange, data: string | Uint8Array): void {
    if (this.ending || this.closed) return
    if (this.queue[0] !== ex) {
      this.held ??= new Map()
      let held = this.held.get(ex)
      if (held === undefined) this.held.set(ex, (held = { chunks: [], bytes: 0 }))
      held.chunks.push(data)
      held.bytes += typeof data === 'string' ? data.length : data.byteLength
      return
    }
    this.writer.write(data)
  }

  /** The client is not reading what we send: read no more from it until it does. */
  writeBlocked(): void {
    this.pause(PAUSE_WRITE)
  }

  /** The client caught up: read again, and take the pipelined requests held back meanwhile. */
  writeDrained(): void {
    this.resume(PAUSE_WRITE)
    this.resumePipeline()
  }

  /** Takes the next pipelined request again, if nothing holds it back. */
  private resumePipeline(): void {
    if ((this.pauseMask & PAUSE_PIPELINE) === 0 || this.lastRequest || this.writer.needDrain) return
    if (this.queue.length >= this.options.maxPipelineDepth) return
    this.resume(PAUSE_PIPELINE)
    this.parser.resume()
    if (!this.writer.gathering) this.writer.flush()
  }

  mustWait(ex: Exchange): boolean {
    return this.writer.needDrain || (this.queue[0] !== ex && (this.held?.get(ex)?.bytes ?? 0) > HIGH_WATER)
  }

  async waitWritable(ex: Exchange): Promise<void> {
    this.writer.flush()
    while (!ex.gone && !this.closed && this.mustWait(ex)) await this.writer.nextWake()
  }

  /** An exchange is done: send what follows it in order, and end or idle the connection. */
  finish(ex: Exchange): void {
    if (this.handedOff || (this.upgrade?.accepted === true && this.upgrade.ex === ex)) return // a WebSocket now
    if (this.queue[0] !== ex) return // sent when its turn comes
    while (this.queue.length > 0) {
      const head = this.queue[0]!
      const held = this.held?.get(head)
      if (held !== undefined) {
        this.held!.delete(head)
        for (const data of held.chunks) this.writer.write(data)
      }
      if (!head.done) {
        if (this.upgradeEnviron !== null && this.upgrade?.ex === head) {
          // The handshake's turn: its app runs now, so a 101 follows the responses before it.
          const env = this.upgradeEnviron
          this.upgradeEnviron = null
          this.upgrade.run(this.host.app, env)
          if (head.done || this.handedOff) return
          continue
        }
        break
      }
      this.queue.shift()
      if (head.broken || !head.keepAlive) {
        this.endSocket()
        return
      }
    }
    this.writer.wake()
    if (this.queue.length === 0) {
      if (this.lastRequest || this.host.closing) {
        if (!this.parser.midRequest || this.parser.dead) {
          this.endSocket()
          return
        }
      }
      this.idleSince = Date.now()
    }
    this.resumePipeline()
    if (this.queue.length === 0) this.endIfPeerDone()
  }

  pauseForInput(): void {
    this.pause(PAUSE_INPUT)
  }

  resumeForInput(): void {
    this.resume(PAUSE_INPUT)
  }

  private pause(reason: number): void {
    if (this.handedOff) return
    if (this.pauseMask === 0) this.socket.pause()
    this.pauseMask |= reason
  }

  private resume(reason: number): void {
    if (this.handedOff || (this.pauseMask & reason) === 0) return
    this.pauseMask &= ~reason
    if (this.pauseMask === 0 && !this.ending) this.socket.resume()
  }

  // --- ending -------------------------------------------------------------------

  /** Ends the connection after what was written; later requests are not read. */
  private endSocket(): void {
    if (this.ending || this.closed || this.handedOff) return
    this.writer.flush()
    this.ending = true
    this.parser.destroy()
    this.held = null // output waiting its turn will never be sent
    for (const ex of this.queue) ex.abandon()
    this.socket.once('finish', () => {
      this.lingerSince = Date.now()
    })
    this.socket.end()
    // Keep reading (and dropping) so the client's last bytes do not turn our FIN into a reset.
    this.pauseMask = 0
    this.socket.resume()
  }

  /**
   * Whether work is in flight: a request being received or answered, or a
   * response still being sent; or a WebSocket still open (at the drain
   * deadline, one that did not finish its closing handshake is cut).
   */
  get busy(): boolean {
    if (this.handedOff) return !this.closed
    return !this.ending && (this.queue.length > 0 || this.parser.midRequest || this.socket.writableLength > 0)
  }

  private onClose(): void {
    if (this.closed) return
    this.closed = true
    this.writer.close()
    this.parser.destroy()
    this.held = null
    for (const ex of this.queue) ex.abandon()
    const current = this.current
    if (current !== null && current.input !== null) current.input.fail(new GatewayError(400, 'the client closed the connection before sending the whole body'))
    this.writer.wake()
    this.upgrade?.connectionClosed()
    this.host.connectionClosed(this)
  }

  /** Enforces the timeouts; called by the server's sweep timer. */
  tick(now: number): void {
    if (this.closed) return
    const options = this.options
    if (this.upgrade !== null) {
      this.upgrade.tick(now)
      if (this.handedOff) return
    }
    const unsent = this.writer.unsentBytes()
    if (unsent > 0) {
      // Bytes wait for the client: it must read some of them within sendTimeout (nginx's send_timeout).
      const drained = this.writer.takeDrained()
      if (this.stallSince === 0 || drained || unsent < this.lastUnsent) this.stallSince = now
      else if (now - this.stallSince > options.sendTimeout) {
        this.socket.destroy()
        return
      }
      this.lastUnsent = unsent
      this.idleSince = now
    } else {
      this.stallSince = 0
      this.lastUnsent = 0
    }
    if (this.ending) {
      if (this.lingerSince !== 0 && now - this.lingerSince > options.keepAliveTimeout) this.socket.destroy()
      return
    }
    if (this.requestStart !== 0 && this.parser.midRequest) {
      const inHead = this.current === null
      if (inHead && now - this.requestStart > options.headersTimeout) {
        this.timeout('the request head was not received in time')
      } else if (now - this.requestStart > options.requestTimeout) {
        this.timeout('the request was not received in time')
      }
      return
    }
    if (this.queue.length === 0 && unsent === 0) {
      // Idle: nothing asked, nothing owed. (While responses wait for a slow reader the
      // connection is not idle: the send timeout governs it, and no request is lost.)
      const idleLimit = this.host.closing ? SHUTDOWN_IDLE_GRACE : options.keepAliveTimeout
      if (now - this.idleSince > idleLimit) this.endSocket()
    }
  }

  private timeout(message: string): void {
    const ex = this.current
    this.parser.destroy()
    this.lastRequest = true
    if (ex !== null && ex.input !== null) {
      this.current = null
      ex.keepAlive = false
      ex.input.fail(new GatewayError(408, message))
      if (ex.committed) this.endSocket()
      return
    }
    if (this.queue.length === 0) {
      this.writer.write(simpleResponse(408, message, this.serverLine, 'Connection: close\r\n'))
      this.endSocket()
    } else {
      this.sendErrorAndClose(new ParseError(408, message))
    }
  }
}
