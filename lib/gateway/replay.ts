/**
 * A body whose first result was already pulled (to learn its type, or
 * whether it fails or is empty before anything is started), given whole
 * again: the first `next()` returns that result, the rest come from the
 * same iterator. `return()` and the body's `close()` are passed on, and a
 * synchronous body stays synchronous. Shared by the response formats and
 * compression, which both look at a stream's first chunk before deciding.
 */
import type { Body, Chunk } from './spec.js'

/** `source` again, `first` (already pulled from `iterator`) first. */
export function replaySync(source: Body, iterator: Iterator<Chunk>, first: IteratorResult<Chunk>): Body {
  let pending: IteratorResult<Chunk> | null = first
  const it: Iterator<Chunk> = {
    next: () => {
      if (pending === null) return iterator.next()
      const r = pending
      pending = null
      return r
    },
    return: (value?: unknown) => (typeof iterator.return === 'function' ? iterator.return(value) : { done: true, value: undefined }),
  }
  return withClose({ [Symbol.iterator]: () => it }, source)
}

/** The same for an async iterator. */
export function replayAsync(source: Body, iterator: AsyncIterator<Chunk>, first: IteratorResult<Chunk>): Body {
  let pending: IteratorResult<Chunk> | null = first
  const it: AsyncIterator<Chunk> = {
    next: () => {
      if (pending === null) return iterator.next()
      const r = pending
      pending = null
      return Promise.resolve(r)
    },
    return: (value?: unknown) => (typeof iterator.return === 'function' ? iterator.return(value) : Promise.resolve({ done: true as const, value: undefined })),
  }
  return withClose({ [Symbol.asyncIterator]: () => it }, source)
}

function withClose(body: Body, source: Body): Body {
  const close = source.close
  if (typeof close === 'function') body.close = () => close.call(source)
  return body
}
