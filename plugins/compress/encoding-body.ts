/**
 * The compressing body of `compression()` (plugins/compress.ts): the app's
 * body pulled only as fast as the client reads, through a zlib stream that
 * is flushed when the app pauses and destroyed when the client leaves.
 */
import type zlib from 'node:zlib'
import type { Body, Chunk } from '../../lib/gateway/spec.js'
import { chunkLength } from '../../lib/gateway/rules.js'
import { DONE } from '../../lib/gateway/empty-input.js'

export type CompressionEncoding = 'br' | 'gzip' | 'deflate'

/** How one encoding compresses: a whole buffer at once, or a stream. */
export interface Codec {
  readonly name: CompressionEncoding
  whole(input: Buffer): Buffer
  stream(): zlib.Gzip | zlib.Deflate | zlib.BrotliCompress
  /** The flush that makes zlib emit what it holds without ending the stream. */
  readonly flushKind: number
}

/** Synchronous chunks are handed to zlib in batches of about this size. */
const BATCH = 16 * 1024

/** A chunk as a Buffer (a view, not a copy, for bytes), as zlib wants. */
export function toBuffer(chunk: Chunk): Buffer {
  return typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
}

const CLOSED: unique symbol = Symbol('closed')
const IDLE: unique symbol = Symbol('idle')

function idle(): Promise<typeof IDLE> {
  return new Promise((resolve) => setImmediate(resolve, IDLE))
}

type Engine = zlib.Gzip | zlib.Deflate | zlib.BrotliCompress

/**
 * The app's body, compressed as it is pulled. `next()` reads the app's body
 * only while it has no compressed bytes to give, so the app runs no further
 * ahead of the client than zlib's own buffer. When the app's (async) body
 * has not produced its next chunk by the next turn of the event loop, what
 * zlib holds is flushed and sent. `close()` (or `return()`) destroys the
 * zlib stream, ends the app's iterator and calls the app's `close()`, once.
 *
 * Built without a codec for a stream (held or late): its first result decides (through
 * `decide`) whether it compresses or passes the chunks on as they are.
 */
export class EncodingBody implements AsyncIterableIterator<Chunk> {
  private readonly source: Body
  private codec: Codec | null
  private decide: ((first: IteratorResult<Chunk>) => Codec | null) | null
  private iterator: Iterator<Chunk> | AsyncIterator<Chunk> | null
  private sync: boolean
  private first: IteratorResult<Chunk> | null
  /** An `next()` of the app's body that an idle flush left waiting. */
  private pending: Promise<IteratorResult<Chunk>> | null = null
  private engine: Engine | null = null
  private readonly output: Buffer[] = []
  private engineError: unknown = null
  private unflushed = false
  private sourceDone = false
  private engineDone = false
  private closed = false
  /** Settles the one wait in progress with CLOSED. */
  private wake: ((value: typeof CLOSED) => void) | null = null

  constructor(source: Body, codec: Codec | null, decide: ((first: IteratorResult<Chunk>) => Codec | null) | null, iterator?: Iterator<Chunk>, first?: IteratorResult<Chunk>) {
    this.source = source
    this.codec = codec
    this.decide = decide
    this.iterator = iterator ?? null
    this.sync = iterator !== undefined
    this.first = first ?? null
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  async next(): Promise<IteratorResult<Chunk>> {
    if (this.closed) return DONE
    if (this.iterator === null) this.open()
    if (this.decide !== null) {
      const first = await this.guard(this.pull())
      if (first === CLOSED) return DONE
      this.first = first
      const decide = this.decide
      this.decide = null
      this.codec = decide(first)
    }
    if (this.codec === null) return this.passNext()
    return this.compressNext(this.codec)
  }

  async return(): Promise<IteratorResult<Chunk>> {
    await this.close()
    return DONE
  }

  /** Ends everything, once: the zlib stream, the app's iterator (if not finished) and the app's body. */
  close(): void | Promise<void> {
    if (this.closed) return
    this.closed = true
    this.wake?.(CLOSED)
    this.engine?.destroy()
    this.engine = null
    this.output.length = 0
    this.pending?.then(undefined, () => {})
    if (!this.sourceDone && this.iterator !== null && typeof this.iterator.return === 'function') {
      try {
        const r: unknown = this.iterator.return()
        if (r instanceof Promise) r.catch(() => {})
      } catch {
        // the app's iterator could not end cleanly; its body is closed next all the same
      }
    }
    const close = this.source.close
    if (typeof close === 'function') return close.call(this.source)
  }

  private open(): void {
    const source = this.source as AsyncIterable<Chunk> & Iterable<Chunk>
    if (typeof source[Symbol.asyncIterator] === 'function') this.iterator = source[Symbol.asyncIterator]()
    else {
      this.iterator = source[Symbol.iterator]()
      this.sync = true
    }
  }

  /** The app's next result (the one already pulled first, if any). */
  private pull(): IteratorResult<Chunk> | Promise<IteratorResult<Chunk>> {
    if (this.first !== null) {
      const r = this.first
      this.first = null
      return r
    }
    if (this.pending !== null) {
      const p = this.pending
      this.pending = null
      return p
    }
    return this.sync ? (this.iterator as Iterator<Chunk>).next() : (this.iterator as AsyncIterator<Chunk>).next()
  }

  /**
   * Waits for `value`, or for close(): a client that left must not wait for
   * the app or zlib. (One wrapper per wait, not a race against one shared
   * promise, which would collect a reaction per chunk for the stream's life.)
   */
  private guard<T>(value: T | Promise<T>): T | Promise<T | typeof CLOSED> {
    if (!(value instanceof Promise)) return value
    return new Promise<T | typeof CLOSED>((resolve, reject) => {
      this.wake = resolve
      value.then(resolve, reject)
    })
  }

  private async passNext(): Promise<IteratorResult<Chunk>> {
    const r = await this.guard(this.pull())
    if (r === CLOSED) return DONE
    if (r.done === true) this.sourceDone = true
    return r
  }

  private async compressNext(codec: Codec): Promise<IteratorResult<Chunk>> {
    for (;;) {
      if (this.output.length > 0) return { done: false, value: this.output.shift()! }
      if (this.closed || this.engineDone) return DONE
      if (this.engineError !== null) throw this.engineError
      if (this.sourceDone) {
        if ((await this.guard(this.endEngine())) === CLOSED) return DONE
        continue
      }
      let r: IteratorResult<Chunk> | typeof CLOSED
      if (this.sync && this.first === null) r = this.batch()
      else {
        const next = this.pull()
        if (this.unflushed && next instanceof Promise) {
          const raced = await this.guard(Promise.race([next, idle()]))
          if (raced === CLOSED) return DONE
          if (raced === IDLE) {
            // The app is waiting for something: send what it gave so far.
            this.pending = next
            this.unflushed = false
            if ((await this.guard(this.flushEngine(codec))) === CLOSED) return DONE
            continue
          }
          r = raced
        } else r = await this.guard(next)
      }
      if (r === CLOSED || this.closed) return DONE
      if (r.done === true) {
        this.sourceDone = true
        continue
      }
      if (chunkLength(r.value) === 0) continue
      if ((await this.guard(this.writeEngine(codec, r.value))) === CLOSED) return DONE
      this.unflushed = true
    }
  }

  /** Up to about 16 KiB of a synchronous body's chunks, as one. */
  private batch(): IteratorResult<Chunk> {
    const iterator = this.iterator as Iterator<Chunk>
    const parts: Buffer[] = []
    let size = 0
    while (size < BATCH) {
      const r = iterator.next()
      if (r.done === true) {
        this.sourceDone = true
        break
      }
      if (chunkLength(r.value) === 0) continue
      const bytes = toBuffer(r.value)
      parts.push(bytes)
      size += bytes.byteLength
    }
    if (parts.length === 0) return DONE
    return { done: false, value: parts.length === 1 ? parts[0]! : Buffer.concat(parts, size) }
  }

  private engineFor(codec: Codec): Engine {
    if (this.engine !== null) return this.engine
    const engine = codec.stream()
    engine.on('data', (data: Buffer) => this.output.push(data))
    engine.on('error', (error: unknown) => (this.engineError = error))
    this.engine = engine
    return engine
  }

  private writeEngine(codec: Codec, chunk: Chunk): Promise<void> {
    const engine = this.engineFor(codec)
    return new Promise((resolve, reject) => engine.write(chunk, (error) => (error ? reject(error) : resolve())))
  }

  private flushEngine(codec: Codec): Promise<void> {
    const engine = this.engineFor(codec)
    return new Promise((resolve) => engine.flush(codec.flushKind, () => resolve()))
  }

  private endEngine(): Promise<void> {
    const engine = this.engineFor(this.codec!)
    return new Promise((resolve, reject) => {
      engine.once('end', () => {
        this.engineDone = true
        resolve()
      })
      engine.once('error', reject)
      engine.end()
    })
  }
}
