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
 *
 * This file holds the incremental part: gathering a head across reads and
 * the head-size rule, pipelining, pausing, and the body modes. A complete
 * head is parsed by request-head.ts (its field lines by header-fields.ts,
 * its fast scan by clean-head.ts), a chunked body by chunked.ts. The names
 * users import from here (`postern/server` re-exports them) stay exported
 * from this file.
 */
import { ChunkedDecoder, NO_TRAILERS } from './chunked.js'
import { findCleanHead } from './clean-head.js'
import { ParseError } from './parse-error.js'
import type { ParserLimits } from './parser-limits.js'
import { parseHead, type RequestHead } from './request-head.js'

export { ParseError, parseHead }
export type { ParserLimits, RequestHead }

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

const S_HEAD = 0
const S_BODY = 1
const S_CHUNKED = 2
const S_DEAD = 3

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
  /** Bytes of a Content-Length body still to come. */
  private remaining = 0
  /** Decodes chunked bodies; made at the first one, since most connections never send one. */
  private chunked: ChunkedDecoder | null = null

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
    this.chunked?.halt()
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

  /**
   * Stops for good and returns the bytes received but not parsed (those
   * after the head that paused the parser): the connection is switching
   * protocols and they belong to the next one.
   */
  takeLeftover(): Buffer | null {
    const rest = this.leftover
    this.destroy()
    return rest
  }

  /** Stops for good (the connection is closing); later bytes are ignored. */
  destroy(): void {
    this.state = S_DEAD
    this.headLen = 0
    this.leftover = null
    this.headBuf = null
    this.chunked?.halt()
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
      } else if (state === S_CHUNKED) {
        const chunked = this.chunked! // made by emitHead before it entered S_CHUNKED
        off = chunked.decode(data, off, end)
        const trailers = chunked.trailers
        if (trailers !== null) this.endBody(trailers)
      } else {
        return // S_DEAD
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
    if (head.contentLength > 0) {
      this.state = S_BODY
      this.remaining = head.contentLength
    } else if (head.contentLength < 0) {
      this.state = S_CHUNKED
      const chunked = this.chunked ?? (this.chunked = new ChunkedDecoder(this.limits, this.handler))
      chunked.start(head.headers.length / 2)
    }
    this.handler.onHead(head)
    if (head.contentLength === 0 && this.state === S_HEAD) this.handler.onBodyEnd(NO_TRAILERS)
  }

  private endBody(trailers: string[]): void {
    this.state = S_HEAD
    this.handler.onBodyEnd(trailers)
  }
}
