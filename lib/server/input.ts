/**
 * `gateway.input`: the request body as the app reads it. Bytes arrive from
 * the parser and wait here until the app pulls them; while more than
 * {@link HIGH_WATER} bytes wait unread, the connection stops reading from the
 * socket, so a slow reader slows the client instead of filling memory.
 */
import type { GatewayInput } from '../gateway.js'
import { GatewayError } from '../gateway.js'

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

const DONE: IteratorResult<Uint8Array> = Object.freeze({ done: true, value: undefined })

/** The body of one request on a postern connection. */
export class RequestInput implements GatewayInput, AsyncIterator<Uint8Array> {
  readonly length: number | null
  trailers: ReadonlyArray<readonly [string, string]> = []
  private readonly owner: InputOwner
  private readonly limit: number
  private chunks: Buffer[] = []
  private buffered = 0
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
    const pending = this.pending
    if (pending !== null) {
      this.pending = null
      pending.resolve({ done: false, value: chunk })
      return
    }
    this.chunks.push(chunk)
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
    const pending = this.pending
    if (pending !== null) {
      this.pending = null
      pending.resolve(DONE)
    }
  }

  fail(error: GatewayError): void {
    if (this.ended || this.failure !== null) return
    this.failure = error
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
    this.releaseIfFull()
  }

  // --- the app's side ---------------------------------------------------

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    if (!this.touched) {
      this.touched = true
      this.owner.inputFirstRead()
    }
    if (this.chunks.length > 0) {
      const chunk = this.chunks.shift()!
      this.buffered -= chunk.length
      this.releaseIfFull()
      return Promise.resolve({ done: false, value: chunk })
    }
    if (this.failure !== null) return Promise.reject(this.failure)
    if (this.ended) return Promise.resolve(DONE)
    if (this.pending !== null) return Promise.reject(new TypeError('gateway.input: next() called again before the previous read finished'))
    this.releaseIfFull()
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject }
    })
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    this.discard()
    return Promise.resolve(DONE)
  }

  async bytes(limit: number = this.limit): Promise<Uint8Array> {
    if (this.length !== null && this.length > limit) throw tooLarge(limit)
    const parts: Uint8Array[] = []
    let total = 0
    for (let r = await this.next(); r.done !== true; r = await this.next()) {
      total += r.value.length
      if (total > limit) {
        this.discard()
        throw tooLarge(limit)
      }
      parts.push(r.value)
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total)
  }

  async text(limit?: number): Promise<string> {
    const bytes = await this.bytes(limit)
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
  }

  private releaseIfFull(): void {
    if (this.full && this.buffered <= HIGH_WATER) {
      this.full = false
      this.owner.inputDrained()
    }
  }
}

function tooLarge(limit: number): GatewayError {
  return new GatewayError(413, `request body larger than ${limit} bytes`)
}

/** The input of a request without a body: shared, since there is nothing to read. */
export const EMPTY_INPUT: GatewayInput = Object.freeze({
  length: 0,
  trailers: Object.freeze([]) as ReadonlyArray<readonly [string, string]>,
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return { next: () => Promise.resolve(DONE) }
  },
  bytes: () => Promise.resolve(new Uint8Array(0)),
  text: () => Promise.resolve(''),
})
