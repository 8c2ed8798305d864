/**
 * Header field lines (RFC 9110 §5, RFC 9112 §5): parsing a block of
 * `name: value` CRLF lines into flat name/value pairs, and naming the fault
 * when a line is malformed.
 *
 * Separate from the request head because two callers share it: the head
 * parser (header fields) and the chunked decoder (trailer fields). It also
 * tells the head parser which fields frame the message ({@link H_HOST},
 * {@link H_CONTENT_LENGTH}, …), so that parser never compares names itself.
 */
import { TOKEN, cacheTakes } from '../gateway/headers.js'
import { ParseError } from './parse-error.js'

const CR = 13
const LF = 10
const SP = 32
const HTAB = 9
const COLON = 58

/** Bytes allowed in a field value: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5). */
export const FIELD_VALUE = (() => {
  const table = new Uint8Array(256)
  table[HTAB] = 1
  for (let c = 0x20; c <= 0x7e; c++) table[c] = 1
  for (let c = 0x80; c <= 0xff; c++) table[c] = 1
  return table
})()

/** `Buffer#latin1Slice`: the fastest way from bytes to a one-byte string. */
type FastBuffer = Buffer & { latin1Slice(start: number, end: number): string }
/** The bytes `buf[start..end)` as a Latin-1 string: how field text is read out of a Buffer. */
export const latin1 = (buf: Buffer, start: number, end: number): string => (buf as FastBuffer).latin1Slice(start, end)

/** Field names the parser acts on, by lower-cased name: the kinds {@link parseFields} reports. */
export const H_OTHER = 0
export const H_HOST = 1
export const H_CONTENT_LENGTH = 2
export const H_TRANSFER_ENCODING = 3
export const H_CONNECTION = 4
export const H_EXPECT = 5

/** A field name seen before: one shared string for it, its bytes, and its kind. */
interface KnownName {
  name: string
  bytes: Uint8Array
  kind: number
}

/**
 * Names seen so far, by their text; bounded, so a flood of new names only
 * stops the caching. Each holds one string made for it, so a name read
 * again comes back as the same string object, its hash already computed
 * for the maps that key on it downstream (the environ's `HTTP_*` keys).
 */
const KNOWN_NAMES = new Map<string, KnownName>()
const KNOWN_NAMES_MAX = 2048

/**
 * The names of the last head parsed, on any connection, by position.
 * Clients send the same names in the same order on every request, and most
 * of a server's clients are alike, so a name is usually found here by
 * comparing its bytes, without making a string of it or hashing one; any
 * other name falls back to {@link KNOWN_NAMES}. Trailers read it but do not
 * change it.
 */
const lastNames: (KnownName | undefined)[] = []
const LAST_NAMES_MAX = 64

function fieldKind(name: string): number {
  // Gate on length and first letter so that most names need no lower-casing.
  const first = name.charCodeAt(0) | 0x20
  switch (name.length) {
    case 4:
      return first === 0x68 && name.toLowerCase() === 'host' ? H_HOST : H_OTHER
    case 6:
      return first === 0x65 && name.toLowerCase() === 'expect' ? H_EXPECT : H_OTHER
    case 10:
      return first === 0x63 && name.toLowerCase() === 'connection' ? H_CONNECTION : H_OTHER
    case 14:
      return first === 0x63 && name.toLowerCase() === 'content-length' ? H_CONTENT_LENGTH : H_OTHER
    case 17:
      return first === 0x74 && name.toLowerCase() === 'transfer-encoding' ? H_TRANSFER_ENCODING : H_OTHER
    default:
      return H_OTHER
  }
}

/** Where field text comes from, for {@link parseFields}. */
export const CLEAN = 0
export const SCANNED = 1
export const RAW = 2

/** Control characters other than HTAB, CR and LF: no field may hold one. */
const CTL_RE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/
/** Every control character but HTAB, CR and LF included: for values cut from unscanned text. */
const BAD_VALUE_CHAR_RE = /[\x00-\x08\x0a-\x1f\x7f]/

/**
 * Parses header fields in `text[start..end)` (each line ending in CRLF) into
 * `out` as flat name/value pairs, validating names and values. `text` is
 * the Latin-1 reading of `buf` from `base` on: per-character work reads the
 * bytes, which V8 does faster than `charCodeAt`.
 *
 * The head is one Latin-1 string (one copy out of the Buffer, where a copy
 * per field would cost far more), cut at each CR, which must be followed by
 * LF. How much is left to check depends on where the text comes from:
 * {@link CLEAN} text was checked for control characters four bytes at a time
 * (findCleanHead in clean-head.ts); {@link SCANNED} text went through the head scan,
 * which refused any LF without its CR, and is checked with one regular
 * expression; {@link RAW} text (trailers) has each value checked. When a
 * check fails, {@link diagnoseField} names the fault.
 *
 * When `special` is given, each field of a kind other than {@link H_OTHER}
 * adds two numbers to it: the field's index in `out`, then its kind.
 */
export function parseFields(
  buf: Buffer,
  base: number,
  text: string,
  start: number,
  end: number,
  maxFields: number,
  out: string[],
  source: number,
  special: number[] | null = null,
): string[] {
  const checkEachValue = source === RAW || (source === SCANNED && CTL_RE.test(start === 0 && end === text.length ? text : text.slice(start, end)))
  const scanned = source !== RAW
  let pos = start
  while (pos < end) {
    const lineEnd = text.indexOf('\r', pos)
    if (buf[base + lineEnd + 1] !== LF) diagnoseField(text.slice(pos, text.indexOf('\r\n', pos)))
    const n = out.length >> 1
    const last = n < LAST_NAMES_MAX ? lastNames[n] : undefined
    let name = ''
    let kind = H_OTHER
    let colon = -1
    if (last !== undefined) {
      const bytes = last.bytes
      const len = bytes.length
      const at = base + pos
      if (buf[at + len] === COLON) {
        let k = 0
        while (k < len && buf[at + k] === bytes[k]) k++
        if (k === len) {
          colon = pos + len
          name = last.name
          kind = last.kind
        }
      }
    }
    if (colon < 0) {
      // Not the name last seen at this position: one pass over its bytes checks them and finds the colon.
      let k = base + pos
      while (TOKEN[buf[k]!] === 1) k++
      colon = k - base
      if (colon === pos || buf[k] !== COLON) diagnoseField(text.slice(pos, lineEnd))
      name = text.slice(pos, colon)
      let known = KNOWN_NAMES.get(name)
      if (known === undefined && cacheTakes(KNOWN_NAMES, KNOWN_NAMES_MAX, name)) {
        // A string and bytes of its own: a slice of the head would keep the whole head alive, and a
        // Buffer.from copy is carved from Node's shared pool, whose 8 KiB block (other requests' bytes) it would keep.
        const own = latin1(buf, base + pos, base + colon)
        known = { name: own, bytes: new Uint8Array(buf.subarray(base + pos, base + colon)), kind: fieldKind(own) }
        KNOWN_NAMES.set(own, known)
      }
      if (known === undefined) kind = fieldKind(name)
      else {
        name = known.name
        kind = known.kind
        if (scanned && n < LAST_NAMES_MAX) lastNames[n] = known
      }
    }
    if (kind !== H_OTHER && special !== null) special.push(out.length, kind)
    // Trim optional whitespace (SP and HTAB only) around the value.
    let vs = colon + 1
    let ve = lineEnd
    let c = buf[base + vs]
    while (vs < ve && (c === SP || c === HTAB)) c = buf[base + ++vs]
    c = buf[base + ve - 1]
    while (ve > vs && (c === SP || c === HTAB)) c = buf[base + --ve - 1]
    const value = vs === ve ? '' : text.slice(vs, ve)
    if (checkEachValue && BAD_VALUE_CHAR_RE.test(value)) diagnoseField(text.slice(pos, lineEnd))
    if (out.length >= maxFields * 2) throw new ParseError(431, scanned ? `more than ${maxFields} header fields` : 'too many header and trailer fields')
    out.push(name, value)
    pos = lineEnd + 2
  }
  return out
}

/** Says what is wrong with a field line that failed the fast checks; always throws. */
function diagnoseField(line: string): never {
  const first = line.charCodeAt(0)
  if (first === SP || first === HTAB) throw new ParseError(400, 'obsolete line folding (a header line starting with whitespace) is not accepted')
  let i = 0
  while (i < line.length && TOKEN[line.charCodeAt(i)] === 1) i++
  const stop = line.charCodeAt(i)
  if (stop !== COLON) {
    if (stop === SP || stop === HTAB) throw new ParseError(400, 'whitespace between a header name and the colon')
    if (i === 0) throw new ParseError(400, 'empty header name')
    throw new ParseError(400, 'invalid character in a header name')
  }
  if (i === 0) throw new ParseError(400, 'empty header name')
  const name = line.slice(0, i)
  for (let k = i + 1; k < line.length; k++) {
    const b = line.charCodeAt(k)
    if (FIELD_VALUE[b] === 1) continue
    if (b === CR) throw new ParseError(400, `bare CR in the value of header ${name}`)
    if (b === 0) throw new ParseError(400, `NUL in the value of header ${name}`)
    throw new ParseError(400, `invalid character 0x${b.toString(16).padStart(2, '0')} in the value of header ${name}`)
  }
  throw new ParseError(400, `malformed header ${name}`)
}
