/**
 * A raw-socket HTTP/1.1 client for server tests. It writes exact bytes (whole,
 * in given splits, or one byte at a time) and reads responses with its own
 * small, strict response reader, so tests can assert the exact status line,
 * header fields and body the server put on the wire — and whether the server
 * closed the connection. Every wait has a timeout, so a server that hangs
 * makes a test fail with what it did receive instead of hanging the run.
 * It re-parses what it holds on every read, so it is meant for responses of
 * up to a few MB; tests of huge streams count bytes on a plain socket.
 */
import net from 'node:net'
import tls from 'node:tls'

/** One response as read off the wire. */
export interface RawResponse {
  /** `HTTP/1.1` or `HTTP/1.0` as sent. */
  version: string
  status: number
  reason: string
  /** Header fields in order, names as sent. */
  headers: Array<[string, string]>
  /** The body after removing the framing (chunked decoded). */
  body: Buffer
  /** How the body was framed. */
  framing: 'none' | 'length' | 'chunked' | 'close'
  /** Whether the body ended by its framing (false: the connection closed first). */
  complete: boolean
  /** Trailer fields of a chunked body. */
  trailers: Array<[string, string]>
  /** The 1xx responses received before this one. */
  interim: RawResponse[]
  /** The exact bytes of this response, interim responses not included. */
  raw: Buffer
}

/** Field value by name (case-insensitive); repeated fields joined with ', '; undefined when absent. */
export function header(res: RawResponse, name: string): string | undefined {
  const lower = name.toLowerCase()
  const values = res.headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v)
  return values.length === 0 ? undefined : values.join(', ')
}

/** How many times a header field appears. */
export function headerCount(res: RawResponse, name: string): number {
  const lower = name.toLowerCase()
  return res.headers.filter(([n]) => n.toLowerCase() === lower).length
}

/** Whether a `Connection` header lists `token` (case-insensitive). */
export function connectionHas(res: RawResponse, token: string): boolean {
  return (header(res, 'connection') ?? '').split(',').some((t) => t.trim().toLowerCase() === token.toLowerCase())
}

/** Thrown when the bytes from the server are not a well-formed HTTP/1.x response. */
export class MalformedResponse extends Error {}

interface ParseOutcome {
  responses: RawResponse[]
  /** Bytes consumed by complete responses. */
  consumed: number
  /** A close-delimited or truncated response still being read (only returned when `ended`). */
  partial?: RawResponse
}

const CRLF = Buffer.from('\r\n')
const CRLFCRLF = Buffer.from('\r\n\r\n')

/**
 * Parses as many complete responses as `buf` holds. `methods[i]` is the method
 * of the request the i-th final response answers (HEAD responses have no
 * body). When `ended` is true the connection is closed: a close-delimited body
 * ends there, and a response cut short is returned as `partial`.
 */
export function parseResponses(buf: Buffer, methods: readonly string[], ended: boolean): ParseOutcome {
  const responses: RawResponse[] = []
  let pos = 0
  let interim: RawResponse[] = []
  for (;;) {
    if (pos >= buf.length) return { responses, consumed: pos }
    const start = pos
    const headEnd = buf.indexOf(CRLFCRLF, pos)
    if (headEnd === -1) {
      if (ended) return { responses, consumed: pos, partial: truncatedHead(buf.subarray(pos), interim) }
      return { responses, consumed: start }
    }
    const head = buf.subarray(pos, headEnd).toString('latin1')
    const lines = head.split('\r\n')
    const statusLine = lines[0] ?? ''
    const m = /^(HTTP\/\d\.\d) (\d{3}) ([\t\x20-\x7e\x80-\xff]*)$/.exec(statusLine)
    if (!m) throw new MalformedResponse(`malformed status line ${JSON.stringify(statusLine)} in ${JSON.stringify(buf.toString('latin1'))}`)
    const headers: Array<[string, string]> = []
    for (const line of lines.slice(1)) {
      const hm = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/.exec(line)
      if (!hm || /[\0\r\n]/.test(line)) throw new MalformedResponse(`malformed header line ${JSON.stringify(line)}`)
      headers.push([hm[1]!, hm[2]!])
    }
    const status = Number(m[2])
    pos = headEnd + 4
    const res: RawResponse = {
      version: m[1]!,
      status,
      reason: m[3]!,
      headers,
      body: Buffer.alloc(0),
      framing: 'none',
      complete: true,
      trailers: [],
      interim: [],
      raw: Buffer.alloc(0),
    }
    if (status >= 100 && status < 200) {
      res.raw = buf.subarray(start, pos)
      interim.push(res)
      continue
    }
    res.interim = interim
    const method = methods[responses.length] ?? 'GET'
    const te = header(res, 'transfer-encoding')
    const cl = header(res, 'content-length')
    if (te !== undefined && cl !== undefined) throw new MalformedResponse(`response has both Transfer-Encoding and Content-Length: ${head}`)
    if (method === 'HEAD' || status === 204 || status === 304) {
      res.framing = 'none'
    } else if (te !== undefined) {
      if (te.toLowerCase() !== 'chunked') throw new MalformedResponse(`unexpected Transfer-Encoding ${te}`)
      res.framing = 'chunked'
      const decoded = decodeChunked(buf, pos)
      if (decoded === null) {
        if (!ended) return { responses, consumed: start }
        res.complete = false
        res.body = decodeChunkedPrefix(buf, pos)
        res.raw = buf.subarray(start)
        return { responses, consumed: start, partial: res }
      }
      res.body = decoded.body
      res.trailers = decoded.trailers
      pos = decoded.end
    } else if (cl !== undefined) {
      if (!/^\d+$/.test(cl)) throw new MalformedResponse(`malformed Content-Length ${cl}`)
      res.framing = 'length'
      const n = Number(cl)
      if (buf.length - pos < n) {
        if (!ended) return { responses, consumed: start }
        res.complete = false
        res.body = Buffer.from(buf.subarray(pos))
        res.raw = buf.subarray(start)
        return { responses, consumed: start, partial: res }
      }
      res.body = Buffer.from(buf.subarray(pos, pos + n))
      pos += n
    } else {
      // No framing: the body runs until the server closes (RFC 9112 §6.3 rule 8).
      res.framing = 'close'
      if (!ended) return { responses, consumed: start }
      res.body = Buffer.from(buf.subarray(pos))
      pos = buf.length
    }
    res.raw = buf.subarray(start, pos)
    responses.push(res)
    interim = []
  }
}

function truncatedHead(bytes: Buffer, interim: RawResponse[]): RawResponse {
  return { version: '', status: 0, reason: '', headers: [], body: Buffer.alloc(0), framing: 'none', complete: false, trailers: [], interim, raw: bytes }
}

/** Decodes a chunked body at `pos`; null when it is not complete yet. */
function decodeChunked(buf: Buffer, pos: number): { body: Buffer; trailers: Array<[string, string]>; end: number } | null {
  const parts: Buffer[] = []
  for (;;) {
    const lineEnd = buf.indexOf(CRLF, pos)
    if (lineEnd === -1) return null
    const sizeLine = buf.subarray(pos, lineEnd).toString('latin1')
    const sm = /^([0-9a-fA-F]+)(;.*)?$/.exec(sizeLine)
    if (!sm) throw new MalformedResponse(`malformed chunk size line ${JSON.stringify(sizeLine)}`)
    const size = parseInt(sm[1]!, 16)
    pos = lineEnd + 2
    if (size === 0) break
    if (buf.length < pos + size + 2) return null
    parts.push(buf.subarray(pos, pos + size))
    if (buf[pos + size] !== 0x0d || buf[pos + size + 1] !== 0x0a) throw new MalformedResponse('chunk data not followed by CRLF')
    pos += size + 2
  }
  const trailers: Array<[string, string]> = []
  for (;;) {
    const lineEnd = buf.indexOf(CRLF, pos)
    if (lineEnd === -1) return null
    const line = buf.subarray(pos, lineEnd).toString('latin1')
    pos = lineEnd + 2
    if (line === '') break
    const tm = /^([^:]+):[ \t]*(.*?)[ \t]*$/.exec(line)
    if (!tm) throw new MalformedResponse(`malformed trailer line ${JSON.stringify(line)}`)
    trailers.push([tm[1]!, tm[2]!])
  }
  return { body: Buffer.concat(parts), trailers, end: pos }
}

/** The data of the complete chunks of a truncated chunked body. */
function decodeChunkedPrefix(buf: Buffer, pos: number): Buffer {
  const parts: Buffer[] = []
  for (;;) {
    const lineEnd = buf.indexOf(CRLF, pos)
    if (lineEnd === -1) break
    const size = parseInt(buf.subarray(pos, lineEnd).toString('latin1'), 16)
    if (!(size > 0)) break
    pos = lineEnd + 2
    parts.push(buf.subarray(pos, Math.min(pos + size, buf.length)))
    if (buf.length < pos + size + 2) break
    pos += size + 2
  }
  return Buffer.concat(parts)
}

/**
 * The methods of the requests in `bytes`, in order, found by framing them
 * loosely (Content-Length or chunked bodies skipped). It stops at the first
 * thing it cannot frame; a response beyond that is taken to answer a GET.
 */
export function requestMethods(bytes: Buffer): string[] {
  const methods: string[] = []
  let pos = 0
  while (pos < bytes.length) {
    const end = bytes.indexOf(CRLFCRLF, pos)
    if (end === -1) break
    const head = bytes.subarray(pos, end).toString('latin1')
    methods.push(head.split(' ', 1)[0] ?? '')
    pos = end + 4
    const cl = /\r\ncontent-length:[ \t]*(\d+)[ \t]*(?:\r\n|$)/i.exec(head)
    if (/\r\ntransfer-encoding:[^\r\n]*chunked/i.test(head)) {
      for (;;) {
        const lineEnd = bytes.indexOf(CRLF, pos)
        if (lineEnd === -1) return methods
        const size = parseInt(bytes.subarray(pos, lineEnd).toString('latin1'), 16)
        if (Number.isNaN(size)) return methods
        pos = lineEnd + 2
        if (size === 0) {
          const trailerEnd = bytes.indexOf(CRLFCRLF, pos - 2)
          if (trailerEnd === -1) return methods
          pos = trailerEnd + 4
          break
        }
        pos += size + 2
      }
    } else if (cl) {
      pos += Number(cl[1])
    }
  }
  return methods
}

/** What a finished read gives back. */
export interface ReadResult {
  responses: RawResponse[]
  /** A response cut short by the close, if any. */
  partial?: RawResponse
  /** Whether the server closed (or reset) the connection. */
  closed: boolean
  /** Whether the wait gave up before its goal was reached. */
  timedOut: boolean
  /** Every byte received on the connection so far, for failure messages. */
  raw: string
}

export interface ClientOptions {
  /** Connect with TLS (no certificate check). */
  tls?: boolean
  /** Default timeout of every wait, in ms. */
  timeout?: number
}

/**
 * One connection. `read(n)` waits for the next `n` final responses; `closed()`
 * waits for the server to close. Methods of the requests (for HEAD) are
 * found by framing the bytes written as requests (see {@link requestMethods}),
 * or told with `expectMethods`.
 */
export class RawClient {
  readonly socket: net.Socket
  private buf: Buffer = Buffer.alloc(0)
  private consumedResponses = 0
  /** Everything written, to find the request methods (HEAD responses have no body). */
  private sent: Buffer[] = []
  private sentMethods: { bytes: number; methods: string[] } = { bytes: 0, methods: [] }
  private told: string[] | null = null
  private isClosed = false
  /** Set when the server reset the connection instead of closing it. */
  reset = false
  private waiters = new Set<() => void>()
  private readonly timeout: number

  private constructor(socket: net.Socket, timeout: number) {
    this.socket = socket
    this.timeout = timeout
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d])
      this.wake()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') this.reset = true
    })
    socket.on('close', () => {
      this.isClosed = true
      this.wake()
    })
  }

  static connect(port: number, options: ClientOptions = {}): Promise<RawClient> {
    const timeout = options.timeout ?? 3000
    return new Promise((resolve, reject) => {
      const socket = options.tls ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' }) : net.connect({ port, host: '127.0.0.1' })
      socket.setNoDelay(true)
      const onError = (err: Error) => reject(err)
      socket.once('error', onError)
      socket.once(options.tls ? 'secureConnect' : 'connect', () => {
        socket.off('error', onError)
        resolve(new RawClient(socket, timeout))
      })
    })
  }

  private wake(): void {
    for (const w of [...this.waiters]) w()
  }

  /** Writes bytes at once; request lines are noted to know which responses answer HEAD. */
  write(data: string | Buffer): void {
    const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data
    this.noteMethods(buf)
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(buf)
  }

  /** Declares the methods of the requests, instead of finding them in the bytes written. */
  expectMethods(...methods: string[]): void {
    this.told = methods
  }

  private noteMethods(buf: Buffer): void {
    this.sent.push(buf)
  }

  private methods(): string[] {
    if (this.told) return this.told
    const total = this.sent.reduce((n, b) => n + b.length, 0)
    if (total !== this.sentMethods.bytes) {
      const all = Buffer.concat(this.sent)
      this.sent = [all]
      this.sentMethods = { bytes: total, methods: requestMethods(all) }
    }
    return this.sentMethods.methods
  }

  /**
   * Writes `data` in pieces, waiting `gap` ms (default: one event-loop turn)
   * between them so the server sees separate reads: `splits` are the piece
   * lengths, or 1 for one byte at a time.
   */
  async writeSplit(data: string | Buffer, splits: number[] | 1, gap = 1): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'latin1') : data
    this.noteMethods(buf)
    let pos = 0
    let i = 0
    while (pos < buf.length) {
      const len = splits === 1 ? 1 : (splits[i++] ?? buf.length - pos)
      const piece = buf.subarray(pos, pos + Math.max(1, len))
      pos += piece.length
      if (this.socket.destroyed || !this.socket.writable) return
      await new Promise<void>((resolve) => this.socket.write(piece, () => resolve()))
      await new Promise((resolve) => setTimeout(resolve, gap))
    }
  }

  private parse(): ParseOutcome {
    return parseResponses(this.buf, this.methods(), this.isClosed)
  }

  /** Waits until `goal()` holds, the connection closes, or the timeout. Returns whether the goal was reached. */
  private waitFor(goal: () => boolean, timeout: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const check = () => {
        let ok: boolean
        try {
          ok = goal()
        } catch (err) {
          cleanup()
          reject(err)
          return
        }
        if (ok || this.isClosed) {
          cleanup()
          resolve(ok)
        }
      }
      const cleanup = () => {
        this.waiters.delete(check)
        if (timer) clearTimeout(timer)
      }
      timer = setTimeout(() => {
        cleanup()
        resolve(false)
      }, timeout)
      this.waiters.add(check)
      check()
    })
  }

  /**
   * Waits for the next `n` final responses (default 1), or the close, or the
   * timeout. Responses already returned by an earlier read are not repeated.
   */
  async read(n = 1, timeout = this.timeout): Promise<ReadResult> {
    const want = this.consumedResponses + n
    const reached = await this.waitFor(() => this.parse().responses.length >= want, timeout)
    const outcome = this.parse()
    const responses = outcome.responses.slice(this.consumedResponses, want)
    this.consumedResponses += responses.length
    const result: ReadResult = { responses, closed: this.isClosed, timedOut: !reached && !this.isClosed, raw: this.buf.toString('latin1') }
    if (outcome.partial) result.partial = outcome.partial
    return result
  }

  /** Waits until the bytes received include `text`; true if they did within the timeout. */
  async receivedText(text: string, timeout = this.timeout): Promise<boolean> {
    return this.waitFor(() => this.buf.includes(text, 0, 'latin1'), timeout)
  }

  /** Waits for the server to close the connection; true if it did within the timeout. */
  async closed(timeout = this.timeout): Promise<boolean> {
    return this.waitFor(() => this.isClosed, timeout)
  }

  get isOpen(): boolean {
    return !this.isClosed
  }

  /** Everything received so far, as latin1 text. */
  get received(): string {
    return this.buf.toString('latin1')
  }

  /** Half-closes our side (FIN) while still reading. */
  end(): void {
    this.socket.end()
  }

  destroy(): void {
    this.socket.destroy()
  }
}

export interface ExchangeOptions extends ClientOptions {
  /** How many final responses to wait for (default 1). */
  responses?: number
  /** Also wait for the server to close after them (default false). */
  waitClose?: boolean
  /** Write in these pieces, or 1 for one byte at a time. */
  splits?: number[] | 1
  /** Methods of the requests, when the request-line guess would miss them. */
  methods?: string[]
}

/**
 * Opens a connection, writes `data`, reads `responses` responses and (with
 * `waitClose`) waits for the close, then destroys the socket. The result says
 * whether the server closed the connection.
 */
export async function exchange(port: number, data: string | Buffer, options: ExchangeOptions = {}): Promise<ReadResult> {
  const client = await RawClient.connect(port, options)
  try {
    if (options.methods) client.expectMethods(...options.methods)
    if (options.splits) await client.writeSplit(data, options.splits)
    else client.write(data)
    const result = await client.read(options.responses ?? 1)
    if (options.waitClose && !result.closed) {
      result.closed = await client.closed()
      if (!result.closed) result.timedOut = true
      result.raw = client.received
    }
    return result
  } finally {
    client.destroy()
  }
}
