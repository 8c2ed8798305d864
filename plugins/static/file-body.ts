/**
 * A byte range of an open file as a response body. The server pulls chunks
 * at its own pace (each `next()` is one read), so a slow client holds one
 * chunk in memory, not the file. The file handle is closed exactly once:
 * as soon as the last byte is read, or when the server calls `close()`
 * (whether the body was sent or the client left), whichever comes first.
 */
import type { FileHandle } from 'node:fs/promises'
import type { Body } from '../../lib/gateway/spec.js'

/** Bytes read per chunk: large enough for few reads, small enough to keep a slow client cheap. */
export const CHUNK_SIZE = 64 * 1024

/** Thrown when the file ends before the length promised in `Content-Length`: the server must cut the response. */
export class FileShrankError extends Error {
  constructor() {
    super('static: the file got shorter while it was being sent')
    this.name = 'FileShrankError'
  }
}

/** Reads `length` bytes at `position` into one buffer, for files small enough to send in one write. */
export async function readWhole(handle: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const buffer = Buffer.allocUnsafe(length)
  let filled = 0
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled)
    if (bytesRead === 0) throw new FileShrankError()
    filled += bytesRead
  }
  return buffer
}

/**
 * The body that sends `length` bytes of `handle` from `position`, then
 * closes it. Owns the handle from here on: the caller must not close it.
 */
export function fileBody(handle: FileHandle, position: number, length: number, chunkSize = CHUNK_SIZE): Body {
  let open: FileHandle | null = handle
  let closing: Promise<void> | null = null
  let remaining = length
  const close = (): Promise<void> => {
    if (closing === null) {
      const h = open!
      open = null
      // FileHandle.close() waits for a read still in flight, then closes the descriptor.
      closing = h.close().catch(() => {})
    }
    return closing
  }
  const done: IteratorResult<Uint8Array> = { done: true, value: undefined }
  const iterator: AsyncIterator<Uint8Array> = {
    async next() {
      if (open === null || remaining === 0) {
        if (open !== null) await close()
        return done
      }
      const size = Math.min(chunkSize, remaining)
      // A fresh buffer per chunk: the server may still hold the previous one while the socket drains.
      const buffer = Buffer.allocUnsafe(size)
      let bytesRead: number
      try {
        ;({ bytesRead } = await open.read(buffer, 0, size, position))
      } catch (error) {
        await close()
        throw error
      }
      // Closed while the read was in flight (the client left)? The chunk is still handed over, for the server to drop:
      // ending the body here would claim it was shorter than its Content-Length.
      if (bytesRead === 0) {
        await close()
        throw new FileShrankError()
      }
      position += bytesRead
      remaining -= bytesRead
      if (remaining === 0) void close() // free the descriptor now, not when the socket has drained
      return { done: false, value: buffer.subarray(0, bytesRead) }
    },
    async return() {
      await close()
      return done
    },
  }
  return {
    [Symbol.asyncIterator]: () => iterator,
    close,
  }
}
