/**
 * A Node request's body (IncomingMessage, Http2ServerRequest) as the async
 * iterable `gateway.input` reads, with `read()` on 'readable' as Node's own
 * iterator does, but without its async generator, end-of-stream watcher and
 * promise chain per request, which cost a small POST through
 * `toNodeListener` about as much as the rest of the adapter. The stream's
 * own buffer is the backpressure (nothing is read ahead of the app), a
 * stream some middleware paused still reads, and an error or a close before
 * the end rejects (`gateway.input` makes that a 400). An app that stops
 * early leaves the connection to carry its response: the rest of the body
 * is read and dropped, as node:http does with a body nobody reads.
 */
import type { Readable } from 'node:stream'
import { readAgain } from '../gateway/body-collector.js'
import { DONE } from '../gateway/empty-input.js'

/** Iterated once: `gateway.input` guards that. */
export class NodeBody implements AsyncIterable<Uint8Array> {
  readonly #stream: Readable

  constructor(stream: Readable) {
    this.#stream = stream
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return new NodeBodyReader(this.#stream)
  }
}

/** Node's error for a stream closed before its end, as its own iterator rejects with. */
function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })
}

/** Where the shared listeners find a stream's reader: one set of functions for every request, none made per request. */
const READER = Symbol('postern.nodeBodyReader')
/** `aborted`: IncomingMessage and Http2ServerRequest set it when the client left before the whole body came. */
type ReadStream = Readable & { [READER]?: NodeBodyReader; aborted?: boolean }

/** The client left, or the stream was destroyed or errored before 'end' (`readableAborted`): the body was cut short. */
function cutShort(stream: ReadStream): boolean {
  return stream.aborted === true || stream.readableAborted
}

function onReadable(this: ReadStream): void {
  this[READER]?.readable()
}
function onEnd(this: ReadStream): void {
  this[READER]?.end(null)
}
function onError(this: ReadStream, error: unknown): void {
  this[READER]?.end(error)
}
/** HTTP/2's compatibility layer may close a stream whose end is still buffered: only a close that cut the body short fails the read. */
function onClose(this: ReadStream): void {
  if (cutShort(this)) this[READER]?.end(prematureClose())
  else this[READER]?.readable()
}

interface Waiting {
  resolve(step: IteratorResult<Uint8Array>): void
  reject(error: unknown): void
}

class NodeBodyReader implements AsyncIterator<Uint8Array> {
  readonly #stream: ReadStream
  #done = false
  #error: unknown = null
  #waiting: Waiting | null = null

  constructor(stream: ReadStream) {
    this.#stream = stream
    if (stream[READER] !== undefined) throw new TypeError('gateway.input: this request body is already being read')
    if (stream.errored !== null) this.#error = stream.errored
    else if (cutShort(stream)) this.#error = prematureClose()
    else if (stream.readableEnded) this.#done = true
    else {
      stream[READER] = this
      stream.on('readable', onReadable)
      stream.on('end', onEnd)
      stream.on('error', onError)
      stream.on('close', onClose)
    }
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#waiting !== null) return Promise.reject(readAgain())
    if (this.#error !== null) return Promise.reject(this.#error)
    if (this.#done) return Promise.resolve(DONE)
    const chunk = this.#read()
    if (chunk !== null) return Promise.resolve({ done: false, value: chunk })
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject }
    })
  }

  /** The app stopped reading: a pending read ends, and the rest of the body is read and dropped. */
  return(): Promise<IteratorResult<Uint8Array>> {
    const unfinished = !this.#done && this.#error === null
    this.#done = true
    this.#stop()
    this.#settle(null)
    if (unfinished) this.#stream.resume()
    return Promise.resolve(DONE)
  }

  /** Bytes are buffered (or the end is near): a waiting read takes them. */
  readable(): void {
    const waiting = this.#waiting
    if (waiting === null) return
    const chunk = this.#read()
    if (chunk === null) return // the end: 'end' follows
    this.#waiting = null
    waiting.resolve({ done: false, value: chunk })
  }

  /** The stream is done: its end (`error` null), an error, or a close before the end. */
  end(error: unknown): void {
    if (error === null) this.#done = true
    else this.#error = error
    this.#stop()
    this.#settle(error)
  }

  /** What the stream has buffered, as bytes; null when nothing is. After `setEncoding`, the string is encoded back (bytes that were not valid in that encoding are lost). */
  #read(): Uint8Array | null {
    const data = this.#stream.read() as Uint8Array | string | null
    if (typeof data !== 'string') return data
    return Buffer.from(data, this.#stream.readableEncoding ?? 'utf8')
  }

  /** Answers a waiting read: done, or the error. */
  #settle(error: unknown): void {
    const waiting = this.#waiting
    if (waiting === null) return
    this.#waiting = null
    if (error === null) waiting.resolve(DONE)
    else waiting.reject(error)
  }

  #stop(): void {
    const stream = this.#stream
    if (stream[READER] !== this) return
    stream[READER] = undefined
    stream.off('readable', onReadable)
    stream.off('end', onEnd)
    stream.off('error', onError)
    stream.off('close', onClose)
  }
}
