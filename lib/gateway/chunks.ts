/**
 * Body chunks as bytes, for sinks that need a `Uint8Array` (the node and
 * fetch adapters, inject): strings are UTF-8. postern's own server writes
 * strings to the socket as they are and needs none of this.
 */
import type { Chunk } from './spec.js'

const encoder = new TextEncoder()

/** A whole body's chunks as one `Uint8Array` (no copy for a single byte chunk), for sinks that need bytes. */
export function joinChunks(chunks: readonly Chunk[], total: number): Uint8Array {
  if (chunks.length === 1) {
    const only = chunks[0]!
    return typeof only === 'string' ? encoder.encode(only) : only
  }
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    if (typeof chunk === 'string') offset += encoder.encodeInto(chunk, out.subarray(offset)).written
    else {
      out.set(chunk, offset)
      offset += chunk.byteLength
    }
  }
  return out
}

/** A chunk as bytes. */
export function chunkBytes(chunk: Chunk): Uint8Array {
  return typeof chunk === 'string' ? encoder.encode(chunk) : chunk
}
