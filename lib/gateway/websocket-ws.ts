/**
 * A {@link WebSocketTransport} over a `ws` WebSocket (server side, after
 * its handshake): postern's server and the node:http adapter both frame
 * with `ws`, so both use this one bridge. It also keeps the connection's
 * liveness rules, which `ws` leaves to its user [ws-limits]:
 *
 * - idle: after `idleTimeout` ms with nothing from the client (no message,
 *   ping or pong) it sends a ping; another `idleTimeout` without an answer
 *   and the connection is cut (the app sees 1006). While reading is paused
 *   (the app is behind) no answer could be heard, so silence is not held
 *   against the client; a ping still goes out every `idleTimeout`, so a
 *   client that vanished meanwhile is found (writing to it fails) and its
 *   socket freed;
 * - stalled sends: bytes waiting for a client that reads none of them for
 *   `sendTimeout` ms cut the connection, so an app awaiting `send()` is
 *   released (its send rejects) instead of waiting forever.
 *
 * The owner calls {@link WsTransport.tick} every so often (postern's server
 * from its sweep timer), rather than each socket holding timers.
 *
 * {@link wsServerSetup} holds the settings both give `ws`'s `WebSocketServer`.
 *
 * Only `ws`'s types are imported: the core imports no npm package at run
 * time. This is the one core file that uses Node's `Buffer` at run time
 * (ws hands over Buffers, see toMessage), and only when a `ws` WebSocket is
 * bridged, i.e. on Node: the rest of the core stays runtime-neutral, and
 * Bun's and Deno's adapters never reach this code (importing the file, as
 * the core's index does, touches no Buffer).
 */
import type { RawData, ServerOptions, WebSocket } from 'ws'
import type { Headers } from './spec.js'
import type { WebSocketMessage } from './websocket.js'
import type { WebSocketLimits } from './websocket-limits.js'

/** What the app chose at `accept()`, as the 101 needs it (the core's AcceptChoice is one). */
export interface WsChoice {
  /** The subprotocol, or '' for none. */
  readonly protocol: string
  /** The app's extra headers for the 101. */
  readonly headers: Headers
  /** Whether those hold a `Server` field, which then replaces the server's own. */
  readonly hasServer?: boolean
}

/** A `WebSocketServer`'s options, and the listener for its `'headers'` event. */
export interface WsServerSetup {
  /** For `new WebSocketServer(options)`. `closeTimeout` is ws 8.18's; @types/ws does not list it yet. */
  readonly options: ServerOptions & { closeTimeout: number }
  /** For `wss.on('headers', headers)`: adds the 101's lines beyond ws's own. */
  readonly headers: (lines: string[], request: object) => void
}

/**
 * The one way a server sets up `ws` to frame upgrades it has checked itself:
 * no server or client tracking of its own (`noServer`; the caller tracks its
 * sockets), no compression (its memory cost per socket and its attacks are
 * not worth it by default), the core's message limit (1009 past it) and
 * close timeout, and the 101 carrying what the app chose at `accept()`:
 * `choiceOf(request)` gives it for the request handed to `handleUpgrade`.
 * `serverLine` (`Server: name`, or '') is written unless the app set its own.
 */
export function wsServerSetup(
  limits: Pick<WebSocketLimits, 'maxMessageSize' | 'closeTimeout'>,
  choiceOf: (request: object) => WsChoice | undefined,
  serverLine = '',
): WsServerSetup {
  return {
    options: {
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: limits.maxMessageSize,
      closeTimeout: limits.closeTimeout,
      handleProtocols: (_offered: Set<string>, request: object) => choiceOf(request)?.protocol || false,
    },
    headers: (lines, request) => {
      const choice = choiceOf(request)
      if (serverLine !== '' && choice?.hasServer !== true) lines.push(serverLine)
      for (const [name, value] of choice?.headers ?? []) lines.push(`${name}: ${value}`)
    },
  }
}
import type { TransportWebSocket, WebSocketTransport } from './websocket-transport.js'

/** What the transport watches on the stream under the WebSocket: its drain events and what it still holds. */
export interface DrainingStream {
  on(event: 'drain', listener: () => void): unknown
  readonly writableLength: number
}

/** The liveness bounds, in milliseconds. */
export interface WsLiveness {
  /** Silence after which the client is pinged, and then cut. */
  idleTimeout: number
  /** How long unsent bytes may wait with no progress. */
  sendTimeout: number
}

export class WsTransport implements WebSocketTransport {
  private readonly ws: WebSocket
  private lastHeard: number
  private pingSent = 0
  private stallSince = 0
  private lastBuffered = 0
  private drainedSinceTick = false

  /**
   * Bridges `ws` to `socket` and attaches itself to it. `stream` is the
   * connection under `ws` (the one given to `handleUpgrade`).
   */
  constructor(ws: WebSocket, socket: TransportWebSocket, stream: DrainingStream, now = Date.now()) {
    this.ws = ws
    this.lastHeard = now
    ws.binaryType = 'nodebuffer'
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.heard()
      socket.receive(toMessage(data, isBinary))
    })
    ws.on('ping', () => this.heard())
    ws.on('pong', () => this.heard())
    ws.on('error', () => {
      // 1009, 1007 and protocol errors: ws closes with the right code, and 'close' follows.
    })
    ws.on('close', (code: number, reason: Buffer) => socket.ended(code, reason.toString()))
    stream.on('drain', () => {
      this.drainedSinceTick = true
      socket.drained()
    })
    socket.attach(this)
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount
  }

  send(data: WebSocketMessage): void {
    this.ws.send(data, { binary: typeof data !== 'string' })
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason)
  }

  pause(): void {
    this.ws.pause()
  }

  resume(): void {
    this.ws.resume()
  }

  /** Cuts the connection at once (no closing handshake): the app sees 1006. */
  terminate(): void {
    this.ws.terminate()
  }

  /** Applies the liveness rules at `now`; call it at least every `idleTimeout / 2` ms or so. */
  tick(now: number, bounds: WsLiveness): void {
    if (this.ws.readyState === 3 /* CLOSED */) return
    const buffered = this.ws.bufferedAmount
    if (buffered > 0) {
      if (this.stallSince === 0 || this.drainedSinceTick || buffered < this.lastBuffered) this.stallSince = now
      else if (now - this.stallSince > bounds.sendTimeout) {
        this.terminate()
        return
      }
    } else this.stallSince = 0
    this.lastBuffered = buffered
    this.drainedSinceTick = false
    if (this.ws.isPaused) {
      // We are not reading, so nothing can be heard: probe only, to learn of a client that vanished.
      if (now - this.lastHeard > bounds.idleTimeout) {
        this.lastHeard = now
        this.ws.ping()
      }
      this.pingSent = 0
      return
    }
    if (this.pingSent !== 0) {
      if (now - this.pingSent > bounds.idleTimeout) this.terminate()
    } else if (now - this.lastHeard > bounds.idleTimeout && this.ws.readyState === 1 /* OPEN */) {
      this.pingSent = now
      this.ws.ping()
    }
  }

  private heard(): void {
    this.lastHeard = Date.now()
    this.pingSent = 0
  }
}

/**
 * A `ws` message as the gateway gives it: text as a string, binary as a
 * plain `Uint8Array` [ws-messages] (a view over the Buffer's memory, not a
 * copy: a `Buffer`'s `slice()` is a view where a `Uint8Array`'s is a copy,
 * and an app must see the same type on every server). A small message that
 * is a view into a larger read is copied first, so a queued message holds
 * its own bytes, not a whole read.
 */
function toMessage(data: RawData, isBinary: boolean): WebSocketMessage {
  const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
  if (!isBinary) return bytes.toString('utf8')
  const own = bytes.byteLength * 2 < bytes.buffer.byteLength ? Buffer.from(bytes) : bytes
  return new Uint8Array(own.buffer, own.byteOffset, own.byteLength)
}
