/**
 * The `Range` header (RFC 9110 §14.1.2, §14.2) for byte ranges of a file of
 * known size. A header that does not parse is ignored, as the RFC says a
 * server may: the client gets the whole file, which it can always use.
 * A range set no byte of which exists is answered 416.
 */

/** One byte range, both ends inclusive, inside the file. */
export interface ByteRange {
  start: number
  end: number
}

/** What a `Range` header asks of a file: ranges to send, a 416, or nothing (send the whole file). */
export type RangeRequest = readonly ByteRange[] | 'unsatisfiable' | null

/**
 * More ranges than this in one header are ignored (the whole file is sent):
 * a client that asks for thousands of tiny ranges is not resuming a download.
 */
export const MAX_RANGES = 100

const DIGITS = /^\d+$/
const OWS = /^[ \t]*|[ \t]*$/g

/**
 * Parses `header` against a file of `size` bytes. Returns the satisfiable
 * ranges sorted and coalesced (overlapping or adjacent ranges become one),
 * `'unsatisfiable'` when none is (→ 416), or `null` when the header is to be
 * ignored: another unit, a malformed range-spec, a last-pos before its
 * first-pos, more than {@link MAX_RANGES} ranges, or an empty file.
 */
export function parseRange(header: string, size: number): RangeRequest {
  const eq = header.indexOf('=')
  if (eq < 0 || header.slice(0, eq).replace(OWS, '').toLowerCase() !== 'bytes' || size <= 0) return null
  const ranges: ByteRange[] = []
  let specs = 0
  for (const element of header.slice(eq + 1).split(',')) {
    const spec = element.replace(OWS, '')
    if (spec === '') continue // a list may hold empty elements (RFC 9110 §5.6.1)
    if (++specs > MAX_RANGES) return null
    const dash = spec.indexOf('-')
    if (dash < 0) return null
    const first = spec.slice(0, dash)
    const last = spec.slice(dash + 1)
    if (first === '') {
      // suffix-range: the last N bytes
      if (!DIGITS.test(last)) return null
      const length = Number(last)
      if (length > 0) ranges.push({ start: Math.max(0, size - length), end: size - 1 })
      continue
    }
    if (!DIGITS.test(first) || (last !== '' && !DIGITS.test(last))) return null
    const start = Number(first)
    const end = last === '' ? Number.POSITIVE_INFINITY : Number(last)
    if (end < start) return null
    if (start < size) ranges.push({ start, end: Math.min(end, size - 1) })
  }
  if (specs === 0) return null
  if (ranges.length === 0) return 'unsatisfiable'
  return coalesce(ranges)
}

function coalesce(ranges: ByteRange[]): ByteRange[] {
  if (ranges.length === 1) return ranges
  ranges.sort((a, b) => a.start - b.start)
  const out: ByteRange[] = [ranges[0]!]
  for (let i = 1; i < ranges.length; i++) {
    const range = ranges[i]!
    const previous = out[out.length - 1]!
    if (range.start <= previous.end + 1) previous.end = Math.max(previous.end, range.end)
    else out.push(range)
  }
  return out
}
