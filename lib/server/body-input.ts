/**
 * `gateway.input`: the request body as the app reads it. Bytes arrive from
 * the parser and wait here until the app pulls them; while more than
 * {@link HIGH_WATER} bytes wait unread, the connection stops reading from the
 * socket, so a slow reader slows the client instead of filling memory.
 */
import type { GatewayInput } from '../gateway/spec.js'
import type { GatewayError } from '../gateway/spec.js'
import { BodyCollector, bodyTooLarge, readAgain } from '../gateway/body-collector.js'
import { DONE } from '../gateway/empty-input.js'

/** Unread bytes above which the socket is paused. */
export const HIGH_WATER = 64 * 1024

/** What the input asks of its connection. */
export interface InputOwner {
  /** The app read for the first time (time to send `100 Continue`). */
  inputFirstRead(): void
  /** Too many unread bytes: stop reading the socket. */
  inputFull(): void
  /** The app caught up: read the socket again. */
  inputDrained(): void
}

type Pending = { resolve(result: IteratorResult<Uint8Array>): void; reject(error: unknown): void }

/** Chunks smaller than this are copied together, so many tiny chunks cost their bytes, not an object each. */
const SMALL_CHUNK = 4 * 1024
/** Size of the buffers small chunks are copied into. */
const COALESCE_SIZE = 16 * 1024
/** A `bytes()` call in progress: the body is copied straight into one growing buffer. */
interface Collector {
  body: BodyCollector
  resolve(bytes: Uint8Array): void
  reject(error: unknown): void
}

/**
 * The body of one request on a postern connection.
 *
 * Memory is bounded per byte of body however the client chunks it: unread
 * small chunks are copied into shared buffers rather than kept as one view
 * each, and `bytes()` copies the body into a single buffer as it arrives.
 */
export class RequestInput implements GatewayInput, AsyncIterator<Uint8Array> {
  readonly length: number | null
  trailers: ReadonlyArray<readonly [string, string]> = []
  private readonly owner: InputOwner
  private readonly limit: number
  private chunks: Buffer[] = []
  private buffered = 0
  /** Where small chunks are copied; the last queued chunk is a view of it while `open`. */
  private tail: Buffer | null = null
  private tailStart = 0
  private tailEnd = 0
  private open = false
  private collector: Collector | null = null
  private ended = false
  private failure: GatewayError | null = null
  private pending: Pending | null = null
  private touched = false
  private full = false
  /** After the response ended, later bytes are dropped instead of kept. */
  private discarding = false

  constructor(owner: InputOwner, length: number | null, limit: number) {
    this.owner = owner
    this.length = length
    this.limit = limit
  }

  /** Whether all of the body was received. */
  get complete(): boolean {
    return this.ended
  }

  /** Whether the app has started reading (for `Expect: 100-continue`). */
  get read(): boolean {
    return this.touched
  }

  // --- the connection's side -------------------------------------------

  push(chunk: Buffer): void {
    if (this.discarding || chunk.length === 0) return
    if (this.collector !== null) {
      this.collect(this.collector, chunk)
      return
    }
    const pending = this.pending
    if (pending !== null) {
      this.pending = null
      pending.resolve({ done: false, value: chunk })
      return
    }
    this.enqueue(chunk)
    this.buffered += chunk.length
    if (!this.full && this.buffered > HIGH_WATER) {
      this.full = true
      this.owner.inputFull()
    }
  }

  end(trailers: string[]): void {
    this.ended = true
    if (trailers.length > 0) {
      const pairs: Array<readonly [string, string]> = []
      for (let i = 0; i < trailers.length; i += 2) pairs.push([trailers[i]!, trailers[i + 1]!])
      this.trailers = pairs
    }
    const collector = this.collector
    if (collector !== null) {
      this.collector = null
      collector.resolve(collector.body.bytes())
      return
    }
    const pending = this.pending
    if (pending !== null) {
      this.pending = null
      pending.resolve(DONE)
    }
  }

  fail(error: GatewayError): void {
    if (this.ended || this.failure !== null) return
    this.failure = error
    const collector = this.collector
    if (collector !== null) {
      this.collector = null
      collector.reject(error)
      return
    }
    const pending = this.pending
    if (pending !== null) {
      this.pending = null
      pending.reject(error)
    }
  }

  /** The response is done: drop what is buffered and whatever still comes. */
  discard(): void {
    this.discarding = true
    this.chunks = []
    this.buffered = 0
    this.tail = null
    this.open = false
    this.releaseIfFull()
  }

  /** Queues an unread chunk, copying a small one next to the small ones before it. */
  private enqueue(chunk: Buffer): void {
    const n = chunk.length
    if (n >= SMALL_CHUNK) {
      this.chunks.push(chunk)
      this.open = false
      return
    }
    let tail = this.tail
    if (tail !== null && this.open && tail.length - this.tailEnd >= n) {
      chunk.copy(tail, this.tailEnd)
      this.tailEnd += n
      this.chunks[this.chunks.length - 1] = tail.subarray(this.tailStart, this.tailEnd)
      return
    }
    if (tail === null && this.chunks.length === 0) {
      // A first small chunk with nothing queued, most often the whole body (a JSON POST): a copy
      // of its own size, from Node's shared pool. A 16 KiB buffer for it cost a new ArrayBuffer
      // per request, and the garbage collector most of a POST's time. Later ones coalesce.
      this.chunks.push(Buffer.from(chunk))
      return
    }
    if (tail === null || tail.length - this.tailEnd < n) {
      tail = this.tail = Buffer.allocUnsafe(COALESCE_SIZE)
      this.tailEnd = 0
    }
    this.tailStart = this.tailEnd
    chunk.copy(tail, this.tailEnd)
    this.tailEnd += n
    this.chunks.push(tail.subarray(this.tailStart, this.tailEnd))
    this.open = true
  }

  // --- the app's side ---------------------------------------------------

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    this.firstRead()
    if (this.chunks.length > 0) {
      const chunk = this.chunks.shift()!
      if (this.chunks.length === 0) this.open = false
      this.buffered -= chunk.length
      this.releaseIfFull()
      return Promise.resolve({ done: false, value: chunk })
    }
    if (this.failure !== null) return Promise.reject(this.failure)
    if (this.ended) return Promise.resolve(DONE)
    if (this.pending !== null || this.collector !== null) return Promise.reject(readAgain())
    this.releaseIfFull()
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject }
    })
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    this.discard()
    return Promise.resolve(DONE)
  }

  bytes(limit: number = this.limit): Promise<Uint8Array> {
    if (this.length !== null && this.length > limit) return Promise.reject(bodyTooLarge(limit))
    if (this.pending !== null || this.collector !== null) return Promise.reject(readAgain())
    this.firstRead()
    return new Promise<Uint8Array>((resolve, reject) => {
      const collector: Collector = { body: new BodyCollector(limit, this.length, this.buffered), resolve, reject }
      this.collector = collector
      const queued = this.chunks
      this.chunks = []
      this.tail = null
      this.open = false
      this.buffered = 0
      for (const chunk of queued) if (this.collector === collector) this.collect(collector, chunk)
      this.releaseIfFull()
      if (this.collector !== collector) return
      if (this.failure !== null) {
        this.collector = null
        reject(this.failure)
      } else if (this.ended) {
        this.collector = null
        resolve(collector.body.bytes())
      }
    })
  }

  async text(limit?: number): Promise<string> {
    const bytes = await this.bytes(limit)
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
  }

  /** Copies a chunk into a running `bytes()`; over its limit, the read fails with 413 and the rest is dropped. */
  private collect(collector: Collector, chunk: Buffer): void {
    if (collector.body.add(chunk)) return
    this.collector = null
    this.discard()
    collector.reject(bodyTooLarge(collector.body.limit))
  }

  private firstRead(): void {
    if (!this.touched) {
      this.touched = true
      this.owner.inputFirstRead()
    }
  }

  private releaseIfFull(): void {
    if (this.full && this.buffered <= HIGH_WATER) {
      this.full = false
      this.owner.inputDrained()
    }
  }
}
