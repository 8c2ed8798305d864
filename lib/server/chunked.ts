/**
 * Chunked body decoding (RFC 9112 §7.1): chunk sizes, chunk extensions
 * (checked, never used), chunk data, the last chunk and the trailer section.
 *
 * Separate from the incremental parser because it is a state machine of its
 * own, entered once per chunked body: the parser hands it each read's bytes
 * while such a body is in progress, and takes over again once the trailer
 * section has ended. It reads one byte at a time (chunk data excepted), so a
 * body split anywhere across reads gets the same verdict.
 */
import { TOKEN } from '../gateway/headers.js'
import { ParseError } from './parse-error.js'
import type { ParserLimits } from './parser-limits.js'
import { FIELD_VALUE, RAW, latin1, parseFields } from './header-fields.js'

/** Where a chunked body's data goes (the parser's handler). */
export interface ChunkSink {
  /** A piece of chunk data (a view into the read's buffer). */
  onBody(chunk: Buffer): void
}

/** The trailers of a body that has none; shared, so never written to. */
export const NO_TRAILERS: string[] = []

const CR = 13
const LF = 10
const SP = 32
const HTAB = 9
const SEMI = 59

// Where in a chunked body the decoder is.
const C_SIZE = 0
const C_SIZE_WS = 1
const C_EXT = 2
const C_SIZE_LF = 3
const C_DATA = 4
const C_DATA_CR = 5
const C_DATA_LF = 6
const C_TRAILERS = 7
const C_DONE = 8

const HEX = (() => {
  const table = new Int8Array(256).fill(-1)
  for (let c = 0; c < 10; c++) table[0x30 + c] = c
  for (let c = 0; c < 6; c++) {
    table[0x41 + c] = 10 + c
    table[0x61 + c] = 10 + c
  }
  return table
})()

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')

/**
 * Decodes the chunked bodies of one connection, one after the other: the
 * parser calls {@link start} after each head that declares one, then
 * {@link decode} with the bytes that follow until {@link trailers} is set.
 */
export class ChunkedDecoder {
  /** The body's trailer fields, flat like headers, once the body has ended; null until then. */
  trailers: string[] | null = null
  private readonly limits: ParserLimits
  private readonly sink: ChunkSink
  private state = C_SIZE
  /** The current chunk's size while reading it, then its bytes still to come. */
  private remaining = 0
  /** Hex digits seen in the current chunk size line. */
  private digits = 0
  /** Declared chunk sizes so far, against `maxBodySize`. */
  private bodyTotal = 0
  /** Chunk extension bytes so far, against `maxChunkExtensionSize`. */
  private extTotal = 0
  /** Where inside a chunk extension the decoder is (EXT_*). */
  private extState = 0
  /** Data chunks seen in this body. */
  private chunkCount = 0
  /** Trailer fields allowed: the head's fields count towards the same `maxHeaderCount`. */
  private maxTrailerFields = 0
  private trailerBuf: Buffer | null = null
  private trailerLen = 0
  /** Set by {@link halt}: {@link decode} returns right after the callback that halted it. */
  private halted = false

  constructor(limits: ParserLimits, sink: ChunkSink) {
    this.limits = limits
    this.sink = sink
  }

  /** Starts a new body, after a head of `headFields` header fields. */
  start(headFields: number): void {
    this.trailers = null
    this.state = C_SIZE
    this.remaining = 0
    this.digits = 0
    this.bodyTotal = 0
    this.extTotal = 0
    this.chunkCount = 0
    this.maxTrailerFields = this.limits.maxHeaderCount - headFields
  }

  /**
   * Stops the current {@link decode} after the callback in progress: the
   * parser calls it when it is paused or destroyed, possibly from `onBody`.
   * (A flag rather than a return after every piece of data, which costs a
   * few nanoseconds per chunk.)
   */
  halt(): void {
    this.halted = true
  }

  /**
   * Decodes `data[off..end)` and returns the offset after the bytes it used:
   * all of them, or fewer when it was halted or the body has ended
   * ({@link trailers} is then set). Throws {@link ParseError} on any fault.
   */
  decode(data: Buffer, off: number, end: number): number {
    this.halted = false
    while (off < end) {
      const b = data[off]!
      switch (this.state) {
        case C_SIZE: {
          const digit = HEX[b]!
          if (digit >= 0) {
            if (++this.digits > 16) throw new ParseError(400, 'invalid chunk size: more than 16 hexadecimal digits')
            this.remaining = this.remaining * 16 + digit
            off++
            continue
          }
          if (this.digits === 0) throw new ParseError(400, 'invalid chunk size: expected hexadecimal digits')
          if (b === CR) this.state = C_SIZE_LF
          else if (b === SEMI) this.startExt()
          else if (b === SP || b === HTAB) this.state = C_SIZE_WS
          else throw new ParseError(400, 'invalid chunk size: expected hexadecimal digits')
          this.checkChunkSize()
          off++
          continue
        }
        case C_SIZE_WS:
          if (b === SP || b === HTAB) {
            this.countExt()
            off++
            continue
          }
          if (b !== SEMI) throw new ParseError(400, 'invalid chunk size line: whitespace after the size must lead to a chunk extension')
          this.startExt()
          off++
          continue
        case C_EXT:
          if (b === CR) {
            if (!EXT_MAY_END[this.extState]) throw new ParseError(400, 'invalid chunk extension: expected a name, or a value after "="')
            this.state = C_SIZE_LF
          } else {
            this.countExt()
            this.extState = nextExtState(this.extState, b)
          }
          off++
          continue
        case C_SIZE_LF:
          if (b !== LF) throw new ParseError(400, 'bare CR in chunk size line')
          off++
          this.digits = 0
          if (this.remaining === 0) {
            this.state = C_TRAILERS
            this.trailerLen = 0
          } else {
            const most = this.limits.maxChunkCount
            if (most !== undefined && ++this.chunkCount > most) throw new ParseError(413, `request body sent in more than ${most} chunks`)
            this.state = C_DATA
          }
          continue
        case C_DATA: {
          const n = Math.min(this.remaining, end - off)
          this.remaining -= n
          const chunk = data.subarray(off, off + n)
          off += n
          if (this.remaining === 0) this.state = C_DATA_CR
          this.sink.onBody(chunk)
          if (this.halted) return off
          continue
        }
        case C_DATA_CR:
          if (b !== CR) throw new ParseError(400, 'chunk data longer than its declared size')
          this.state = C_DATA_LF
          off++
          continue
        case C_DATA_LF:
          if (b !== LF) throw new ParseError(400, 'bare CR after chunk data')
          this.state = C_SIZE
          this.remaining = 0
          this.digits = 0
          off++
          continue
        case C_TRAILERS:
          return this.readTrailers(data, off, end)
        default:
          return off // C_DONE: nothing more belongs to this body
      }
    }
    return off
  }

  private checkChunkSize(): void {
    if (this.bodyTotal + this.remaining > this.limits.maxBodySize) {
      throw new ParseError(413, `request body larger than ${this.limits.maxBodySize} bytes`)
    }
    this.bodyTotal += this.remaining
  }

  private startExt(): void {
    this.state = C_EXT
    this.extState = EXT_BEFORE_NAME
    this.countExt()
  }

  private countExt(): void {
    if (++this.extTotal > this.limits.maxChunkExtensionSize) {
      throw new ParseError(400, `chunk extensions longer than ${this.limits.maxChunkExtensionSize} bytes`)
    }
  }

  /** Gathers the trailer section (after the last chunk) and parses it like header fields. */
  private readTrailers(data: Buffer, off: number, end: number): number {
    let buf = this.trailerBuf
    const max = this.limits.maxHeaderSize + 2
    const take = Math.min(end - off, max - this.trailerLen)
    if (buf === null || buf.length < this.trailerLen + take) {
      const next = Buffer.allocUnsafe(Math.max(this.trailerLen + take, 256, buf === null ? 0 : buf.length * 2))
      if (buf !== null) buf.copy(next, 0, 0, this.trailerLen)
      buf = next
      this.trailerBuf = buf
    }
    const scanStart = Math.max(0, this.trailerLen - 3)
    data.copy(buf, this.trailerLen, off, off + take)
    this.trailerLen += take
    // The section ends at the first empty line: CRLF at the start, or CRLFCRLF.
    let sectionEnd = -1
    if (this.trailerLen >= 2 && buf[0] === CR && buf[1] === LF) sectionEnd = 2
    else {
      const idx = buf.subarray(0, this.trailerLen).indexOf(CRLFCRLF, scanStart)
      if (idx >= 0) sectionEnd = idx + 4
    }
    if (sectionEnd < 0) {
      if (this.trailerLen >= max) throw new ParseError(431, `trailer section larger than ${this.limits.maxHeaderSize} bytes`)
      return end
    }
    const consumed = sectionEnd - (this.trailerLen - take)
    const trailers = sectionEnd === 2 ? NO_TRAILERS : parseFields(buf, 0, latin1(buf, 0, sectionEnd - 2), 0, sectionEnd - 2, this.maxTrailerFields, [], RAW)
    this.trailerLen = 0
    this.state = C_DONE
    this.trailers = trailers
    return off + consumed
  }
}

/*
 * Chunk extensions, exactly as RFC 9112 §7.1.1 has them:
 *   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   chunk-ext-name = token;  chunk-ext-val = token / quoted-string
 * The decoder only checks them (they carry nothing postern uses), one byte at
 * a time, so a request split anywhere gets the same verdict.
 */
const EXT_BEFORE_NAME = 0 // after ";" (BWS)
const EXT_NAME = 1
const EXT_AFTER_NAME = 2 // BWS after a name: "=" or ";" must follow
const EXT_BEFORE_VALUE = 3 // after "=" (BWS)
const EXT_TOKEN_VALUE = 4
const EXT_QUOTED = 5
const EXT_QUOTED_ESCAPE = 6
const EXT_AFTER_VALUE = 7 // BWS after a value: ";" must follow
const EXT_QUOTED_DONE = 8 // right after a quoted value's closing quote

/** Whether the size line may end (CRLF) in each extension state. */
const EXT_MAY_END = [false, true, false, false, true, false, false, false, true]

const DQUOTE = 0x22
const BACKSLASH = 0x5c
const EQUALS = 0x3d

/** The next extension state after byte `b`; throws a 400 for a byte the grammar has no place for. */
function nextExtState(state: number, b: number): number {
  const ws = b === SP || b === HTAB
  switch (state) {
    case EXT_BEFORE_NAME:
      if (ws) return state
      if (TOKEN[b] === 1) return EXT_NAME
      break
    case EXT_NAME:
    case EXT_AFTER_NAME:
      if (state === EXT_NAME && TOKEN[b] === 1) return state
      if (ws) return EXT_AFTER_NAME
      if (b === EQUALS) return EXT_BEFORE_VALUE
      if (b === SEMI) return EXT_BEFORE_NAME
      break
    case EXT_BEFORE_VALUE:
      if (ws) return state
      if (b === DQUOTE) return EXT_QUOTED
      if (TOKEN[b] === 1) return EXT_TOKEN_VALUE
      break
    case EXT_TOKEN_VALUE:
    case EXT_QUOTED_DONE:
    case EXT_AFTER_VALUE:
      if (state === EXT_TOKEN_VALUE && TOKEN[b] === 1) return state
      if (ws) return EXT_AFTER_VALUE
      if (b === SEMI) return EXT_BEFORE_NAME
      break
    case EXT_QUOTED:
      if (b === DQUOTE) return EXT_QUOTED_DONE
      if (b === BACKSLASH) return EXT_QUOTED_ESCAPE
      if (FIELD_VALUE[b] === 1) return state // qdtext: HTAB, SP, VCHAR but DQUOTE and "\\", obs-text
      break
    case EXT_QUOTED_ESCAPE:
      if (FIELD_VALUE[b] === 1) return EXT_QUOTED
      break
  }
  throw new ParseError(400, 'invalid chunk extension (RFC 9112 §7.1.1)')
}
