/**
 * `gateway.input` over any async source of byte chunks (a Node request, a
 * Fetch `ReadableStream`, an in-process body for `inject`), so every
 * adapter gives apps the same request body with the same limits and the
 * same errors as postern's own server.
 */
import { GatewayError, type GatewayInput } from './spec.js'
import { DEFAULT_BODY_LIMIT } from './limits.js'
import { BodyCollector, bodyTooLarge } from './body-collector.js'

/** The default body limit for `bytes()`/`text()`: the server's default (1 MiB). */
export { DEFAULT_BODY_LIMIT }

/** A request-body error with its status (413, 400), answered as postern's server answers it. */
function adapterError(status: number, message: string, cause?: unknown): GatewayError {
  return new GatewayError(status, message, cause === undefined ? undefined : { cause })
}

type Trailers = ReadonlyArray<readonly [string, string]>

/** A request body read from `source`, once. */
export class StreamInput implements GatewayInput {
  /** The declared length; set by the adapter once the environ says it (before the app runs). */
  length: number | null
  #source: AsyncIterable<Uint8Array> | null
  #limit: number
  #trailers: () => Trailers

  /**
   * @param source where the bytes come from; iterated at most once
   * @param length the declared length (`Content-Length`), null when unknown
   * @param limit the default limit of `bytes()`/`text()`
   * @param trailers reads the trailer fields once the body was read
   */
  constructor(source: AsyncIterable<Uint8Array>, length: number | null, limit = DEFAULT_BODY_LIMIT, trailers: () => Trailers = () => []) {
    this.#source = source
    this.length = length
    this.#limit = limit
    this.#trailers = trailers
  }

  get trailers(): Trailers {
    return this.#trailers()
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    const source = this.#source
    if (source === null) throw new TypeError('gateway.input can be read only once')
    this.#source = null
    if (this.length === 0) return empty()
    return guard(source[Symbol.asyncIterator]())
  }

  async bytes(limit: number = this.#limit): Promise<Uint8Array> {
    if (this.length !== null && this.length > limit) throw bodyTooLarge(limit)
    // Iterated by hand: on an over-limit body we stop reading without
    // destroying the source, so the response can still be sent.
    const iterator = this[Symbol.asyncIterator]()
    const body = new BodyCollector(limit, this.length)
    for (;;) {
      const step = await iterator.next()
      if (step.done === true) return body.bytes()
      if (!body.add(step.value)) throw bodyTooLarge(limit)
    }
  }

  async text(limit?: number): Promise<string> {
    return new TextDecoder().decode(await this.bytes(limit))
  }
}

function empty(): AsyncIterator<Uint8Array> {
  return { next: () => Promise.resolve({ done: true, value: undefined }) }
}

/** Passes chunks through; a failing source (the client went away) becomes a 400. */
function guard(iterator: AsyncIterator<Uint8Array>): AsyncIterator<Uint8Array> {
  return {
    async next() {
      try {
        return await iterator.next()
      } catch (error) {
        throw error instanceof GatewayError ? error : adapterError(400, 'the client closed the connection before sending the whole body', error)
      }
    },
    async return() {
      await iterator.return?.()
      return { done: true, value: undefined }
    },
  }
}

/** Joins chunks into one array (no copy for a single chunk). */
export function concat(chunks: readonly Uint8Array[], total = chunks.reduce((n, c) => n + c.byteLength, 0)): Uint8Array {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}
