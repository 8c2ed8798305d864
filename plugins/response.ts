/**
 * Response formats: how a handler's return value becomes a status, headers
 * and a body. Each format says which values it takes and serializes them;
 * the first that accepts a value wins, so an app can put its own (HTML, say)
 * in front of the built-in ones. Kept apart from the framework so the same
 * machinery serves bare gateway stacks (`json(handler)`, `text(handler)`).
 *
 * (Called "response plugins" before; "plugin" now means only gateway
 * middleware in plugins/ and the framework's `app.register` scopes.)
 */
import type { Body, BodyIterable, Chunk, Environ, GatewayApp, Headers, StartResponse } from '../lib/gateway/spec.js'
import { statusLine } from '../lib/gateway/headers.js'
import { publicMessage, statusOf } from '../lib/gateway/errors.js'
import { replayAsync, replaySync } from '../lib/gateway/replay.js'

/** A serialized response payload: one chunk, a stream of chunks, or nothing. */
export type Payload = Chunk | BodyIterable | null

export const TEXT_TYPE = 'text/plain; charset=utf-8'
export const BYTES_TYPE = 'application/octet-stream'

/**
 * A {@link Serialized} `type` that follows the payload: a string is
 * `text/plain; charset=utf-8`, bytes are `application/octet-stream`, and a
 * stream takes the type of its first chunk (an empty stream, having none, is
 * `application/octet-stream` with no body). The stream is not buffered: its
 * response starts when it produces its first chunk (see {@link start}).
 */
export const BY_CONTENT: unique symbol = Symbol('postern.typeByContent')

export interface Serialized {
  /** The `Content-Type` to send unless the handler set one; `null` for none; {@link BY_CONTENT} to follow the payload. */
  type: string | null | typeof BY_CONTENT
  payload: Payload
}

/** A compiled serializer for one status code (see json.ts). */
export type Serializer = (value: unknown) => string

export interface SerializeContext {
  /** The status the response will have. */
  status: number
  /** The route's compiled serializer for that status, if its schema declared one. */
  serializer: Serializer | undefined
}

/** One way of turning a kind of value into a response payload (text, bytes, a stream, JSON, HTML…). */
export interface ResponseFormat {
  readonly name: string
  /** Whether this format turns `value` into a response. */
  accepts(value: unknown): boolean
  serialize(value: unknown, context: SerializeContext): Serialized
}

/** @deprecated Renamed {@link ResponseFormat}. */
export type ResponsePlugin = ResponseFormat

/** Whether a payload is a single chunk (sent as a one-element array, so its length is known). */
export function isChunk(payload: Payload): payload is Chunk {
  return typeof payload === 'string' || payload instanceof Uint8Array
}

/** Serializes `value` with the first format that accepts it; throws when none does. */
export function serialize(value: unknown, formats: readonly ResponseFormat[], context: SerializeContext): Serialized {
  for (let i = 0; i < formats.length; i++) {
    const format = formats[i]!
    if (format.accepts(value)) return format.serialize(value, context)
  }
  throw new TypeError(`postern: no response format accepts a value of type ${typeof value}`)
}

/** Whether `headers` already has `name` (lower-case). */
export function hasHeader(headers: Headers, name: string): boolean {
  for (let i = 0; i < headers.length; i++) if (headers[i]![0].toLowerCase() === name) return true
  return false
}

const typeHeaders = new Map<string, [string, string]>()
/**
 * The `content-type` header pair for a type, built once and frozen: the
 * pairs are shared between responses (a middleware that wants another value
 * replaces the pair; changing it in place throws).
 */
export function contentType(type: string): [string, string] {
  let pair = typeHeaders.get(type)
  if (pair === undefined) {
    pair = Object.freeze(['content-type', type]) as [string, string]
    if (typeHeaders.size < 64) typeHeaders.set(type, pair)
  }
  return pair
}

/**
 * Starts the response and returns its body: a one-element array for a
 * chunk, the stream itself for a stream, `[]` for nothing. `headers` may be
 * null when the handler set none.
 *
 * A stream whose type is {@link BY_CONTENT}, when no Content-Type was set,
 * is answered late (the gateway allows `startResponse` up to the first
 * chunk): the body pulls the stream's first chunk, starts the response with
 * that chunk's type, then gives the chunk and the rest. A stream that throws
 * before its first chunk has started nothing, so the server answers the error
 * (lib/gateway/errors.ts); one that throws later is cut.
 */
export function start(startResponse: StartResponse, status: number, headers: Headers | null, serialized: Serialized): Body {
  const { payload } = serialized
  let type = serialized.type
  if (type === BY_CONTENT) {
    if (payload === null || (headers !== null && hasHeader(headers, 'content-type'))) type = null
    else if (isChunk(payload)) type = chunkType(payload)
    else return startOnFirstChunk(startResponse, statusLine(status), headers, payload)
  }
  let list: Headers
  if (headers === null) list = type === null ? [] : [contentType(type)]
  else {
    list = headers
    if (type !== null && !hasHeader(list, 'content-type')) list.push(contentType(type))
  }
  startResponse(statusLine(status), list)
  if (payload === null) return []
  if (isChunk(payload)) return [payload]
  return payload
}

function chunkType(chunk: Chunk | undefined): string {
  return typeof chunk === 'string' ? TEXT_TYPE : BYTES_TYPE
}

/**
 * The body of a stream typed by its first chunk: `startResponse` is called
 * when the first `next()` settles (with a chunk, or with the end), before it
 * is handed on; an error before then propagates with nothing started. A sync
 * stream stays sync (the server may still gather it and send its length);
 * `return()` and the stream's own `close()` are passed on.
 */
function startOnFirstChunk(startResponse: StartResponse, status: string, headers: Headers | null, stream: BodyIterable): Body {
  let started = false
  const begin = (r: IteratorResult<Chunk>): IteratorResult<Chunk> => {
    if (!started) {
      started = true
      const pair = contentType(chunkType(r.done === true ? undefined : r.value))
      if (headers === null) headers = [pair]
      else headers.push(pair)
      startResponse(status, headers)
    }
    return r
  }
  let body: Body
  if (Symbol.asyncIterator in stream) {
    body = {
      [Symbol.asyncIterator](): AsyncIterator<Chunk> {
        const it = stream[Symbol.asyncIterator]()
        return {
          next: async () => begin(await it.next()),
          return: async (value?: unknown) => (typeof it.return === 'function' ? it.return(value) : { done: true, value: undefined }),
        }
      },
    }
  } else {
    body = {
      [Symbol.iterator](): Iterator<Chunk> {
        const it = (stream as Iterable<Chunk>)[Symbol.iterator]()
        return {
          next: () => begin(it.next()),
          return: (value?: unknown) => (typeof it.return === 'function' ? it.return(value) : { done: true, value: undefined }),
        }
      },
    }
  }
  const close = (stream as Body).close
  if (typeof close === 'function') body.close = () => close.call(stream)
  return body
}

/**
 * Pulls a stream's first chunk before anything is started, so that a stream
 * failing at once can still be answered as an error by whoever called it
 * (the framework's error handler) instead of by the server. Returns a
 * stream that gives that first result and then the rest, with `return()`
 * and `close()` passed on; or a promise of it for an async stream. Throws
 * (or rejects) with the stream's error, after calling its `close()`.
 */
export function primeStream(stream: BodyIterable): BodyIterable | Promise<BodyIterable> {
  const close = (stream as Body).close
  const closeAfter = (error: unknown): never => {
    if (typeof close === 'function') {
      try {
        void close.call(stream)
      } catch {
        // the stream's own error is the one to answer
      }
    }
    throw error
  }
  if (Symbol.asyncIterator in stream) {
    const it = stream[Symbol.asyncIterator]()
    let first: Promise<IteratorResult<Chunk>>
    try {
      first = it.next()
    } catch (error) {
      return closeAfter(error)
    }
    return first.then((result) => replayAsync(stream as Body, it, result) as BodyIterable, closeAfter)
  }
  const it = (stream as Iterable<Chunk>)[Symbol.iterator]()
  let first: IteratorResult<Chunk>
  try {
    first = it.next()
  } catch (error) {
    return closeAfter(error)
  }
  return replaySync(stream as Body, it, first) as BodyIterable
}

/** A handler for a bare gateway stack: the environ in, a value out; it may set `reply.status`/`reply.headers`. */
export type ValueHandler = (environ: Environ, reply: ResponseState) => unknown

/** The mutable response state a {@link ValueHandler} sees. */
export interface ResponseState {
  status: number
  headers: Headers | null
}

/**
 * Turns a value handler into a gateway app using `formats`. A thrown error
 * with a 4xx/5xx `status` becomes that response (message shown for 4xx);
 * other errors are left to the server (500).
 */
export function responder(handler: ValueHandler, formats: readonly ResponseFormat[], serializerFor: (status: number) => Serializer | undefined = none): GatewayApp {
  const finish = (value: unknown, state: ResponseState, startResponse: StartResponse): Body => {
    if (value === undefined) {
      if (state.status === 200) state.status = 204
      return start(startResponse, state.status, state.headers, EMPTY)
    }
    const serialized = serialize(value, formats, { status: state.status, serializer: serializerFor(state.status) })
    return start(startResponse, state.status, state.headers, serialized)
  }
  const fail = (error: unknown, startResponse: StartResponse): Body => {
    const status = statusOf(error)
    if (status === 0) throw error
    return start(startResponse, status, null, { type: TEXT_TYPE, payload: publicMessage(error, status) })
  }
  return (environ, startResponse) => {
    const state: ResponseState = { status: 200, headers: null }
    let value: unknown
    try {
      value = handler(environ, state)
    } catch (error) {
      return fail(error, startResponse)
    }
    if (value instanceof Promise) {
      return value.then(
        (v: unknown) => finish(v, state, startResponse),
        (error: unknown) => fail(error, startResponse),
      )
    }
    return finish(value, state, startResponse)
  }
}

const EMPTY: Serialized = { type: null, payload: null }
function none(): undefined {
  return undefined
}
