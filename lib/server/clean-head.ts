/**
 * The fast path for finding a request head: one pass, a 32-bit word at a
 * time, that both checks a head for stray control characters and finds the
 * empty line that ends it.
 *
 * Separate from the parser because it is a self-contained, delicate piece of
 * optimisation (typed-array views over the read's memory, a bit trick) whose
 * only contract is "the end of a clean head, or -1"; anything it declines
 * goes the parser's line-by-line way, which names the fault.
 */

const CR = 13
const LF = 10
const HTAB = 9

/**
 * Finds a complete, clean head at `buf[start..end)`: one that holds no
 * control character but HTAB and CR LF pairs (and no DEL), and ends with an
 * empty line within `max` bytes. Returns the index after the empty line, or
 * -1 when the head is incomplete, too large or not clean (the line-by-line
 * path then takes it and names any fault).
 *
 * It reads 32-bit words with the "has a byte less than n" bit trick: only a
 * word that may hold a control byte is looked at byte by byte, so a clean
 * head costs about a quarter of a byte loop, and finding its end comes free.
 */
export function findCleanHead(buf: Buffer, start: number, end: number, max: number): number {
  const limit = Math.min(end, start + max)
  const offset = buf.byteOffset
  let i = start
  while (i < limit && ((offset + i) & 3) !== 0) {
    const r = headByte(buf, i, start, end)
    if (r !== BYTE_OK) return r === BYTE_END ? i + 1 : -1
    i++
  }
  const words = wordsOf(buf.buffer)
  const wordEnd = (offset + limit) >> 2
  for (let w = (offset + i) >> 2; w < wordEnd; w++) {
    const x = words[w]!
    const del = x ^ 0x7f7f7f7f
    if ((((x - 0x20202020) & ~x) | ((del - 0x01010101) & ~del)) & 0x80808080) {
      const at = w * 4 - offset
      for (let k = at; k < at + 4; k++) {
        const r = headByte(buf, k, start, end)
        if (r !== BYTE_OK) return r === BYTE_END ? k + 1 : -1
      }
    }
  }
  for (i = Math.max(i, wordEnd * 4 - offset); i < limit; i++) {
    const r = headByte(buf, i, start, end)
    if (r !== BYTE_OK) return r === BYTE_END ? i + 1 : -1
  }
  return -1
}

const BYTE_OK = 0
const BYTE_END = 1
const BYTE_STOP = 2

/** One byte of a head: fine, the LF that ends the head, or a reason to stop. */
function headByte(buf: Buffer, i: number, start: number, end: number): number {
  const b = buf[i]!
  if (b >= 0x20) return b === 0x7f ? BYTE_STOP : BYTE_OK
  if (b === HTAB) return BYTE_OK
  if (b === CR) return i + 1 < end && buf[i + 1] === LF ? BYTE_OK : BYTE_STOP
  if (b === LF && i > start && buf[i - 1] === CR) {
    return i - 3 >= start && buf[i - 2] === LF && buf[i - 3] === CR ? BYTE_END : BYTE_OK
  }
  return BYTE_STOP
}

/** A 32-bit view of a read's memory, kept while reads come from the same ArrayBuffer. */
let viewed: ArrayBufferLike | null = null
let view: Int32Array<ArrayBufferLike> = new Int32Array(0)
function wordsOf(buffer: ArrayBufferLike): Int32Array {
  if (buffer !== viewed) {
    view = new Int32Array(buffer, 0, buffer.byteLength >> 2)
    viewed = buffer
  }
  return view
}
