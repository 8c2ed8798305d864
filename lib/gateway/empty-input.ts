/**
 * `gateway.input` for a request without a body, shared by every request
 * that has none (a GET on postern's server, any GET or HEAD through
 * `toFetch`): there is nothing to read, so there is no state to keep, and
 * no object to make per request.
 */
import type { GatewayInput } from './spec.js'

/** The end of an iteration, one frozen object for every input and body that ends. */
export const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined })

/** The input of a request without a body. */
export const EMPTY_INPUT: GatewayInput = Object.freeze({
  length: 0,
  trailers: Object.freeze([]) as ReadonlyArray<readonly [string, string]>,
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return { next: () => Promise.resolve(DONE) }
  },
  bytes: () => Promise.resolve(new Uint8Array(0)),
  text: () => Promise.resolve(''),
})
