/**
 * A Node request's body (IncomingMessage, Http2ServerRequest) as the async
 * iterable `gateway.input` reads, by 'data', 'end', 'error' and 'close'
 * events. Node's own async iterator makes an async generator, an
 * end-of-stream watcher and a promise chain per request, which cost a
 * small POST through `toNodeListener` about as much as the rest of the
 * adapter. This reads the same chunks with the same backpressure (the
 * stream is paused while a chunk waits to be taken) and ends the same way:
 * an error or a close before the end rejects, and an app that stops early
 * leaves the connection to carry its response, the rest of the body
 * dropped.
 */
import type { Readable } from 'node:stream'
import { DONE } from '../gateway/empty-input.js'

/** Node's error for a stream closed before its end, as its own iterator rejects with. */
function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })
}

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

interface Waiting {
  resolve(step: IteratorResult<Uint8Array>): void
  reject(error: unknown): void
}

/** Where the shared listeners find a stream's reader: one set of functions for every request, none made per request. */
const READER = Symbol('postern.nodeBodyReader')
type ReadStream = Readable & { [READER]?: NodeBodyReader }

function onData(this: ReadStream, data: Uint8Array | string): void {
  this[READER]?.data(typeof data === 'string' ? Buffer.from(data) : data)
}
function onEnd(this: ReadStream): void {
  this[READER]?.end(null)
}
function onError(this: ReadStream, error: unknown): void {
  this[READER]?.end(error)
}
function onClose(this: ReadStream): void {
  this[READER]?.end(prematureClose())
}

class NodeBodyReader implements AsyncIterator<Uint8Array> {
  readonly #stream: ReadStream
  /** Chunks read but not yet taken; the stream is paused while there are any. */
  readonly #chunks: Uint8Array[] = []
  #ended = false
  #error: unknown = null
  #waiting: Waiting | null = null

  constructor(stream: ReadStream) {
    this.#stream = stream
    if (stream.readableEnded) this.#ended = true
    else if (stream.errored !== null) this.#error = stream.errored
    else if (stream.destroyed) this.#error = prematureClose()
    else {
      stream[READER] = this
      stream.on('data', onData)
      stream.on('end', onEnd)
      stream.on('error', onError)
      stream.on('close', onClose)
    }
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    const chunk = this.#chunks.shift()
    if (chunk !== undefined) {
      if (this.#chunks.length === 0 && !this.#ended && this.#error === null) this.#stream.resume()
      return Promise.resolve({ done: false, value: chunk })
    }
    if (this.#error !== null) return Promise.reject(this.#error)
    if (this.#ended) return Promise.resolve(DONE)
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject }
    })
  }

  /**
   * The app stopped reading: the rest of the body is read and dropped, as
   * node:http does with a body nobody reads. The request is not destroyed:
   * that would cut the connection before the app's response is sent.
   */
  return(): Promise<IteratorResult<Uint8Array>> {
    const unfinished = !this.#ended && this.#error === null
    this.#stop()
    this.#chunks.length = 0
    if (unfinished) this.#stream.resume()
    return Promise.resolve(DONE)
  }

  /** A chunk came: to a waiting `next()`, or queued with the stream paused. */
  data(chunk: Uint8Array): void {
    const waiting = this.#waiting
    if (waiting !== null) {
      this.#waiting = null
      waiting.resolve({ done: false, value: chunk })
    } else {
      this.#chunks.push(chunk)
      this.#stream.pause()
    }
  }

  /** The stream is done: its end (`error` null), an error, or a close before the end. Answers a waiting `next()`. */
  end(error: unknown): void {
    if (error === null) this.#ended = true
    else this.#error = error
    this.#stop()
    const waiting = this.#waiting
    if (waiting === null) return
    this.#waiting = null
    if (error === null) waiting.resolve(DONE)
    else waiting.reject(error)
  }

  #stop(): void {
    const stream = this.#stream
    stream[READER] = undefined
    stream.off('data', onData)
    stream.off('end', onEnd)
    stream.off('error', onError)
    stream.off('close', onClose)
  }
}
