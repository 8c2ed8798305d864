/**
 * HTTP/1.1 message framing of responses (RFC 9112 §6), decided once when the
 * head is committed, as Go's `transfer.go` and h11's writers do: a body
 * whose length is known gets `Content-Length`, a streamed body is chunked
 * on HTTP/1.1 and close-delimited on HTTP/1.0, and 204/304 carry no framing
 * at all. The chunked writer lives here too.
 */

/** No framing line: 204/304, or the app's own Content-Length line is in the head. */
export const FRAME_NONE = 0
/** `Content-Length` from the known body length. */
export const FRAME_LENGTH = 1
/** `Transfer-Encoding: chunked`: each chunk framed, a last chunk ends the body. */
export const FRAME_CHUNKED = 2
/** Close-delimited (HTTP/1.0, length unknown): the end of the connection ends the body. */
export const FRAME_CLOSE = 3

/**
 * The framing of a response.
 * @param length the whole body's length, or -1 when it streams
 * @param declared the app's own Content-Length, or -1
 */
export function framingOf(code: number, declared: number, length: number, minor: number, noBody: boolean): number {
  if (code === 204 || code === 304 || declared >= 0) return FRAME_NONE
  if (length >= 0) return FRAME_LENGTH
  if (minor === 1) return FRAME_CHUNKED
  return noBody ? FRAME_NONE : FRAME_CLOSE
}

/** The head line that announces a framing. */
export function framingLine(framing: number, length: number): string {
  if (framing === FRAME_LENGTH) return `Content-Length: ${length}\r\n`
  if (framing === FRAME_CHUNKED) return 'Transfer-Encoding: chunked\r\n'
  return ''
}

/** The line before a chunk of `length` bytes. */
export function chunkHeader(length: number): string {
  return `${length.toString(16)}\r\n`
}

/** What follows every chunk. */
export const CHUNK_END = '\r\n'

/** The last chunk: the end of a chunked body (no trailers). */
export const LAST_CHUNK = '0\r\n\r\n'
