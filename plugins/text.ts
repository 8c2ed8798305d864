/**
 * Response formats for values that are already text or bytes: strings go
 * out as `text/plain; charset=utf-8`, `Uint8Array` as
 * `application/octet-stream`, and (async) iterables of chunks as a stream
 * typed by its first chunk (strings text, bytes octet-stream) unless the
 * handler set a Content-Type. `text(handler)` makes a gateway app of a handler.
 */
import type { BodyIterable, GatewayApp } from '../lib/gateway/spec.js'
import { BY_CONTENT, BYTES_TYPE, responder, TEXT_TYPE, type ResponseFormat, type ValueHandler } from './response.js'

export { BYTES_TYPE, TEXT_TYPE } from './response.js'

/** Strings → `text/plain; charset=utf-8`. */
export const textFormat: ResponseFormat = {
  name: 'text',
  accepts: (value) => typeof value === 'string',
  serialize: (value) => ({ type: TEXT_TYPE, payload: value as string }),
}

/** `Uint8Array` (and `Buffer`) → `application/octet-stream`. */
export const bytesFormat: ResponseFormat = {
  name: 'bytes',
  accepts: (value) => value instanceof Uint8Array,
  serialize: (value) => ({ type: BYTES_TYPE, payload: value as Uint8Array }),
}

/** Whether `value` is a stream of chunks: an async iterable, or a sync iterable that is not an array or string. */
export function isStream(value: unknown): value is BodyIterable {
  if (value === null || typeof value !== 'object') return false
  if (Symbol.asyncIterator in value) return true
  return Symbol.iterator in value && !Array.isArray(value) && !(value instanceof Uint8Array) && !(value instanceof Map) && !(value instanceof Set)
}

/**
 * (Async) iterables of chunks (streams, generators) → streamed, not buffered.
 * Unless a Content-Type was set (`reply.type()`), the first chunk decides it:
 * a string → `text/plain; charset=utf-8`, a `Uint8Array` →
 * `application/octet-stream`; an empty stream is `application/octet-stream`
 * with no body. A stream that throws before its first chunk is answered as an
 * error by the server (nothing was sent); one that throws later is cut.
 */
export const streamFormat: ResponseFormat = {
  name: 'stream',
  accepts: isStream,
  serialize: (value) => ({ type: BY_CONTENT, payload: value as BodyIterable }),
}

/** The text-ish formats, in the order they are tried. */
export const textFormats: readonly ResponseFormat[] = [textFormat, bytesFormat, streamFormat]

/** A gateway app answering with the handler's string, bytes or stream (`undefined` → 204). */
export function text(handler: ValueHandler): GatewayApp {
  return responder(handler, textFormats)
}

/** @deprecated Renamed {@link textFormat}. */
export const textPlugin = textFormat
/** @deprecated Renamed {@link bytesFormat}. */
export const bytesPlugin = bytesFormat
/** @deprecated Renamed {@link streamFormat}. */
export const streamPlugin = streamFormat
/** @deprecated Renamed {@link textFormats}. */
export const textPlugins = textFormats
