/**
 * postern's incremental HTTP/1.1 request parser (RFC 9112), strict by design.
 *
 * It reads straight from the socket's `Buffer`s: a request head is located
 * with native `indexOf` scans for LF, validated byte by byte once it is
 * complete, and only the pieces the server needs become strings. A head that
 * arrives in several reads is gathered in one buffer, scanning only new
 * bytes, so a client sending one byte at a time costs linear time.
 *
 * Anything ambiguous is refused rather than guessed at, because guessing is
 * what request smuggling exploits: bare CR or LF, obs-fold, whitespace before
 * a colon, Content-Length with Transfer-Encoding, differing lengths, unknown
 * codings, missing or repeated Host. Each fault ends the parser with a
 * {@link ParseError} that carries the status to answer with.
 *
 * The parser never throws out of {@link RequestParser.execute}: every fault,
 * expected or not, reaches the handler's `onError` exactly once.
 */
import { TOKEN } from '../gateway/headers.js'
import { ParseError } from './parse-error.js'

export { ParseError }

/** The parsed request head, everything the server needs to build `environ`. */
export interface RequestHead {
  method: string
  /** The request target exactly as sent. */
  target: string
  /** The path of the target (origin-form, or taken from absolute-form), not decoded. */
  path: string
  /** The query of the target without `?`, `''` when absent. */
  query: string
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 (and 1.x above it, per RFC 9110 §6.2). */
  minor: number
  /** Header fields as sent, flat: name, value, name, value, … (values trimmed). */
  headers: string[]
  /** The host: from an absolute-form target, else the Host header; `''` when absent (HTTP/1.0). */
  host: string
  /** Declared body length; -1 when the body is chunked; 0 when there is none. */
  contentLength: number
  /** Whether the connection may be reused after this request. */
  keepAlive: boolean
  /** Whether the client waits for `100 Continue` before sending the body. */
  expectContinue: boolean
}

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

/** What the parser calls as it recognises a request. */
export interface ParserHandler {
  /** A complete head. The body, if any, follows through onBody/onBodyEnd. */
  onHead(head: RequestHead): void
  /** A piece of the body (a view into the socket's buffer: copy it to keep it past the call if needed). */
  onBody(chunk: Buffer): void
  /** The body ended; `trailers` holds a chunked body's trailer fields, flat like headers. */
  onBodyEnd(trailers: string[]): void
  /** A fault; the parser ignores all input after it. */
  onError(error: ParseError): void
}

const CR = 13
const LF = 10
const SP = 32
const HTAB = 9
const COLON = 58
const SEMI = 59

const S_HEAD = 0
const S_BODY = 1
const S_CHUNK_SIZE = 2
const S_CHUNK_SIZE_WS = 3
const S_CHUNK_EXT = 4
const S_CHUNK_SIZE_LF = 5
const S_CHUNK_DATA = 6
const S_CHUNK_DATA_CR = 7
const S_CHUNK_DATA_LF = 8
const S_TRAILERS = 9
const S_DEAD = 10

/** Bytes allowed in a request target: visible ASCII but `#` (no fragments on the wire). */
const TARGET = (() => {
  const table = new Uint8Array(256)
  for (let c = 0x21; c <= 0x7e; c++) table[c] = 1
  table[0x23] = 0
  return table
})()

/** Bytes allowed in a field value: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5). */
const FIELD_VALUE = (() => {
  const table = new Uint8Array(256)
  table[HTAB] = 1
  for (let c = 0x20; c <= 0x7e; c++) table[c] = 1
  for (let c = 0x80; c <= 0xff; c++) table[c] = 1
  return table
})()

const HEX = (() => {
  const table = new Int8Array(256).fill(-1)
  for (let c = 0; c < 10; c++) table[0x30 + c] = c
  for (let c = 0; c < 6; c++) {
    table[0x41 + c] = 10 + c
    table[0x61 + c] = 10 + c
  }
  return table
})()

/** `Buffer#latin1Slice`: the fastest way from bytes to a one-byte string. */
type FastBuffer = Buffer & { latin1Slice(start: number, end: number): string }
const latin1 = (buf: Buffer, start: number, end: number): string => (buf as FastBuffer).latin1Slice(start, end)

/** The last Host value that passed {@link HOST_RE}. */
let lastValidHost = ''

/** Hosts are `uri-host [ ":" port ]` (RFC 3986): no spaces, slashes, userinfo. */
const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?$/

/** Field names the parser acts on, by lower-cased name. */
const H_OTHER = 0
const H_HOST = 1
const H_CONTENT_LENGTH = 2
const H_TRANSFER_ENCODING = 3
const H_CONNECTION = 4
const H_EXPECT = 5

/** Field names seen so far → their kind; bounded, so a flood of new names only stops the caching. */
const KNOWN_NAMES = new Map<string, number>()
const KNOWN_NAMES_MAX = 2048

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

/**
 * An incremental request parser for one connection. Feed it every read with
 * {@link execute}; it calls the handler for each head, body piece, body end
 * and fault. The handler may {@link pause} it (the server does so while too
 * many responses are pending); unconsumed bytes are kept until {@link resume}.
 */
export class RequestParser {
  private readonly limits: ParserLimits
  private readonly handler: ParserHandler
  private state = S_HEAD
  private paused = false
  /** Bytes received while paused, or left when the parser paused mid-read. */
  private leftover: Buffer | null = null

  // A head arriving over several reads is gathered here.
  private headBuf: Buffer | null = null
  private headLen = 0
  /** Where the LF scan continues, relative to the head's start. */
  private scanFrom = 0
  /** Where the current line starts, relative to the head's start. */
  private lineStart = 0
  private requestLineEnd = -1

  // Body state.
  private remaining = 0
  /** Hex digits seen in the current chunk size line. */
  private digits = 0
  private bodyTotal = 0
  private chunkExtTotal = 0
  /** Where inside a chunk extension the parser is (EXT_*). */
  private extState = 0
  /** Data chunks seen in the current chunked body. */
  private chunkCount = 0
  private trailerBuf: Buffer | null = null
  /** Header fields of the current request: trailers count towards the same limit. */
  private headFields = 0
  private trailerLen = 0

  constructor(limits: ParserLimits, handler: ParserHandler) {
    this.limits = limits
    this.handler = handler
  }

  /** Whether a request is partly received (some head bytes, or a body in progress). */
  get midRequest(): boolean {
    return (this.state !== S_HEAD && this.state !== S_DEAD) || this.headLen > 0
  }

  /** Whether bytes wait for {@link resume}. */
  get hasLeftover(): boolean {
    return this.leftover !== null
  }

  /** Whether the parser stopped for good after a fault. */
  get dead(): boolean {
    return this.state === S_DEAD
  }

  /** Stops parsing after the current callback; later bytes are kept. */
  pause(): void {
    this.paused = true
  }

  /** Continues with the bytes kept while paused. */
  resume(): void {
    if (!this.paused) return
    this.paused = false
    const rest = this.leftover
    if (rest !== null) {
      this.leftover = null
      this.execute(rest)
    }
  }

  /** Stops for good (the connection is closing); later bytes are ignored. */
  destroy(): void {
    this.state = S_DEAD
    this.headLen = 0
    this.leftover = null
    this.headBuf = null
  }

  /** Parses one read's bytes. Never throws: faults go to `onError`. */
  execute(data: Buffer): void {
    if (this.state === S_DEAD) return
    if (this.paused) {
      this.leftover = this.leftover === null ? data : Buffer.concat([this.leftover, data])
      return
    }
    try {
      this.run(data)
    } catch (error) {
      const fault = error instanceof ParseError ? error : new ParseError(400, 'malformed request')
      this.state = S_DEAD
      this.leftover = null
      this.handler.onError(fault)
    }
  }

  private run(data: Buffer): void {
    const end = data.length
    let off = 0
    while (off < end) {
      if (this.paused) {
        this.leftover = data.subarray(off)
        return
      }
      const state = this.state
      if (state === S_HEAD) {
        off = this.readHead(data, off, end)
        if (off < 0) return
      } else if (state === S_BODY) {
        const n = Math.min(this.remaining, end - off)
        this.remaining -= n
        const chunk = data.subarray(off, off + n)
        off += n
        this.handler.onBody(chunk)
        if (this.remaining === 0) this.endBody([])
      } else if (state === S_DEAD) {
        return
      } else {
        off = this.readChunked(data, off, end)
      }
    }
  }

  /** Reads head bytes; returns the offset after the head, or -1 when more bytes are needed. */
  private readHead(data: Buffer, off: number, end: number): number {
    if (this.headLen === 0) {
      // Fastest path: the whole head is in this read and holds no control
      // character but CRLF pairs and tabs, checked four bytes at a time.
      // Anything else takes the line-by-line path, which names the fault.
      if (data[off] !== CR) {
        const headEnd = findCleanHead(data, off, end, this.limits.maxHeaderSize + 2)
        if (headEnd >= 0) {
          this.emitHead(data, off, headEnd, true)
          return headEnd
        }
      }
      // Line by line: the head in this read, or its start.
      const headEnd = this.scan(data, off, end, off)
      if (headEnd >= 0) {
        this.resetScan()
        this.emitHead(data, off, headEnd)
        return headEnd
      }
      this.keepPartialHead(data, off, end)
      return -1
    }
    // Slow path: append to the gathered head, scanning only the new bytes.
    const before = this.headLen
    const room = this.limits.maxHeaderSize + 2 - before
    const take = Math.min(end - off, room)
    const buf = this.growHead(before + take)
    data.copy(buf, before, off, off + take)
    this.headLen = before + take
    const headEnd = this.scan(buf, this.scanFrom, this.headLen, 0)
    if (headEnd < 0) {
      this.checkPartialHead(buf, 0, this.headLen)
      if (take < end - off) this.checkHeadSize(this.limits.maxHeaderSize + 1)
      return -1
    }
    this.resetScan()
    this.headLen = 0
    this.emitHead(buf, 0, headEnd)
    this.headBuf = buf.length > 4096 ? null : buf
    return off + (headEnd - before)
  }

  private keepPartialHead(data: Buffer, off: number, end: number): void {
    const len = end - off
    this.checkPartialHead(data, off, end)
    const buf = this.growHead(len)
    data.copy(buf, 0, off, end)
    this.headLen = len
    // scan positions were relative to `off`; they stay valid relative to the copy
  }

  private growHead(size: number): Buffer {
    let buf = this.headBuf
    if (buf === null || buf.length < size) {
      const next = Buffer.allocUnsafe(Math.max(size, Math.min(this.limits.maxHeaderSize + 4, 1024), buf === null ? 0 : buf.length * 2))
      if (buf !== null && this.headLen > 0) buf.copy(next, 0, 0, this.headLen)
      buf = next
      this.headBuf = buf
    }
    return buf
  }

  private resetScan(): void {
    this.scanFrom = 0
    this.lineStart = 0
    this.requestLineEnd = -1
  }

  /**
   * Finds the end of the head (the index after the empty line) in
   * `buf[from..end)`, where the head starts at `base`. Rejects bare LF at
   * once, so a client cannot make the server wait for a CRLF that never comes.
   */
  private scan(buf: Buffer, from: number, end: number, base: number): number {
    let i = base + this.scanFrom
    if (i < from) i = from
    let lineStart = base + this.lineStart
    for (;;) {
      const lf = buf.indexOf(LF, i)
      if (lf < 0 || lf >= end) {
        this.scanFrom = end - base
        this.lineStart = lineStart - base
        if (this.requestLineEnd < 0) this.checkRequestLine(end - lineStart)
        return -1
      }
      if (lf === 0 || buf[lf - 1] !== CR || lf - 1 < lineStart) {
        throw new ParseError(400, 'bare LF in the request head: lines must end with CRLF')
      }
      if (lf - 1 === lineStart) {
        if (this.requestLineEnd < 0) {
          // An empty line before the request line: RFC 9112 §2.2 lets us skip it.
          if (lineStart - base >= 8) throw new ParseError(400, 'too many empty lines before the request line')
          lineStart = lf + 1
          i = lineStart
          continue
        }
        return lf + 1
      }
      if (this.requestLineEnd < 0) {
        this.checkRequestLine(lf - 1 - lineStart)
        this.requestLineEnd = lf - base
      }
      lineStart = lf + 1
      i = lineStart
      if (lineStart - base > this.limits.maxHeaderSize) this.checkHeadSize(lineStart - base)
    }
  }

  private checkRequestLine(length: number): void {
    if (length > this.limits.maxTargetLength + 32 || length > this.limits.maxHeaderSize) {
      throw new ParseError(414, `request target longer than ${this.limits.maxTargetLength} bytes`)
    }
  }

  /**
   * The size rule for a head still arriving in `buf[start..end)`. A head is
   * measured without its final empty line (at most `maxHeaderSize` bytes, so
   * at most that + 2 with it), the same whether it came in one read or many:
   * a partial head may be one byte over only when that byte is the CR of the
   * final empty line.
   */
  private checkPartialHead(buf: Buffer, start: number, end: number): void {
    const max = this.limits.maxHeaderSize
    const len = end - start
    if (len <= max) return
    if (len === max + 1 && buf[end - 1] === CR && buf[end - 2] === LF && buf[end - 3] === CR) return
    this.checkHeadSize(len)
  }

  /** Throws 431 (414 while still in the request line) when a head without its final empty line is over `maxHeaderSize`. */
  private checkHeadSize(length: number): void {
    if (length > this.limits.maxHeaderSize) {
      if (this.requestLineEnd < 0) throw new ParseError(414, `request line longer than ${this.limits.maxHeaderSize} bytes`)
      throw new ParseError(431, `request head larger than ${this.limits.maxHeaderSize} bytes`)
    }
  }

  /** Parses and validates a complete head in `buf[start..end)` and hands it on. */
  private emitHead(buf: Buffer, start: number, end: number, clean = false): void {
    if (end - start > this.limits.maxHeaderSize + 2) throw new ParseError(431, `request head larger than ${this.limits.maxHeaderSize} bytes`)
    const head = parseHead(buf, start, end, this.limits, clean)
    this.headFields = head.headers.length / 2
    if (head.contentLength > 0) {
      this.state = S_BODY
      this.remaining = head.contentLength
    } else if (head.contentLength < 0) {
      this.state = S_CHUNK_SIZE
      this.remaining = 0
      this.digits = 0
      this.bodyTotal = 0
      this.chunkExtTotal = 0
      this.chunkCount = 0
    }
    this.handler.onHead(head)
    if (head.contentLength === 0 && this.state === S_HEAD) this.handler.onBodyEnd(NO_TRAILERS)
  }

  private endBody(trailers: string[]): void {
    this.state = S_HEAD
    this.handler.onBodyEnd(trailers)
  }

  /** The chunked body state machine (RFC 9112 §7.1). */
  private readChunked(data: Buffer, off: number, end: number): number {
    while (off < end) {
      const state = this.state
      const b = data[off]!
      switch (state) {
        case S_CHUNK_SIZE: {
          const digit = HEX[b]!
          if (digit >= 0) {
            if (++this.digits > 16) throw new ParseError(400, 'invalid chunk size: more than 16 hexadecimal digits')
            this.remaining = this.remaining * 16 + digit
            off++
            continue
          }
          if (this.digits === 0) throw new ParseError(400, 'invalid chunk size: expected hexadecimal digits')
          if (b === CR) this.state = S_CHUNK_SIZE_LF
          else if (b === SEMI) this.startExt()
          else if (b === SP || b === HTAB) this.state = S_CHUNK_SIZE_WS
          else throw new ParseError(400, 'invalid chunk size: expected hexadecimal digits')
          this.checkChunkSize()
          off++
          continue
        }
        case S_CHUNK_SIZE_WS:
          if (b === SP || b === HTAB) {
            this.countExt()
            off++
            continue
          }
          if (b !== SEMI) throw new ParseError(400, 'invalid chunk size line: whitespace after the size must lead to a chunk extension')
          this.startExt()
          off++
          continue
        case S_CHUNK_EXT:
          if (b === CR) {
            if (!EXT_MAY_END[this.extState]) throw new ParseError(400, 'invalid chunk extension: expected a name, or a value after "="')
            this.state = S_CHUNK_SIZE_LF
          } else {
            this.countExt()
            this.extState = nextExtState(this.extState, b)
          }
          off++
          continue
        case S_CHUNK_SIZE_LF:
          if (b !== LF) throw new ParseError(400, 'bare CR in chunk size line')
          off++
          this.digits = 0
          if (this.remaining === 0) {
            this.state = S_TRAILERS
            this.trailerLen = 0
          } else {
            const most = this.limits.maxChunkCount
            if (most !== undefined && ++this.chunkCount > most) throw new ParseError(413, `request body sent in more than ${most} chunks`)
            this.state = S_CHUNK_DATA
          }
          continue
        case S_CHUNK_DATA: {
          const n = Math.min(this.remaining, end - off)
          this.remaining -= n
          const chunk = data.subarray(off, off + n)
          off += n
          if (this.remaining === 0) this.state = S_CHUNK_DATA_CR
          this.handler.onBody(chunk)
          if (this.paused || this.state === S_DEAD) return off
          continue
        }
        case S_CHUNK_DATA_CR:
          if (b !== CR) throw new ParseError(400, 'chunk data longer than its declared size')
          this.state = S_CHUNK_DATA_LF
          off++
          continue
        case S_CHUNK_DATA_LF:
          if (b !== LF) throw new ParseError(400, 'bare CR after chunk data')
          this.state = S_CHUNK_SIZE
          this.remaining = 0
          this.digits = 0
          off++
          continue
        case S_TRAILERS:
          return this.readTrailers(data, off, end)
        default:
          return end
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
    this.state = S_CHUNK_EXT
    this.extState = EXT_BEFORE_NAME
    this.countExt()
  }

  private countExt(): void {
    if (++this.chunkExtTotal > this.limits.maxChunkExtensionSize) {
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
    const trailers = sectionEnd === 2 ? NO_TRAILERS : parseFields(latin1(buf, 0, sectionEnd - 2), 0, sectionEnd - 2, this.limits.maxHeaderCount - this.headFields, [], RAW)
    this.trailerLen = 0
    this.endBody(trailers)
    return off + consumed
  }
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')

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
function findCleanHead(buf: Buffer, start: number, end: number, max: number): number {
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
const NO_TRAILERS: string[] = []

/*
 * Chunk extensions, exactly as RFC 9112 §7.1.1 has them:
 *   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   chunk-ext-name = token;  chunk-ext-val = token / quoted-string
 * The parser only checks them (they carry nothing postern uses), one byte at
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

/** Where field text comes from, for {@link parseFields}. */
const CLEAN = 0
const SCANNED = 1
const RAW = 2

/** Control characters other than HTAB, CR and LF: no field may hold one. */
const CTL_RE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/
/** Every control character but HTAB, CR and LF included: for values cut from unscanned text. */
const BAD_VALUE_CHAR_RE = /[\x00-\x08\x0a-\x1f\x7f]/

/**
 * Parses header fields in `text[start..end)` (each line ending in CRLF) into
 * `out` as flat name/value pairs, validating names and values.
 *
 * The head is one Latin-1 string (one copy out of the Buffer, where a copy
 * per field would cost far more), cut at each CR, which must be followed by
 * LF. How much is left to check depends on where the text comes from:
 * {@link CLEAN} text was checked for control characters four bytes at a time
 * ({@link findCleanHead}); {@link SCANNED} text went through the head scan,
 * which refused any LF without its CR, and is checked with one regular
 * expression; {@link RAW} text (trailers) has each value checked. When a
 * check fails, {@link diagnoseField} names the fault.
 */
function parseFields(text: string, start: number, end: number, maxFields: number, out: string[], source: number, special: number[] | null = null): string[] {
  const checkEachValue = source === RAW || (source === SCANNED && CTL_RE.test(start === 0 && end === text.length ? text : text.slice(start, end)))
  const scanned = source !== RAW
  let pos = start
  while (pos < end) {
    const lineEnd = text.indexOf('\r', pos)
    if (text.charCodeAt(lineEnd + 1) !== LF) diagnoseField(text.slice(pos, text.indexOf('\r\n', pos)))
    const colon = text.indexOf(':', pos)
    if (colon <= pos || colon > lineEnd) diagnoseField(text.slice(pos, lineEnd))
    const name = text.slice(pos, colon)
    // Names seen before are known tokens with a known meaning: no character loop.
    let kind = KNOWN_NAMES.get(name)
    if (kind === undefined) {
      for (let k = pos; k < colon; k++) if (TOKEN[text.charCodeAt(k)] !== 1) diagnoseField(text.slice(pos, lineEnd))
      kind = fieldKind(name)
      if (KNOWN_NAMES.size < KNOWN_NAMES_MAX) KNOWN_NAMES.set(name, kind)
    }
    if (kind !== H_OTHER && special !== null) special.push(out.length, kind)
    // Trim optional whitespace (SP and HTAB only) around the value.
    let vs = colon + 1
    let ve = lineEnd
    let c = text.charCodeAt(vs)
    while (vs < ve && (c === SP || c === HTAB)) c = text.charCodeAt(++vs)
    c = text.charCodeAt(ve - 1)
    while (ve > vs && (c === SP || c === HTAB)) c = text.charCodeAt(--ve - 1)
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

/**
 * Parses a complete request head `buf[start..end)` (ending with the empty
 * line) and applies the message framing rules of RFC 9112 §6.
 * Throws {@link ParseError} on any fault.
 */
export function parseHead(buf: Buffer, start: number, end: number, limits: ParserLimits, clean = false): RequestHead {
  const text = latin1(buf, start, end)
  let i = 0
  while (text.charCodeAt(i) === CR && text.charCodeAt(i + 1) === LF) i += 2 // leading empty lines, already bounded by the scan

  // method SP request-target SP HTTP-version CRLF
  const methodStart = i
  while (TOKEN[text.charCodeAt(i)] === 1) i++
  if (i === methodStart || text.charCodeAt(i) !== SP) {
    throw new ParseError(400, i === methodStart ? 'malformed request line: expected a method' : 'malformed request line: invalid character in the method')
  }
  const method = methodString(text, methodStart, i)
  i++
  const targetStart = i
  while (TARGET[text.charCodeAt(i)] === 1) i++
  const targetEnd = i
  if (targetEnd === targetStart) throw new ParseError(400, 'malformed request line: expected a request target after one space')
  const stop = text.charCodeAt(i)
  if (stop !== SP) {
    if (stop === 0x23) throw new ParseError(400, 'a request target must not hold a fragment (#)')
    throw new ParseError(400, stop === CR ? 'malformed request line: expected an HTTP version' : 'invalid character in the request target')
  }
  if (targetEnd - targetStart > limits.maxTargetLength) throw new ParseError(414, `request target longer than ${limits.maxTargetLength} bytes`)
  i++
  // HTTP-version = "HTTP/" DIGIT "." DIGIT, followed by CRLF
  if (
    text.charCodeAt(i) !== 0x48 || text.charCodeAt(i + 1) !== 0x54 || text.charCodeAt(i + 2) !== 0x54 || text.charCodeAt(i + 3) !== 0x50 ||
    text.charCodeAt(i + 4) !== 0x2f || !isDigit(text.charCodeAt(i + 5)) || text.charCodeAt(i + 6) !== 0x2e || !isDigit(text.charCodeAt(i + 7)) ||
    text.charCodeAt(i + 8) !== CR || text.charCodeAt(i + 9) !== LF
  ) {
    throw new ParseError(400, 'malformed request line: expected HTTP/1.1 or HTTP/1.0 after one space, then CRLF')
  }
  const major = text.charCodeAt(i + 5) - 0x30
  const minorDigit = text.charCodeAt(i + 7) - 0x30
  if (major !== 1) throw new ParseError(505, `HTTP/${major}.${minorDigit} is not supported: use HTTP/1.1`)
  const minor = minorDigit === 0 ? 0 : 1
  if (i + 8 - methodStart > limits.maxTargetLength + 32) throw new ParseError(414, `request target longer than ${limits.maxTargetLength} bytes`)
  i += 10

  const special: number[] = []
  const headers = parseFields(text, i, text.length - 2, limits.maxHeaderCount, [], clean ? CLEAN : SCANNED, special)

  // Framing and connection semantics.
  let host: string | null = null
  let hostCount = 0
  let contentLength = -2
  let chunked = false
  let transferEncoding: string | null = null
  let close = false
  let keepAlive10 = false
  let expectContinue = false
  // Only the fields that frame the message or the connection, as parseFields found them.
  for (let n = 0; n < special.length; n += 2) {
    const value = headers[special[n]! + 1]!
    const kind = special[n + 1]!
    switch (kind) {
      case H_HOST:
        hostCount++
        host = value
        break
      case H_CONTENT_LENGTH: {
        const length = parseContentLength(value)
        if (contentLength !== -2 && contentLength !== length) throw new ParseError(400, 'differing Content-Length values')
        contentLength = length
        break
      }
      case H_TRANSFER_ENCODING:
        transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`
        break
      case H_CONNECTION:
        if (value === 'keep-alive') keepAlive10 = true
        else if (value === 'close') close = true
        else for (const option of value.toLowerCase().split(',')) {
          const token = option.trim()
          if (token === 'close') close = true
          else if (token === 'keep-alive') keepAlive10 = true
        }
        break
      case H_EXPECT:
        // RFC 9110 §10.1.1: an HTTP/1.0 client cannot take a 1xx; its expectation is ignored.
        if (minor === 0) break
        if (value.toLowerCase() === '100-continue') expectContinue = true
        else throw new ParseError(417, `unsupported expectation: ${value}`)
        break
    }
  }

  if (transferEncoding !== null) {
    if (minor === 0) throw new ParseError(400, 'Transfer-Encoding is not allowed in an HTTP/1.0 request')
    if (contentLength !== -2) throw new ParseError(400, 'both Content-Length and Transfer-Encoding: the body length is ambiguous')
    chunked = checkTransferEncoding(transferEncoding)
  }

  // postern is an origin server, not a tunnel: every CONNECT gets 501, whatever its target, so
  // no CONNECT (RFC 9112 §3.2.3: authority-form only) ever reaches an app as a normal request.
  if (method === 'CONNECT') throw new ParseError(501, 'CONNECT is not supported')
  const target = text.slice(targetStart, targetEnd)
  let path: string
  let query = ''
  const first = text.charCodeAt(targetStart)
  if (first === 0x2f) {
    // origin-form
    const q = target.indexOf('?')
    if (q < 0) path = target
    else {
      path = target.slice(0, q)
      query = target.slice(q + 1)
    }
  } else if (first === 0x2a && targetEnd - targetStart === 1) {
    if (method !== 'OPTIONS') throw new ParseError(400, 'the asterisk-form target (*) is only for OPTIONS')
    path = '*'
  } else {
    const absolute = parseAbsoluteForm(target)
    if (absolute === null) {
      throw new ParseError(400, 'malformed request target: expected a path starting with /')
    }
    // RFC 9112 §3.2.2: the target's authority replaces the Host header.
    if (minor === 1 && hostCount !== 1) throw new ParseError(400, hostCount === 0 ? 'missing Host header' : 'more than one Host header')
    host = absolute.host
    hostCount = 1
    path = absolute.path
    query = absolute.query
  }
  if (minor === 1 && hostCount !== 1) throw new ParseError(400, hostCount === 0 ? 'missing Host header (required in HTTP/1.1)' : 'more than one Host header')
  if (hostCount > 1) throw new ParseError(400, 'more than one Host header')
  if (host !== null && host !== lastValidHost) {
    if (!HOST_RE.test(host)) throw new ParseError(400, 'invalid Host header')
    lastValidHost = host // most connections name the same host on every request
  }

  if (contentLength > limits.maxBodySize) throw new ParseError(413, `request body larger than ${limits.maxBodySize} bytes`)

  return {
    method,
    target,
    path,
    query,
    minor,
    headers,
    host: host ?? '',
    contentLength: chunked ? -1 : contentLength < 0 ? 0 : contentLength,
    keepAlive: minor === 0 ? keepAlive10 && !close : !close,
    expectContinue,
  }
}

const METHODS = new Map<string, string>(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'].map((m) => [m, m]))

/** Common methods come back as the same interned string, saving an allocation. */
function methodString(text: string, start: number, end: number): string {
  const len = end - start
  if (len === 3 && text.charCodeAt(start) === 0x47 && text.charCodeAt(start + 1) === 0x45 && text.charCodeAt(start + 2) === 0x54) return 'GET'
  const method = text.slice(start, end)
  return METHODS.get(method) ?? method
}

function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39
}

/** `Content-Length = 1*DIGIT`, also as a list of identical values (RFC 9110 §8.6). */
function parseContentLength(value: string): number {
  let length = -1
  for (const part of value.includes(',') ? value.split(',') : [value]) {
    const digits = part.trim()
    if (!/^[0-9]{1,15}$/.test(digits)) throw new ParseError(400, `malformed Content-Length: ${JSON.stringify(value)}`)
    const n = Number(digits)
    if (length !== -1 && n !== length) throw new ParseError(400, 'differing Content-Length values')
    length = n
  }
  return length
}

/**
 * Transfer-Encoding must be exactly `chunked` as the final (and here the only)
 * coding: chunked anywhere but last, or missing, leaves the body length
 * unknowable (400, RFC 9112 §6.3); decoding other codings before it is not
 * implemented (501).
 */
function checkTransferEncoding(value: string): true {
  const codings: string[] = []
  for (const element of value.split(',')) {
    const coding = element.trim().toLowerCase()
    if (coding !== '') codings.push(coding)
  }
  if (codings.length === 0) throw new ParseError(400, 'empty Transfer-Encoding')
  const chunkedAt = codings.indexOf('chunked')
  if (chunkedAt !== codings.length - 1 || codings.lastIndexOf('chunked') !== chunkedAt) {
    // RFC 9112 §6.3: without chunked as the final coding the body length is unknowable.
    throw new ParseError(400, 'chunked must be the final transfer coding, applied once')
  }
  for (const coding of codings) {
    if (coding !== 'chunked') throw new ParseError(501, `unsupported transfer coding: ${JSON.stringify(coding)}`)
  }
  return true
}

/** `http://host[:port]/path?query` → its parts, or null when not absolute-form. */
function parseAbsoluteForm(target: string): { host: string; path: string; query: string } | null {
  const match = /^https?:\/\/([^/?@]*)([^?]*)(?:\?(.*))?$/i.exec(target)
  if (match === null || match[1] === '') return null
  const path = match[2] === '' ? '/' : match[2]!
  if (path[0] !== '/') return null
  return { host: match[1]!, path, query: match[3] ?? '' }
}
