/**
 * Generators of HTTP/1.1 requests for the parser fuzzer (`npm run fuzz`) and
 * its property test: valid requests with the exact events the parser must
 * report for them, the mutations that turn them into hostile input, and the
 * random cut points that split bytes into reads. Kept apart from the
 * properties so the in-process, differential and live parts (and the tap
 * test) all draw from one definition of "a valid request".
 *
 * Valid means valid by RFC 9110/9112, including the corners a lenient or
 * differently-strict parser might get wrong: any token as a method,
 * HTTP/1.x minors above 1, absolute- and asterisk-form targets, obs-text in
 * values, a Content-Length list of equal values, chunk extensions with
 * quoted strings and BWS, trailers, empty lines before the request line.
 * Each request carries `tags` naming those corners, so a disagreement with
 * another parser can be traced to one (see bench/fuzz-llhttp.ts).
 */
import fc from 'fast-check'
import type { RequestHead } from '../lib/server/parser.js'

/** What the parser reports, with body pieces merged so that splits do not show. */
export type Event = ({ kind: 'head' } & RequestHead) | { kind: 'body'; data: string } | { kind: 'end'; trailers: string[] } | { kind: 'error'; status: number }

/** One generated request: its bytes (Latin-1), the events it must give, and its corners. */
export interface Generated {
  bytes: string
  events: Event[]
  tags: string[]
}

/** A generated pipeline: the bytes of 1–3 requests, their events, and each request's tags. */
export interface Pipeline {
  bytes: Buffer
  events: Event[]
  tags: string[][]
}

const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
export const token = (max: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...TCHAR), minLength: 1, maxLength: max })
const PCHAR = "abcXYZ019-._~!$&'()*+,;=:@"
/** A path segment: pchar, with valid percent-escapes now and then. */
const segment = fc.string({
  unit: fc.oneof({ arbitrary: fc.constantFrom(...PCHAR), weight: 12 }, { arbitrary: fc.constantFrom('%20', '%41', '%c3%a9', '%2F'), weight: 1 }),
  maxLength: 8,
})
const queryText = fc.string({ unit: fc.constantFrom(...PCHAR, '/', '?', '%20'), maxLength: 12 })
/** VCHAR, and now and then obs-text (0x80–0xFF), which RFC 9110 §5.5 still allows in values. */
const vchar = fc
  .oneof({ arbitrary: fc.integer({ min: 0x21, max: 0x7e }), weight: 20 }, { arbitrary: fc.integer({ min: 0x80, max: 0xff }), weight: 1 })
  .map((c) => String.fromCharCode(c))
/** Field values: visible characters with inner spaces and tabs, no leading or trailing whitespace. */
export const fieldValue = fc.oneof(
  fc.constant(''),
  fc.tuple(vchar, fc.string({ unit: fc.oneof(vchar, fc.constantFrom(' ', '\t')), maxLength: 20 }), vchar).map(([a, mid, b]) => a + mid + b),
  vchar,
)
/** Names the parser or the server act on: the generator adds them deliberately, never at random. */
const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'expect', 'te', 'upgrade', 'trailer', 'keep-alive'])
export const fieldName = token(12).filter((n) => !RESERVED.has(n.toLowerCase()))
const ows = fc.constantFrom('', ' ', '\t', '  ', ' \t')

/** Methods every parser knows; the rest are random tokens (tagged `custom-method`). */
const COMMON_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND']
const HOSTS = ['localhost', 'example.com:8080', '127.0.0.1', '[::1]:80', 'a.b']

/** One chunk extension, RFC 9112 §7.1.1: `;name`, `;name=token`, `;name="quoted"`; with BWS when `bws`. */
const chunkExtension = fc
  .tuple(
    token(6),
    fc.option(
      fc.oneof(
        token(6),
        fc.string({ unit: fc.constantFrom(...'abc ;=,', '\\"', '\\\\', '\t'), maxLength: 6 }).map((s) => `"${s}"`),
      ),
      { nil: undefined },
    ),
    fc.oneof({ arbitrary: fc.constant(false), weight: 9 }, { arbitrary: fc.constant(true), weight: 1 }),
  )
  .map(([name, value, bws]) => ({ text: bws ? ` ; ${name}${value === undefined ? '' : ` = ${value}`}` : `;${name}${value === undefined ? '' : `=${value}`}`, bws }))
const chunkExt = fc.array(chunkExtension, { maxLength: 2 })

/** Connection options and how they decide persistence (RFC 9112 §9.3). */
const CONNECTION_VALUES = ['keep-alive', 'close', 'Keep-Alive', 'CLOSE', 'close, x-foo', 'x-foo', 'keep-alive, x-foo', 'x-foo,close']

const requestShape = fc.record({
  method: fc.oneof({ arbitrary: fc.constantFrom(...COMMON_METHODS), weight: 8 }, { arbitrary: token(10).filter((m) => m !== 'CONNECT'), weight: 1 }),
  form: fc.oneof(
    { arbitrary: fc.constant('origin' as const), weight: 16 },
    { arbitrary: fc.constant('absolute' as const), weight: 2 },
    { arbitrary: fc.constant('asterisk' as const), weight: 1 },
  ),
  scheme: fc.constantFrom('http', 'https'),
  segments: fc.array(segment, { minLength: 1, maxLength: 4 }),
  query: fc.option(queryText, { nil: undefined }),
  /** HTTP/1.0, 1.1, or 1.2–1.9 (which RFC 9110 §6.2 says to treat as 1.1). */
  minor: fc.oneof({ arbitrary: fc.constantFrom(0, 1), weight: 19 }, { arbitrary: fc.integer({ min: 2, max: 9 }), weight: 1 }),
  emptyLines: fc.oneof({ arbitrary: fc.constant(0), weight: 15 }, { arbitrary: fc.integer({ min: 1, max: 4 }), weight: 1 }),
  host: fc.constantFrom(...HOSTS),
  headers: fc.oneof(
    { arbitrary: fc.array(fc.tuple(fieldName, ows, fieldValue, ows), { maxLength: 8 }), weight: 12 },
    { arbitrary: fc.array(fc.tuple(fieldName, ows, fieldValue, ows), { minLength: 30, maxLength: 60 }), weight: 1 },
  ),
  connection: fc.option(fc.constantFrom(...CONNECTION_VALUES), { freq: 3, nil: undefined }),
  expect: fc.option(fc.constantFrom('100-continue', '100-Continue'), { freq: 8, nil: undefined }),
  /** Where the framing fields go among the others. */
  positions: fc.array(fc.nat(), { minLength: 5, maxLength: 5 }),
  body: fc.oneof(
    fc.constant({ kind: 'none' as const }),
    fc.record({
      kind: fc.constant('length' as const),
      data: fc.string({ maxLength: 60 }),
      zeros: fc.oneof({ arbitrary: fc.constant(0), weight: 8 }, { arbitrary: fc.integer({ min: 1, max: 3 }), weight: 1 }),
      /** A list of equal values (`5, 5`) or the field twice: RFC 9110 §8.6 lets a recipient take either. */
      list: fc.oneof({ arbitrary: fc.constant('one' as const), weight: 12 }, { arbitrary: fc.constantFrom('list' as const, 'twice' as const), weight: 1 }),
    }),
    fc.record({
      kind: fc.constant('chunked' as const),
      coding: fc.constantFrom('chunked', 'chunked', 'Chunked', 'CHUNKED'),
      chunks: fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 30 }), chunkExt, fc.boolean(), fc.integer({ min: 0, max: 2 })), { maxLength: 5 }),
      lastExt: chunkExt,
      lastZeros: fc.integer({ min: 0, max: 2 }),
      trailers: fc.array(fc.tuple(fieldName, ows, fieldValue, ows), { maxLength: 3 }),
    }),
  ),
})

type Shape = typeof requestShape extends fc.Arbitrary<infer T> ? T : never

/** Inserts `line` into `lines` at `pos` (mod length + 1). */
function insertAt<T>(lines: T[], pos: number, line: T): void {
  lines.splice(pos % (lines.length + 1), 0, line)
}

/** Renders a request shape into bytes and the events the parser must give for them. */
function render(g: Shape): Generated {
  const tags: string[] = []
  const method = g.form === 'asterisk' ? 'OPTIONS' : g.method
  if (!COMMON_METHODS.includes(method)) tags.push('custom-method')
  const path = `/${g.segments.join('/')}`
  let target: string
  let headPath = path
  let headQuery = g.query ?? ''
  let authority: string | null = null
  if (g.form === 'asterisk') {
    target = '*'
    headPath = '*'
    headQuery = ''
  } else if (g.form === 'absolute') {
    authority = g.host
    target = `${g.scheme}://${g.host}${path}${g.query === undefined ? '' : `?${g.query}`}`
  } else {
    target = g.query === undefined ? path : `${path}?${g.query}`
  }
  if (g.minor > 1) tags.push('minor-above-1')
  const minor = g.minor === 0 ? 0 : 1

  // Field lines as [line text, value as presented]; framing fields are placed among them.
  const lines: Array<[string, string]> = g.headers.map(([name, pre, value, post]): [string, string] => [`${name}:${pre}${value}${post}`, value])
  const named = (line: string, value: string): [string, string] => [line, value]
  let hostField: string | null = null
  if (g.minor !== 0 || g.host !== 'localhost') {
    hostField = g.host
    insertAt(lines, g.positions[0]!, named(`Host: ${g.host}`, g.host))
  }
  let keepAliveToken = false
  let closeToken = false
  if (g.connection !== undefined) {
    for (const option of g.connection.toLowerCase().split(',')) {
      if (option.trim() === 'close') closeToken = true
      if (option.trim() === 'keep-alive') keepAliveToken = true
    }
    insertAt(lines, g.positions[1]!, named(`Connection: ${g.connection}`, g.connection))
  }
  if (g.expect !== undefined) insertAt(lines, g.positions[2]!, named(`Expect: ${g.expect}`, g.expect))

  const bodyEvents: Event[] = []
  let body = ''
  let contentLength = 0
  const b = g.body
  if (b.kind === 'length' || (b.kind === 'chunked' && minor === 0)) {
    // HTTP/1.0 has no chunked: the same data goes with a length.
    const data = b.kind === 'length' ? b.data : b.chunks.map(([d]) => d).join('')
    const length = Buffer.byteLength(data, 'latin1')
    const value = `${'0'.repeat(b.kind === 'length' ? b.zeros : 0)}${length}`
    const list = b.kind === 'length' ? b.list : 'one'
    if (list === 'list') {
      insertAt(lines, g.positions[3]!, named(`Content-Length: ${value}, ${value}`, `${value}, ${value}`))
    } else {
      insertAt(lines, g.positions[3]!, named(`Content-Length: ${value}`, value))
      if (list === 'twice') insertAt(lines, g.positions[4]!, named(`Content-Length:${value}`, value))
    }
    if (list !== 'one') tags.push('content-length-list')
    body = data
    contentLength = length
    if (length > 0) bodyEvents.push({ kind: 'body', data })
    bodyEvents.push({ kind: 'end', trailers: [] })
  } else if (b.kind === 'chunked') {
    insertAt(lines, g.positions[3]!, named(`Transfer-Encoding: ${b.coding}`, b.coding))
    contentLength = -1
    let bws = false
    for (const [data, exts, upper, zeros] of b.chunks) {
      const size = Buffer.byteLength(data, 'latin1').toString(16)
      body += `${'0'.repeat(zeros)}${upper ? size.toUpperCase() : size}${exts.map((e) => e.text).join('')}\r\n${data}\r\n`
      if (exts.some((e) => e.bws)) bws = true
    }
    body += `${'0'.repeat(b.lastZeros + 1)}${b.lastExt.map((e) => e.text).join('')}\r\n`
    if (b.lastExt.some((e) => e.bws)) bws = true
    if (bws) tags.push('chunk-ext-bws')
    const trailerFlat: string[] = []
    for (const [name, pre, value, post] of b.trailers) {
      body += `${name}:${pre}${value}${post}\r\n`
      trailerFlat.push(name, value)
    }
    body += '\r\n'
    const data = b.chunks.map(([d]) => d).join('')
    if (data.length > 0) bodyEvents.push({ kind: 'body', data })
    bodyEvents.push({ kind: 'end', trailers: trailerFlat })
  } else {
    bodyEvents.push({ kind: 'end', trailers: [] })
  }

  const headers = lines.flatMap(([line, value]) => [line.slice(0, line.indexOf(':')), value])
  const head = `${'\r\n'.repeat(g.emptyLines)}${method} ${target} HTTP/1.${g.minor}\r\n${lines.map(([line]) => `${line}\r\n`).join('')}\r\n`
  const events: Event[] = [
    {
      kind: 'head',
      method,
      target,
      path: headPath,
      query: headQuery,
      minor,
      headers,
      host: authority ?? hostField ?? '',
      contentLength,
      keepAlive: minor === 0 ? keepAliveToken && !closeToken : !closeToken,
      expectContinue: minor === 1 && g.expect !== undefined,
    },
    ...bodyEvents,
  ]
  return { bytes: head + body, events, tags }
}

/** A valid request with the events it must give. */
export const request: fc.Arbitrary<Generated> = requestShape.map(render)

/** 1–3 pipelined requests; a request after a closing one is fine for the parser (the server stops reading there). */
export const pipeline: fc.Arbitrary<Pipeline> = fc.array(request, { minLength: 1, maxLength: 3 }).map((reqs) => ({
  bytes: Buffer.from(reqs.map((r) => r.bytes).join(''), 'latin1'),
  events: reqs.flatMap((r) => r.events),
  tags: reqs.map((r) => r.tags),
}))

/** Cut points for {@link splitAt}. */
export const cuts = fc.array(fc.nat(4000), { maxLength: 12 })

/** Cuts `buf` at the given positions (taken modulo its length + 1); every piece is a fresh copy. */
export function splitAt(buf: Buffer, points: number[]): Buffer[] {
  const sorted = [...new Set(points.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b)
  const pieces: Buffer[] = []
  let prev = 0
  for (const p of sorted) {
    pieces.push(buf.subarray(prev, p))
    prev = p
  }
  pieces.push(buf.subarray(prev))
  // Fresh copies: the parser must not depend on pieces sharing one buffer.
  return pieces.map((p) => Buffer.from(p))
}

// ---------- mutations ----------

export interface Mutation {
  op: 'set' | 'insert' | 'delete' | 'header' | 'duplicate' | 'truncate'
  at: number
  byte?: number
  len?: number
  line?: string
}

/** Bytes that matter to an HTTP parser: delimiters, controls, digits, quotes, high bytes. */
const INTERESTING = [0x20, 0x0d, 0x0a, 0x00, 0x3a, 0x09, 0x3b, 0x2c, 0x30, 0x61, 0x7f, 0xff, 0x22, 0x2d, 0x2b, 0x0b, 0x3d, 0x5c, 0x23, 0x3f, 0x2f, 0x80]
/** Field lines that change framing or meaning: smuggling shapes, folds, bad spacing. */
const HOSTILE_LINES = [
  'Content-Length: 3',
  'Content-Length: 0',
  'Content-Length: 99999999999',
  'Content-Length: -1',
  'Content-Length: 1, 2',
  'Content-Length: +3',
  'Transfer-Encoding: chunked',
  'Transfer-Encoding: gzip',
  'Transfer-Encoding: chunked, gzip',
  'Transfer-Encoding: identity',
  'Transfer-Encoding : chunked',
  'Transfer-Encoding:\tchunked',
  ' folded',
  '\tfolded',
  'Host: a',
  'Host: a b',
  'Expect: 100-continue',
  'Expect: 200-ok',
  'Connection: close',
  'Connection: keep-alive',
  'Upgrade: h2c',
  'X: a\x00b',
  'X: caf\xe9',
  ':empty',
  'NoColon',
]

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.constantFrom(...INTERESTING) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ op: fc.constant('header' as const), at: fc.nat(), line: fc.constantFrom(...HOSTILE_LINES) }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 24 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
)

/** Applies the mutations in order to a copy of `bytes`. */
export function mutate(bytes: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(bytes)
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % b.length
    if (m.op === 'set') {
      if (b.length > 0) b[at] = m.byte ?? 0
    } else if (m.op === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte ?? 0]), b.subarray(at)])
    else if (m.op === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + (m.len ?? 1))])
    else if (m.op === 'duplicate') b = Buffer.concat([b.subarray(0, at + (m.len ?? 1)), b.subarray(at)])
    else if (m.op === 'truncate') b = b.subarray(0, at)
    else {
      // A field line right after the line that holds `at`.
      const lf = b.indexOf(0x0a, at)
      const pos = lf < 0 ? b.length : lf + 1
      b = Buffer.concat([b.subarray(0, pos), Buffer.from(`${m.line ?? ''}\r\n`, 'latin1'), b.subarray(pos)])
    }
  }
  return b
}

export const mutations = fc.array(mutation, { minLength: 1, maxLength: 3 })

// ---------- requests at the limits ----------

/** A request built to sit just under or just over one of the parser's default limits, with the verdict it must get. */
export interface AtLimit {
  bytes: Buffer
  /** Which limit it probes. */
  limit: string
  /** The status it must be refused with, null when it must be accepted, undefined when either is right (a boundary the RFC leaves to the server). */
  status: number | null | undefined
}

/** Limits as lib/server/options.ts DEFAULTS has them; a change there shows here as a failing verdict. */
export interface Limits {
  maxHeaderSize: number
  maxHeaderCount: number
  maxTargetLength: number
  maxChunkExtensionSize: number
  maxChunkCount?: number
}

/** Requests around each limit: within a few bytes (or fields, or chunks) of it on either side. */
export function atLimits(limits: Limits): fc.Arbitrary<AtLimit> {
  const near = (bound: number, spread: number) => fc.integer({ min: bound - spread, max: bound + spread })
  const verdict = (ok: boolean, status: number) => (ok ? null : status)
  const maxChunks = limits.maxChunkCount ?? 16 * 1024
  return fc.oneof(
    near(limits.maxTargetLength, 4).map(
      (n): AtLimit => ({
        // target "/aaa…" of n bytes
        bytes: Buffer.from(`GET /${'a'.repeat(n - 1)} HTTP/1.1\r\nHost: a\r\n\r\n`),
        limit: 'maxTargetLength',
        status: verdict(n <= limits.maxTargetLength, 414),
      }),
    ),
    near(limits.maxTargetLength + 32, 4).map(
      (n): AtLimit => ({
        // a request line of n bytes, made long by its method
        bytes: Buffer.from(`${'M'.repeat(n - 11)} / HTTP/1.1\r\nHost: a\r\n\r\n`),
        limit: 'request line',
        status: verdict(n <= limits.maxTargetLength + 32, 414),
      }),
    ),
    near(limits.maxHeaderSize, 8).map((n): AtLimit => {
      // a head of n bytes up to the end of its last field line, then the empty line
      const start = 'GET / HTTP/1.1\r\nHost: a\r\nX: '
      const head = `${start}${'v'.repeat(n - start.length - 2)}\r\n`
      return { bytes: Buffer.from(`${head}\r\n`), limit: 'maxHeaderSize', status: n + 2 <= limits.maxHeaderSize ? null : n > limits.maxHeaderSize + 2 ? 431 : undefined }
    }),
    near(limits.maxHeaderCount, 3).map(
      (n): AtLimit => ({
        bytes: Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\n${Array.from({ length: n - 1 }, (_, i) => `X-${i}: ${i}\r\n`).join('')}\r\n`),
        limit: 'maxHeaderCount',
        status: verdict(n <= limits.maxHeaderCount, 431),
      }),
    ),
    fc.tuple(near(limits.maxHeaderCount, 3), fc.integer({ min: 1, max: 40 })).map(
      ([n, trailers]): AtLimit => ({
        // header fields and trailer fields count together
        bytes: Buffer.from(
          `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n${Array.from({ length: n - trailers - 2 }, (_, i) => `X-${i}: ${i}\r\n`).join('')}\r\n1\r\na\r\n0\r\n${Array.from({ length: trailers }, (_, i) => `T-${i}: ${i}\r\n`).join('')}\r\n`,
        ),
        limit: 'maxHeaderCount with trailers',
        status: verdict(n <= limits.maxHeaderCount, 431),
      }),
    ),
    near(limits.maxChunkExtensionSize, 3).map(
      (n): AtLimit => ({
        // one extension ";eee…" of n bytes
        bytes: Buffer.from(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(n - 1)}\r\na\r\n0\r\n\r\n`),
        limit: 'maxChunkExtensionSize',
        status: verdict(n <= limits.maxChunkExtensionSize, 400),
      }),
    ),
    near(maxChunks, 3).map(
      (n): AtLimit => ({
        bytes: Buffer.from(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${'1\r\na\r\n'.repeat(n)}0\r\n\r\n`),
        limit: 'maxChunkCount',
        status: limits.maxChunkCount === undefined ? null : verdict(n <= maxChunks, 413),
      }),
    ),
  )
}

/** Bytes as a JSON string for a failure message, long runs of one character (a 16 KB value) shown as `c×n`. */
export function printable(bytes: Buffer | string): string {
  return compactRuns(JSON.stringify(typeof bytes === 'string' ? bytes : bytes.toString('latin1')))
}

/** Text with long runs of one character shown as `c×n`, cut at 6,000 characters. */
export function compactRuns(text: string): string {
  const short = text.replace(/(.)\1{19,}/g, (run, c: string) => `${c}×${run.length}`)
  return short.length > 6000 ? `${short.slice(0, 6000)} …` : short
}
