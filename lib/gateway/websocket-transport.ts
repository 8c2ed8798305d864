/**
 * A {@link GatewayWebSocket} over a small {@link WebSocketTransport}: the
 * socket an app gets is this class on every server, so messages, bounds,
 * backpressure and closing behave the same everywhere [ws-messages]
 * [ws-limits]. A server implements only the transport (a few lines over
 * `ws`'s WebSocket, Bun's ServerWebSocket or Deno's WebSocket) and reports
 * what happens on it through {@link TransportWebSocket.receive},
 * {@link TransportWebSocket.drained} and {@link TransportWebSocket.ended}.
 *
 * - Incoming messages wait in a queue for the async iterator (one reader).
 *   The queue is bounded in bytes, each message counted as its length
 *   plus {@link WEBSOCKET_MESSAGE_OVERHEAD}: over `readHighWater` the
 *   transport is paused, and resumed once the app has read it down to half; over
 *   `readLimit` (a transport that cannot pause, or one that kept
 *   delivering) the socket closes with 1008.
 * - `send()` hands the message to the transport at once and resolves when
 *   its buffered amount is at most `sendHighWater` (at once, usually);
 *   otherwise at the transport's next `drained()` (or, for a transport
 *   without drain events, when polling sees it low). It rejects once the
 *   socket is closing or closed. Its rejections are marked handled, so an
 *   app that fires sends without awaiting them does not crash the process
 *   when the client leaves; awaiting still throws, a
 *   {@link WebSocketClosedError}, which is not reported as an app error.
 * - The iterator ends once the socket is closed and every message received
 *   before has been read.
 * - Leaving the loop early (`break`, `return`, or an error thrown in its
 *   body: the iterator's `return()`) closes the socket with 1000, as
 *   leaving a loop over a stream cancels it: nobody reads any more, and
 *   messages would otherwise pile up to the bound. The close waits one
 *   macrotask, so an app that leaves the loop by throwing, and so fails,
 *   closes with 1011 instead (first close wins), and a `send()` made right
 *   after the loop still goes out. To read a few messages and keep the
 *   socket, call `next()` on `socket[Symbol.asyncIterator]()` directly.
 * - `close()` is idempotent and takes the app's codes only (1000, 1001,
 *   1003, 1007, 1008, 1009, 1011, 3000–4999) [ws-app]; servers close with
 *   any code through {@link TransportWebSocket.closeFromServer}.
 */
import type { GatewayWebSocket, WebSocketClose, WebSocketMessage } from './websocket.js'
import { chunkLength, describeValue } from './rules.js'
import { checkCloseCode } from './websocket-rules.js'
import { DEFAULT_WEBSOCKET_READ_HIGH_WATER, DEFAULT_WEBSOCKET_READ_LIMIT, DEFAULT_WEBSOCKET_SEND_HIGH_WATER } from './limits.js'

/** What a server gives a {@link TransportWebSocket}: one open WebSocket connection, framing done. */
export interface WebSocketTransport {
  /** Sends one message (text for a string, binary for bytes). Called only while open. */
  send(data: WebSocketMessage): void
  /** Bytes handed to `send()` and not yet written to the operating system. */
  readonly bufferedAmount: number
  /** Starts the closing handshake; called once, with a code and reason already checked. */
  close(code: number, reason: string): void
  /** Stops reading from the client. Absent when the transport cannot (then only `readLimit` bounds the queue). */
  pause?(): void
  /** Reads from the client again after `pause()`. */
  resume?(): void
}

/** The bounds of one socket, in bytes (lib/gateway/limits.ts has the defaults). */
export interface WebSocketQueueOptions {
  /** Unread bytes (each message's length plus {@link WEBSOCKET_MESSAGE_OVERHEAD}) above which the transport is paused. */
  readHighWater?: number
  /** Unread bytes (counted as for `readHighWater`) above which the socket closes with 1008. */
  readLimit?: number
  /** `send()` resolves once the transport's buffered amount is at most this. */
  sendHighWater?: number
  /** Whether the transport calls `drained()` when its buffer empties; if not, a waiting `send()` polls. */
  drainEvents?: boolean
}

/**
 * What one unread message costs beyond its bytes, counted against
 * `readHighWater` and `readLimit`: a queued message is an object (a
 * `Uint8Array` with its `ArrayBuffer`, or a string) plus a slot in the
 * queue, about 100 bytes of heap whatever its length. Counted as 0, empty
 * or tiny messages never reach either bound, so a client sending them to
 * an app that does not read grows the server's heap without end (6-byte
 * empty frames: 23 MiB on the wire made 400 MB of heap).
 */
export const WEBSOCKET_MESSAGE_OVERHEAD = 128

/** The bytes an unread message counts for in the queue's bounds. */
const queuedCost = (message: WebSocketMessage): number => chunkLength(message) + WEBSOCKET_MESSAGE_OVERHEAD

const OPEN = 0
const CLOSING = 1
const CLOSED = 2

/** How often a waiting `send()` looks at a transport without drain events, in milliseconds. */
const POLL_INTERVAL = 10

const RESOLVED: Promise<void> = Promise.resolve()
const ignore = (): void => {}

/** A rejected promise already marked as handled: awaiting it throws, dropping it does not crash the process. */
function handledRejection(error: Error): Promise<never> {
  const promise = Promise.reject(error)
  promise.catch(ignore)
  return promise
}

/**
 * What `send()` rejects with when the socket is closing or closed: the
 * client left or the server closed it (1001 at shutdown, 1008, 1009...),
 * which is no fault of the app. The runner does not report an app that
 * fails with it as an app error; an app may test for it to tell a peer
 * that left from a real failure.
 */
export class WebSocketClosedError extends Error {
  override name = 'WebSocketClosedError'
}

interface Waiter {
  resolve(): void
  reject(error: Error): void
}

export class TransportWebSocket implements GatewayWebSocket {
  readonly protocol: string
  readonly closed: Promise<WebSocketClose>
  private transport: WebSocketTransport | null = null
  private state = OPEN
  private readonly readHighWater: number
  private readonly readLimit: number
  private readonly sendHighWater: number
  private readonly drainEvents: boolean

  /** Messages received and not read yet, from `head` on. */
  private queue: WebSocketMessage[] = []
  private head = 0
  private queuedBytes = 0
  private paused = false
  /** Pending `next()` calls (the queue is empty while there are any). */
  private readers: Array<(result: IteratorResult<WebSocketMessage>) => void> = []

  /** Sends made before a transport was attached, and their bytes. */
  private early: WebSocketMessage[] = []
  private earlyBytes = 0
  /** A close asked for before a transport was attached. */
  private earlyClose: [number, string] | null = null
  /** `send()` calls waiting for the buffer to drain. */
  private waiters: Waiter[] = []
  private poll: ReturnType<typeof setTimeout> | null = null
  private settle: (close: WebSocketClose) => void = ignore

  /**
   * @param protocol the subprotocol chosen at `accept()`, `''` for none
   * @param transport the connection, or null when it comes later ({@link attach}):
   *   a server whose 101 is sent after `accept()` returns (Bun) buffers sends until then
   */
  constructor(protocol: string, transport: WebSocketTransport | null, options: WebSocketQueueOptions = {}) {
    this.protocol = protocol
    this.readHighWater = options.readHighWater ?? DEFAULT_WEBSOCKET_READ_HIGH_WATER
    this.readLimit = options.readLimit ?? DEFAULT_WEBSOCKET_READ_LIMIT
    this.sendHighWater = options.sendHighWater ?? DEFAULT_WEBSOCKET_SEND_HIGH_WATER
    this.drainEvents = options.drainEvents ?? true
    this.closed = new Promise<WebSocketClose>((resolve) => (this.settle = resolve))
    if (transport !== null) this.attach(transport)
  }

  // --- the server's side --------------------------------------------------------

  /** Connects the transport, once: sends and a close asked for before it are passed on now. */
  attach(transport: WebSocketTransport): void {
    if (this.transport !== null) throw new Error('postern: a WebSocket transport is attached once')
    if (this.state === CLOSED) {
      transport.close(1000, '')
      return
    }
    this.transport = transport
    const early = this.early
    this.early = []
    this.earlyBytes = 0
    for (const message of early) transport.send(message)
    if (this.earlyClose !== null) transport.close(this.earlyClose[0], this.earlyClose[1])
    else if (this.paused) transport.pause?.()
    this.drained()
  }

  /** A complete message from the client [ws-messages]. */
  receive(message: WebSocketMessage): void {
    if (this.state === CLOSED) return
    const reader = this.readers.shift()
    if (reader !== undefined) {
      reader({ value: message, done: false })
      return
    }
    this.queue.push(message)
    this.queuedBytes += queuedCost(message)
    if (this.queuedBytes > this.readLimit) {
      this.closeFromServer(1008, 'too many unread messages')
    } else if (this.queuedBytes > this.readHighWater && !this.paused) {
      this.paused = true
      this.transport?.pause?.()
    }
  }

  /** The transport's buffer drained: wake the sends waiting for it. */
  drained(): void {
    if (this.waiters.length === 0 || this.bufferedAmount > this.sendHighWater) return
    const waiters = this.waiters
    this.waiters = []
    for (const waiter of waiters) waiter.resolve()
  }

  /** The connection is closed, cleanly or not (1006 when it dropped): settles `closed`, ends the iterator. */
  ended(code: number, reason: string): void {
    if (this.state === CLOSED) return
    this.state = CLOSED
    this.stopPolling()
    const error = new WebSocketClosedError(`WebSocket closed (${code}) before the message was sent`)
    const waiters = this.waiters
    this.waiters = []
    for (const waiter of waiters) waiter.reject(error)
    const readers = this.readers
    this.readers = []
    for (const reader of readers) reader({ value: undefined, done: true })
    this.settle({ code, reason })
  }

  /** Closes with a server's code (1001 going away, 1008 policy, 1011 app error), bypassing the app's code rule. Idempotent. */
  closeFromServer(code: number, reason: string): void {
    if (this.state !== OPEN) return
    this.state = CLOSING
    this.rejectWaiters()
    if (this.transport !== null) this.transport.close(code, reason)
    else this.earlyClose = [code, reason]
  }

  /** Whether the app or the server has started closing, or the socket is closed. */
  get closing(): boolean {
    return this.state !== OPEN
  }

  // --- the app's side -------------------------------------------------------------

  get bufferedAmount(): number {
    return this.transport === null ? this.earlyBytes : this.transport.bufferedAmount
  }

  send(data: WebSocketMessage): Promise<void> {
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      return handledRejection(new TypeError(`send() takes a string or a Uint8Array, got ${describeValue(data)}`))
    }
    if (this.state !== OPEN) return handledRejection(new WebSocketClosedError('WebSocket is closed'))
    const transport = this.transport
    if (transport === null) {
      this.early.push(data)
      this.earlyBytes += chunkLength(data)
    } else {
      transport.send(data)
    }
    if (this.bufferedAmount <= this.sendHighWater) return RESOLVED
    const promise = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }))
    promise.catch(ignore)
    if (!this.drainEvents && transport !== null) this.startPolling()
    return promise
  }

  close(code = 1000, reason = ''): void {
    checkCloseCode(code, reason)
    this.closeFromServer(code, reason)
  }

  [Symbol.asyncIterator](): AsyncIterator<WebSocketMessage> {
    let done = false
    const finished: IteratorResult<WebSocketMessage> = { value: undefined, done: true }
    return {
      next: () => {
        if (done) return Promise.resolve(finished)
        return this.next()
      },
      return: () => {
        if (!done) {
          done = true
          // One macrotask later: an app failing out of its loop closes with 1011 first.
          setTimeout(() => this.closeFromServer(1000, ''), 0)
        }
        return Promise.resolve(finished)
      },
    }
  }

  // --- inside -----------------------------------------------------------------------

  private next(): Promise<IteratorResult<WebSocketMessage>> {
    if (this.head < this.queue.length) {
      const value = this.queue[this.head]!
      this.queue[this.head++] = '' // let the message go
      if (this.head === this.queue.length) {
        this.queue = []
        this.head = 0
      } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head)
        this.head = 0
      }
      this.queuedBytes -= queuedCost(value)
      if (this.paused && this.queuedBytes <= this.readHighWater / 2) {
        this.paused = false
        if (this.state !== CLOSED) this.transport?.resume?.()
      }
      return Promise.resolve({ value, done: false })
    }
    if (this.state === CLOSED) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve) => this.readers.push(resolve))
  }

  /** The app or server closes: a send still waiting will never be drained for. */
  private rejectWaiters(): void {
    if (this.waiters.length === 0) return
    const error = new WebSocketClosedError('WebSocket closed before the message was sent')
    const waiters = this.waiters
    this.waiters = []
    this.stopPolling()
    for (const waiter of waiters) waiter.reject(error)
  }

  private startPolling(): void {
    if (this.poll !== null) return
    const tick = () => {
      this.poll = null
      this.drained()
      if (this.waiters.length > 0 && this.state === OPEN) this.poll = setTimeout(tick, POLL_INTERVAL)
    }
    this.poll = setTimeout(tick, POLL_INTERVAL)
  }

  private stopPolling(): void {
    if (this.poll !== null) clearTimeout(this.poll)
    this.poll = null
  }
}
