/**
 * The limits postern's request parser enforces. A file of its own because
 * every part of the parser reads them: the incremental reader (head size),
 * the head parser (target length, field count, declared body size) and the
 * chunked decoder (body size, chunk extensions, chunk count, trailers).
 */

/** Limits the parser enforces; the server passes its options. */
export interface ParserLimits {
  maxHeaderSize: number
  maxHeaderCount: number
  maxTargetLength: number
  maxBodySize: number
  maxChunkExtensionSize: number
  /** Most chunks in one chunked body; unbounded when absent. */
  maxChunkCount?: number
}
