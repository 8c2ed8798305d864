/**
 * The body limit rule [input-limit], once for every `gateway.input`: postern's
 * server and the adapters' stream input both read a whole body with
 * `bytes(limit)` through this collector. It copies chunks into one buffer
 * that grows by doubling as bytes arrive, never sized from a declared length
 * up front (a client could declare a large body and send nothing), and it
 * refuses the body with 413 as soon as more than `limit` bytes arrived,
 * without keeping them.
 */
import { GatewayError } from './spec.js'

/** The first buffer of a read, unless the declared length is smaller. */
const FIRST_COLLECT = 64 * 1024

export class BodyCollector {
  readonly limit: number
  private buf: Uint8Array
  private len = 0

  /**
   * @param limit the most bytes the body may have
   * @param declared the declared length (caps the first buffer), null when unknown
   * @param waiting bytes already received and about to be added
   */
  constructor(limit: number, declared: number | null, waiting = 0) {
    this.limit = limit
    this.buf = new Uint8Array(Math.min(limit, declared ?? limit, Math.max(waiting, FIRST_COLLECT)))
  }

  /** Adds a chunk; false when the body is now over the limit (the chunk is not kept). */
  add(chunk: Uint8Array): boolean {
    const len = this.len + chunk.byteLength
    if (len > this.limit) return false
    if (len > this.buf.byteLength) {
      const grown = new Uint8Array(Math.min(Math.max(len, this.buf.byteLength * 2), this.limit))
      grown.set(this.buf.subarray(0, this.len))
      this.buf = grown
    }
    this.buf.set(chunk, this.len)
    this.len = len
    return true
  }

  /** The body read so far. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len)
  }
}

/** The answer to a body over its limit. */
export function bodyTooLarge(limit: number): GatewayError {
  return new GatewayError(413, `request body larger than ${limit} bytes`)
}

/** A read made while the previous one still waits: one reader reads a body, one read at a time. */
export function readAgain(): TypeError {
  return new TypeError('gateway.input: read again before the previous read finished')
}
