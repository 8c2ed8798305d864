/**
 * `compression(options)`: gzip, deflate and brotli response compression as
 * gateway middleware, chosen by the request's `Accept-Encoding` (q-values
 * read by the `negotiator` package; on a tie the server's order, br then
 * gzip then deflate, wins).
 *
 * What is compressed: a response whose `Content-Type` is worth it (the
 * `compressible` package, from mime-db: text, JSON, JavaScript, SVG… not
 * images or archives) and whose body is at least `threshold` bytes. A body
 * whose length is not known (a stream without `Content-Length`) is
 * compressed. What is left alone: `HEAD`, 204, 206 and 304 answers, a
 * response that already has a `Content-Encoding`, one whose
 * `Cache-Control` says `no-transform`, and an empty body.
 *
 * Every response of a compressible type gets `Vary: Accept-Encoding`
 * (added to the app's own `Vary`), compressed or not, so a cache never
 * hands a gzip body to a client that did not ask for one, nor the reverse;
 * 206 and 304 answers too, as RFC 9110 §15.4.5 asks; a 304 that names no
 * `Content-Type` (static files' do not) gets it as well, since the 200 it
 * stands for may have been compressed.
 *
 * When a client accepts none of the encodings and refuses `identity` too
 * (`identity;q=0`), the body is sent as is rather than answered 406: RFC
 * 9110 §12.5.3 allows it, and a readable answer serves the client better.
 * An `Accept-Encoding` longer than 1 KiB (no real client sends one) is not
 * parsed and gets the body as is.
 *
 * A compressed response loses its `Content-Length` (a whole body gets the
 * compressed one from the server, a stream is sent chunked) and its
 * `Accept-Ranges`, and a strong `ETag` becomes weak: the bytes differ from
 * the uncompressed representation's (as nginx does).
 *
 * Whole bodies up to 64 KiB are compressed at once; larger ones and
 * streams go through a node:zlib stream that is pulled: the app's body is
 * read only as fast as the server sends, and what the app produced is
 * flushed to the client whenever the app pauses, so a slow stream
 * (server-sent events, NDJSON) still arrives as it is produced. When the
 * client leaves, the zlib stream is destroyed at once and the app's body
 * closed, once (that body is compress/encoding-body.ts). Output written
 * with the legacy `write()` is not compressed.
 */
import zlib from 'node:zlib'
import compressible from 'compressible'
import Negotiator from 'negotiator'
import type { AppResult, Body, Chunk, Environ, Headers, Middleware, StartResponse, Write } from '../lib/gateway/spec.js'
import { addVary } from '../lib/gateway/vary.js'
import { replaySync } from '../lib/gateway/replay.js'
import { EncodingBody, toBuffer, type Codec, type CompressionEncoding } from './compress/encoding-body.js'

export type { CompressionEncoding } from './compress/encoding-body.js'

/** A content coding this middleware can produce. */

export interface CompressionOptions {
  /** The encodings offered, in the server's order of preference (used on a q-value tie); default `['br', 'gzip', 'deflate']`. */
  encodings?: readonly CompressionEncoding[]
  /** Smallest whole body, in bytes, worth compressing; default 1024. A stream of unknown length is always compressed. */
  threshold?: number
  /** zlib level for gzip and deflate, 0–9 (or -1, zlib's default); default 6. */
  level?: number
  /** Brotli quality, 0–11; default 4 (fast enough for dynamic content; 11 is for files compressed once). */
  brotliQuality?: number
  /** Whether a response of this `Content-Type` (the header's whole value) should be compressed; default: what the `compressible` package says. */
  filter?: (contentType: string, environ: Environ) => boolean
}

export const DEFAULT_ENCODINGS: readonly CompressionEncoding[] = Object.freeze(['br', 'gzip', 'deflate'])
export const DEFAULT_THRESHOLD = 1024
export const DEFAULT_LEVEL = 6
export const DEFAULT_BROTLI_QUALITY = 4

/** The default filter: types mime-db marks compressible (and `text/*`, `+json`, `+xml` it does not know). */
export function isCompressible(contentType: string): boolean {
  return compressible(contentType) === true
}

const KNOWN_OPTIONS: ReadonlySet<string> = new Set(['encodings', 'threshold', 'level', 'brotliQuality', 'filter'])
const ENCODINGS: ReadonlySet<string> = new Set(DEFAULT_ENCODINGS)
/** Whole bodies up to this size are compressed synchronously, in one call: no stream, and the length stays known. */
const WHOLE_LIMIT = 64 * 1024
/** log2 of the brotli window for streams (256 KiB): see codec(). */
const STREAM_BROTLI_WINDOW = 18
/** Longer `Accept-Encoding` values are not parsed (real ones are a few dozen bytes). */
const MAX_ACCEPT_ENCODING = 1024
/** Negotiation results are remembered for this many distinct header values (browsers send a handful). */
const CACHE_SIZE = 256

const NO_TRANSFORM = /(?:^|,)\s*no-transform\s*(?:,|$)/i

interface Settings {
  codecs: ReadonlyMap<CompressionEncoding, Codec>
  negotiate: (acceptEncoding: string | undefined) => Codec | null
  threshold: number
  filter: (contentType: string, environ: Environ) => boolean
}

/** Compression middleware; see the file's comment. Throws on an invalid option. */
export function compression(options: CompressionOptions = {}): Middleware {
  const settings = compile(options)
  return (app) => (environ, startResponse) => {
    const call = new CompressCall(settings, environ, startResponse)
    const result: AppResult = app(environ, call.start)
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<Body>).then === 'function') {
      return Promise.resolve(result).then((body) => call.body(body))
    }
    return call.body(result as Body)
  }
}

// ── One response ────────────────────────────────────────────────────────────

/** The app's response is passed on as it is. */
const PASS = 0
/** Passed on with `Vary: Accept-Encoding` added. */
const VARY = 1
/** To be compressed once the body shows whether it is worth it: held back until then. */
const HOLD = 2

/**
 * One request's response on its way out. The app's `startResponse` is
 * passed on at once unless the response may be compressed; then it is held
 * until the body is seen (a whole body's size decides against the
 * threshold), which the gateway allows: the server needs it only before the
 * first chunk.
 */
class CompressCall {
  readonly start: StartResponse
  /** The app called `startResponse`. */
  private started = false
  /** A held response: its status and headers, and the codec chosen. */
  private held = false
  private status = ''
  private headers: Headers = []
  private codec: Codec | null = null
  /** The response was passed on compressed. */
  private encoded = false
  /** The `write` given to the app while its response is held, and the server's, once passed on. */
  private write: Write | null = null
  private legacyWrite: Write | null = null
  private readonly settings: Settings
  private readonly environ: Environ
  private readonly startResponse: StartResponse

  constructor(settings: Settings, environ: Environ, startResponse: StartResponse) {
    this.settings = settings
    this.environ = environ
    this.startResponse = startResponse
    this.start = (status, headers, error) => this.onStart(status, headers, error)
  }

  private onStart(status: string, headers: Headers, error?: unknown): Write {
    const first = !this.started
    this.started = true
    // Once passed on, a replacement (with `error`) is the server's to accept or refuse.
    if (!first && !this.held) return this.startResponse(status, headers, error)
    if (!first && error === undefined) {
      // Only an error may replace a response [start-response-order]: hand the held one to the server, whose rule then refuses this call.
      this.passIdentity()
      return this.startResponse(status, headers, error)
    }
    this.held = false
    const plan = this.plan(status, headers)
    if (plan === PASS) return (this.legacyWrite = this.startResponse(status, headers, error))
    if (plan === VARY) return (this.legacyWrite = this.startResponse(status, addVary(headers.slice(), 'Accept-Encoding'), error))
    this.held = true
    this.status = status
    this.headers = headers
    this.write ??= (chunk) => {
      // Legacy output goes out as it is written: it cannot wait for zlib.
      if (this.held) this.passIdentity()
      else if (this.encoded) throw new Error('compression: write() was called after a compressed body started; return the body instead')
      this.legacyWrite!(chunk)
    }
    return this.write
  }

  /** Decides from the status and headers (and the request) what to do with a response. */
  private plan(status: string, headers: Headers): number {
    if (typeof status !== 'string' || !Array.isArray(headers)) return PASS // the server will say what is wrong
    const code = Number.parseInt(status.slice(0, 3), 10)
    if (code === 204 || !(code >= 200)) return PASS
    let type = ''
    let cacheControl = ''
    let declared = -1
    for (let i = 0; i < headers.length; i++) {
      const pair = headers[i]
      if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') return PASS
      const name = pair[0]
      if (name.length === 12 && name.toLowerCase() === 'content-type') type = pair[1]
      else if (name.length === 13 && name.toLowerCase() === 'cache-control') cacheControl = cacheControl === '' ? pair[1] : `${cacheControl},${pair[1]}`
      else if (name.length === 14 && name.toLowerCase() === 'content-length') declared = /^\d+$/.test(pair[1]) ? Number(pair[1]) : -1
      else if (name.length === 16 && name.toLowerCase() === 'content-encoding') return PASS
    }
    if (cacheControl !== '' && NO_TRANSFORM.test(cacheControl)) return PASS
    // A 304 need not name its type (static files' do not): it may answer a compressed 200, so it carries the Vary.
    if (type === '' && code === 304) return VARY
    if (type === '' || !this.settings.filter(type, this.environ)) return PASS
    // A range is of the identity bytes, and a 304 has no body; both carry the Vary the 200 would (RFC 9110 §15.4.5).
    if (code === 206 || code === 304 || this.environ.REQUEST_METHOD === 'HEAD') return VARY
    const codec = this.settings.negotiate(this.environ.HTTP_ACCEPT_ENCODING)
    if (codec === null) return VARY
    if (declared === 0 || (declared > 0 && declared < this.settings.threshold)) return VARY
    this.codec = codec
    return HOLD
  }

  /** Passes a held response on as it is (with Vary). */
  private passIdentity(): void {
    this.held = false
    this.legacyWrite = this.startResponse(this.status, addVary(this.headers.slice(), 'Accept-Encoding'))
  }

  /** Passes a held response on as compressed. */
  private passEncoded(codec: Codec): void {
    this.held = false
    this.encoded = true
    this.legacyWrite = this.startResponse(this.status, encodedHeaders(this.headers, codec.name))
  }

  /** The app's body on its way out: as it is, compressed at once, or through a stream. */
  body(body: Body): Body {
    if (this.held) return this.heldBody(body)
    if (this.started) return body
    return this.lateBody(body)
  }

  /**
   * A held response's body. A stream is passed on once its first result is
   * known, like a late one: an empty stream then goes out as it is, not as
   * an encoding of nothing.
   */
  private heldBody(body: Body): Body {
    if (!Array.isArray(body)) return new EncodingBody(body, null, (first) => this.decideLate(first))
    try {
      return this.wholeBody(body as Chunk[], this.codec!)
    } catch (error) {
      closeQuietly(body)
      throw error
    }
  }

  /** A body whose chunks are all known: sent as is under the threshold, compressed at once up to 64 KiB. */
  private wholeBody(chunks: Chunk[], codec: Codec): Body {
    let total = 0
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i]
      if (typeof chunk === 'string') total += Buffer.byteLength(chunk)
      else if (chunk instanceof Uint8Array) total += chunk.byteLength
      else {
        // Not a chunk: pass it on untouched for the server to report.
        this.passIdentity()
        return chunks
      }
    }
    if (total === 0 || total < this.settings.threshold) {
      this.passIdentity()
      return chunks
    }
    if (total > WHOLE_LIMIT) {
      this.passEncoded(codec)
      return new EncodingBody(chunks, codec, null)
    }
    const input = chunks.length === 1 ? toBuffer(chunks[0]!) : Buffer.concat(chunks.map(toBuffer), total)
    const output: Chunk[] & { close?(): void | Promise<void> } = [codec.whole(input)]
    this.passEncoded(codec)
    const close = (chunks as Body).close
    if (typeof close === 'function') output.close = () => close.call(chunks)
    return output
  }

  /**
   * The app returned its body before calling `startResponse` (it may, up to
   * the first chunk: the framework does for a stream typed by its first
   * chunk). The first chunk is pulled, which starts the response, and the
   * rest follows that decision. A synchronous body is pulled at once, so it
   * stays synchronous when it is passed on.
   */
  private lateBody(body: Body): Body {
    if (Array.isArray(body) || body === null || typeof body !== 'object') return body
    if (typeof (body as AsyncIterable<Chunk>)[Symbol.asyncIterator] === 'function') return new EncodingBody(body, null, (first) => this.decideLate(first))
    if (typeof (body as Iterable<Chunk>)[Symbol.iterator] !== 'function') return body
    let iterator: Iterator<Chunk>
    let first: IteratorResult<Chunk>
    try {
      iterator = (body as Iterable<Chunk>)[Symbol.iterator]()
      first = iterator.next()
    } catch (error) {
      closeQuietly(body)
      throw error
    }
    const codec = this.decideLate(first)
    if (codec !== null) return new EncodingBody(body, codec, null, iterator, first)
    return replaySync(body, iterator, first)
  }

  /**
   * Once a streamed body's first result is known (a late body's app has
   * started its response by then): the codec when it is to be compressed,
   * and passed on so; null to pass it on as it is (an empty body among them).
   */
  private decideLate(first: IteratorResult<Chunk>): Codec | null {
    if (!this.held) return null
    if (first.done === true) {
      this.passIdentity()
      return null
    }
    const codec = this.codec!
    this.passEncoded(codec)
    return codec
  }
}

/** The headers of a compressed response; see the file's comment. */
function encodedHeaders(headers: Headers, encoding: CompressionEncoding): Headers {
  const out: Headers = []
  for (let i = 0; i < headers.length; i++) {
    const pair = headers[i]!
    const lower = pair[0].toLowerCase()
    if (lower === 'content-length' || lower === 'accept-ranges') continue
    if (lower === 'etag' && pair[1].startsWith('"')) out.push([pair[0], `W/${pair[1]}`])
    else out.push(pair)
  }
  out.push(['Content-Encoding', encoding])
  return addVary(out, 'Accept-Encoding')
}

/** Calls a body's close() when giving up on it, reporting nothing (the caller is already failing). */
function closeQuietly(body: unknown): void {
  try {
    const close = (body as Body | null)?.close
    if (typeof close === 'function') void Promise.resolve(close.call(body)).catch(() => {})
  } catch {
    // the body is abandoned either way
  }
}

// ── Options ─────────────────────────────────────────────────────────────────

function compile(options: CompressionOptions): Settings {
  if (options === null || typeof options !== 'object') throw new TypeError('compression: options must be an object')
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new TypeError(`compression: unknown option ${JSON.stringify(key)}; known options are ${[...KNOWN_OPTIONS].join(', ')}`)
  }
  const encodings = options.encodings ?? DEFAULT_ENCODINGS
  if (!Array.isArray(encodings) || encodings.length === 0) {
    throw new TypeError(`compression: \`encodings\` must be a non-empty list of ${[...ENCODINGS].map((e) => `"${e}"`).join(', ')}`)
  }
  for (const [i, encoding] of encodings.entries()) {
    if (!ENCODINGS.has(encoding)) throw new Error(`compression: unknown encoding ${JSON.stringify(encoding)}; supported: ${[...ENCODINGS].join(', ')}`)
    if (encodings.indexOf(encoding) !== i) throw new Error(`compression: encoding ${JSON.stringify(encoding)} is listed twice`)
  }
  const threshold = options.threshold ?? DEFAULT_THRESHOLD
  if (typeof threshold !== 'number' || !Number.isSafeInteger(threshold) || threshold < 0) {
    throw new RangeError(`compression: \`threshold\` must be a whole number of bytes, 0 or more, got ${String(threshold)}`)
  }
  const level = options.level ?? DEFAULT_LEVEL
  if (!Number.isInteger(level) || level < -1 || level > 9) throw new RangeError(`compression: \`level\` must be an integer from -1 to 9, got ${String(level)}`)
  const quality = options.brotliQuality ?? DEFAULT_BROTLI_QUALITY
  if (!Number.isInteger(quality) || quality < 0 || quality > 11) {
    throw new RangeError(`compression: \`brotliQuality\` must be an integer from 0 to 11, got ${String(quality)}`)
  }
  const filter = options.filter ?? isCompressible
  if (typeof filter !== 'function') throw new TypeError('compression: `filter` must be a function (contentType, environ) => boolean')

  const codecs = new Map<CompressionEncoding, Codec>()
  for (const encoding of encodings) codecs.set(encoding, codec(encoding, level, quality))
  return { codecs, negotiate: negotiator(codecs, encodings), threshold, filter }
}

function codec(name: CompressionEncoding, level: number, quality: number): Codec {
  if (name === 'br') {
    const params = { [zlib.constants.BROTLI_PARAM_QUALITY]: quality }
    // Brotli holds back twice its window of input before it emits a byte: with the default 4 MiB window a
    // stream would wait for 8 MiB (and hold them per response). 256 KiB costs dynamic content next to nothing.
    const streamParams = { ...params, [zlib.constants.BROTLI_PARAM_LGWIN]: STREAM_BROTLI_WINDOW }
    return {
      name,
      whole: (input) => zlib.brotliCompressSync(input, { params: { ...params, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: input.byteLength } }),
      stream: () => zlib.createBrotliCompress({ params: streamParams }),
      flushKind: zlib.constants.BROTLI_OPERATION_FLUSH,
    }
  }
  const options = { level }
  if (name === 'gzip') {
    return { name, whole: (input) => zlib.gzipSync(input, options), stream: () => zlib.createGzip(options), flushKind: zlib.constants.Z_SYNC_FLUSH }
  }
  return { name, whole: (input) => zlib.deflateSync(input, options), stream: () => zlib.createDeflate(options), flushKind: zlib.constants.Z_SYNC_FLUSH }
}

/** negotiator's `encodings()` as of 1.x, which takes the server's preference for ties (its published types predate it). */
type Encodings = (available: readonly string[], options: { preferred: readonly string[] }) => string[]

/** Picks the codec for an `Accept-Encoding` value (null: send as is), remembering recent answers. */
function negotiator(codecs: ReadonlyMap<CompressionEncoding, Codec>, encodings: readonly CompressionEncoding[]): Settings['negotiate'] {
  const available = [...encodings, 'identity']
  const cache = new Map<string, Codec | null>()
  return (value) => {
    if (value === undefined || value === '' || value.length > MAX_ACCEPT_ENCODING) return null
    const known = cache.get(value)
    if (known !== undefined) return known
    const parser = new Negotiator({ headers: { 'accept-encoding': value } })
    const best = (parser.encodings as unknown as Encodings).call(parser, available, { preferred: available })[0]
    const chosen = best === undefined || best === 'identity' ? null : (codecs.get(best as CompressionEncoding) ?? null)
    if (cache.size >= CACHE_SIZE) cache.clear()
    cache.set(value, chosen)
    return chosen
  }
}
