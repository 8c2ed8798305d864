/**
 * In-process requests: calls a gateway app with an environ built from
 * `{ method, url, headers, body }` and collects its response, with no
 * socket. It plays the server's part exactly: the environ comes from the one
 * environ builder and the app is called by the one runner every server uses
 * (HEAD, 204 and 304 bodies iterated and dropped, `close()` called once, a
 * second `startResponse` with an error replacing the first, an app that
 * throws before starting answered by the error policy).
 */
import type { Chunk, Environ, ErrorStream, GatewayApp, GatewayInput, Headers } from './spec.js'
import { STATUS_TEXT } from './headers.js'
import { writeLog } from './errors.js'
import { buildEnviron, type ConnectionInfo } from './environ.js'
import { GatewayCall } from './runner.js'
import { chunkBytes, joinChunks } from './chunks.js'
import { StreamInput, concat } from './stream-input.js'

export interface InjectOptions {
  method?: string
  /** Path and query, `/users/1?x=2`. */
  url?: string
  headers?: Record<string, string>
  /** A string or bytes is sent as is; anything else as JSON (with its Content-Type unless given). */
  body?: string | Uint8Array | unknown
  /** Where `gateway.errors` goes; default: collected in `errors` of the response. */
  errors?: ErrorStream
  /** Extra environ keys. */
  environ?: Record<string, unknown>
}

export interface InjectResponse {
  status: number
  statusText: string
  /** Header names lower-cased; repeated headers joined with `, `. */
  headers: Record<string, string>
  /** The headers exactly as the app gave them. */
  rawHeaders: Headers
  /** The body as UTF-8 text. */
  body: string
  bytes: Uint8Array
  json<T = unknown>(): T
  /** What the app wrote to `gateway.errors`. */
  errors: string[]
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The connection an in-process request pretends to come on. */
const LOCAL: Omit<ConnectionInfo, 'errors'> = {
  serverName: 'localhost',
  serverPort: '80',
  remoteAddr: '127.0.0.1',
  remotePort: '0',
  scheme: 'http',
  multiprocess: false,
}

/** The request body as the server would give it, from bytes in memory. */
function bodyInput(data: Uint8Array, chunked: boolean): GatewayInput {
  async function* once(): AsyncIterable<Uint8Array> {
    if (data.length > 0) yield data
  }
  return new StreamInput(once(), chunked ? null : data.length)
}

/**
 * Builds the environ a server would for this request, with the one environ
 * builder every server uses. Throws a 400 {@link GatewayError} when the path's
 * percent-encoding is malformed, as a server would answer.
 */
export function injectEnviron(options: InjectOptions, errors: ErrorStream): Environ {
  let data: Uint8Array = new Uint8Array(0)
  const given = Object.entries(options.headers ?? {})
  const has = (name: string): boolean => given.some(([k]) => k.toLowerCase() === name)
  const headers: string[] = []
  // Values as a parser gives them: surrounding spaces and tabs are not part of a field value (RFC 9112 §5.1).
  for (const [name, value] of given) headers.push(name, value.replace(/^[ \t]+|[ \t]+$/g, ''))
  if (options.body !== undefined) {
    if (typeof options.body === 'string') data = encoder.encode(options.body)
    else if (options.body instanceof Uint8Array) data = options.body
    else {
      data = encoder.encode(JSON.stringify(options.body))
      if (!has('content-type')) headers.push('content-type', 'application/json')
    }
  }
  const chunked = has('transfer-encoding')
  if (!chunked && (data.length > 0 || options.body !== undefined) && !has('content-length')) headers.push('content-length', String(data.length))
  headers.push(':authority', 'localhost') // the Host when none is given
  const environ = buildEnviron(options.method ?? 'GET', options.url ?? '/', 'HTTP/1.1', headers, { ...LOCAL, errors }, bodyInput(data, chunked))
  Object.assign(environ, options.environ)
  return environ
}

/**
 * The runner's sink for `inject`: collects the response in memory. A
 * response cut after it started rejects with the app's error.
 */
class InjectCall extends GatewayCall {
  readonly chunks: Uint8Array[] = []
  private readonly errors: ErrorStream
  private readonly settle: (error: unknown) => void

  constructor(method: string, target: string, errors: ErrorStream, settle: (error: unknown) => void) {
    super(method, target)
    this.errors = errors
    this.settle = settle
  }

  protected sendWhole(chunks: readonly Chunk[], total: number): void {
    if (!this.noBody && total > 0) this.chunks.push(joinChunks(chunks, total))
  }
  protected sendHead(): void {}
  protected sendChunk(chunk: Chunk): void {
    this.chunks.push(chunkBytes(chunk))
  }
  protected sendEnd(): void {}
  protected sendError(status: number, message: string): void {
    this.code = status
    this.status = `${status} ${STATUS_TEXT[status] ?? ''}`
    this.headers = [['content-type', 'text/plain; charset=utf-8']]
    this.chunks.length = 0
    if (this.method !== 'HEAD') this.chunks.push(encoder.encode(`${message}\n`))
  }
  protected cut(error: unknown): void {
    this.cutBy = error
  }
  cutBy: unknown = undefined
  protected mustWait(): boolean {
    return false
  }
  protected waitWritable(): Promise<void> {
    return Promise.resolve()
  }
  protected log(message: string): void {
    writeLog(this.errors, message)
  }
  protected override finished(): void {
    this.settle(this.cutBy)
  }
}

/** Calls `app` in process and collects the response. */
export async function inject(app: GatewayApp, options: InjectOptions = {}): Promise<InjectResponse> {
  const logged: string[] = []
  const errors: ErrorStream = options.errors ?? { write: (m) => void logged.push(m), flush() {} }
  const method = options.method ?? 'GET'
  const url = options.url ?? '/'
  let cutBy: unknown
  const call = await new Promise<InjectCall>((resolve) => {
    const made: InjectCall = new InjectCall(method, url, errors, (error) => {
      cutBy = error
      resolve(made)
    })
    let environ: Environ
    try {
      environ = injectEnviron(options, errors)
    } catch (error) {
      made.refuseFor(error)
      return
    }
    made.run(app, environ)
  })
  if (cutBy !== undefined) throw cutBy
  const bytes = concat(call.chunks)
  const text = decoder.decode(bytes)
  const flat: Record<string, string> = {}
  for (const [n, v] of call.headers) {
    const lower = n.toLowerCase()
    flat[lower] = flat[lower] === undefined ? v : `${flat[lower]}, ${v}`
  }
  return {
    status: call.code,
    statusText: call.status.slice(4),
    headers: flat,
    rawHeaders: call.headers,
    body: text,
    bytes,
    json: <T>() => JSON.parse(text) as T,
    errors: logged,
  }
}
