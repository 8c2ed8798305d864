/**
 * The request head (RFC 9112 §2–§3, §6): parsing a complete head into a
 * {@link RequestHead} and deciding everything the head decides: the request
 * line, the target's form, Host, and how the body is framed
 * (Content-Length, Transfer-Encoding), keep-alive and `Expect`.
 *
 * Separate from the incremental parser because it is a pure function of one
 * complete head: it neither knows nor cares how the bytes arrived, so it can
 * be called (and tested, and benchmarked) on its own. Field lines are parsed
 * by header-fields.ts, shared with trailers.
 */
import { TOKEN } from '../gateway/headers.js'
import { ParseError } from './parse-error.js'
import type { ParserLimits } from './parser-limits.js'
import { CLEAN, H_CONNECTION, H_CONTENT_LENGTH, H_EXPECT, H_HOST, H_TRANSFER_ENCODING, SCANNED, latin1, parseFields } from './header-fields.js'

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

const CR = 13
const LF = 10
const SP = 32

/** Bytes allowed in a request target: visible ASCII but `#` (no fragments on the wire). */
const TARGET = (() => {
  const table = new Uint8Array(256)
  for (let c = 0x21; c <= 0x7e; c++) table[c] = 1
  table[0x23] = 0
  return table
})()

/** The last Host value that passed {@link HOST_RE}. */
let lastValidHost = ''

/** Hosts are `uri-host [ ":" port ]` (RFC 3986): no spaces, slashes, userinfo. */
const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?$/

/**
 * Parses a complete request head `buf[start..end)` (ending with the empty
 * line) and applies the message framing rules of RFC 9112 §6.
 * `clean` says the head already passed findCleanHead (clean-head.ts), so
 * its fields need no check for control characters. Throws
 * {@link ParseError} on any fault.
 */
export function parseHead(buf: Buffer, start: number, end: number, limits: ParserLimits, clean = false): RequestHead {
  const text = latin1(buf, start, end)
  let i = 0
  while (text.charCodeAt(i) === CR && text.charCodeAt(i + 1) === LF) i += 2 // leading empty lines, already bounded by the scan

  // method SP request-target SP HTTP-version CRLF
  // Character loops read the bytes (`buf[start + i]`), which V8 does faster than `charCodeAt`.
  const methodStart = i
  while (TOKEN[buf[start + i]!] === 1) i++
  if (i === methodStart || text.charCodeAt(i) !== SP) {
    throw new ParseError(400, i === methodStart ? 'malformed request line: expected a method' : 'malformed request line: invalid character in the method')
  }
  const method = methodString(text, methodStart, i)
  i++
  const targetStart = i
  while (TARGET[buf[start + i]!] === 1) i++
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
  const v = start + i // the version, in buf
  if (
    buf[v] !== 0x48 ||
    buf[v + 1] !== 0x54 ||
    buf[v + 2] !== 0x54 ||
    buf[v + 3] !== 0x50 ||
    buf[v + 4] !== 0x2f ||
    !isDigit(buf[v + 5]) ||
    buf[v + 6] !== 0x2e ||
    !isDigit(buf[v + 7]) ||
    buf[v + 8] !== CR ||
    buf[v + 9] !== LF
  ) {
    throw new ParseError(400, 'malformed request line: expected HTTP/1.1 or HTTP/1.0 after one space, then CRLF')
  }
  const major = buf[v + 5] - 0x30
  const minorDigit = buf[v + 7] - 0x30
  if (major !== 1) throw new ParseError(505, `HTTP/${major}.${minorDigit} is not supported: use HTTP/1.1`)
  const minor = minorDigit === 0 ? 0 : 1
  if (i + 8 - methodStart > limits.maxTargetLength + 32) throw new ParseError(414, `request target longer than ${limits.maxTargetLength} bytes`)
  i += 10

  const special: number[] = []
  const headers = parseFields(buf, start, text, i, text.length - 2, limits.maxHeaderCount, [], clean ? CLEAN : SCANNED, special)

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
        else
          for (const option of value.toLowerCase().split(',')) {
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
    contentLength: chunked ? -1 : Math.max(contentLength, 0),
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
