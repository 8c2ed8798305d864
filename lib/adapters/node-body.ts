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

class NodeBodyReader implements AsyncIterator<Uint8Array> {
  readonly #stream: Readable
  /** Chunks read but not yet taken; the stream is paused while there are any. */
  readonly #chunks: Uint8Array[] = []
  #ended = false
  #error: unknown = null
  #waiting: Waiting | null = null

  constructor(stream: Readable) {
    this.#stream = stream
    if (stream.readableEnded) this.#ended = true
    else if (stream.errored !== null) this.#error = stream.errored
    else if (stream.destroyed) this.#error = prematureClose()
    else {
      stream.on('data', this.#onData)
      stream.on('end', this.#onEnd)
      stream.on('error', this.#onError)
      stream.on('close', this.#onClose)
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

  readonly #onData = (data: Uint8Array | string): void => {
    const chunk = typeof data === 'string' ? Buffer.from(data) : data
    const waiting = this.#waiting
    if (waiting !== null) {
      this.#waiting = null
      waiting.resolve({ done: false, value: chunk })
    } else {
      this.#chunks.push(chunk)
      this.#stream.pause()
    }
  }

  readonly #onEnd = (): void => {
    this.#ended = true
    this.#stop()
    this.#settle()
  }

  readonly #onError = (error: unknown): void => {
    this.#error = error
    this.#stop()
    this.#settle()
  }

  readonly #onClose = (): void => {
    if (this.#ended || this.#error !== null) return
    this.#onError(prematureClose())
  }

  /** Answers a waiting `next()` once the stream is done: its end, or its error. */
  #settle(): void {
    const waiting = this.#waiting
    if (waiting === null) return
    this.#waiting = null
    if (this.#error !== null) waiting.reject(this.#error)
    else waiting.resolve(DONE)
  }

  #stop(): void {
    const stream = this.#stream
    stream.off('data', this.#onData)
    stream.off('end', this.#onEnd)
    stream.off('error', this.#onError)
    stream.off('close', this.#onClose)
  }
}
