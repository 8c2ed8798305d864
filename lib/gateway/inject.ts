/**
 * In-process requests: calls a gateway app with an environ built from
 * `{ method, url, headers, body }` and collects its response, with no
 * socket. It plays the server's part faithfully enough for tests: HEAD,
 * 204 and 304 bodies are iterated and dropped, `close()` is called once,
 * a second `startResponse` with an error replaces the first, and an app
 * that throws before starting answers 500.
 */
import { describeError } from './errors.js'
import { GatewayError, GATEWAY_VERSION, type Body, type Environ, type ErrorStream, type GatewayApp, type GatewayInput, type Headers } from './spec.js'
import { environKey, parseStatus } from './headers.js'
import { decodePath } from './target.js'
import { StreamInput } from './stream-input.js'

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

/** The request body as the server would give it, from bytes in memory. */
function bodyInput(data: Uint8Array, chunked: boolean): GatewayInput {
  async function* once(): AsyncIterable<Uint8Array> {
    if (data.length > 0) yield data
  }
  return new StreamInput(once(), chunked ? null : data.length)
}

/** Builds the environ a server would for this request. */
export function buildEnviron(options: InjectOptions, errors: ErrorStream): Environ {
  const method = options.method ?? 'GET'
  const url = options.url ?? '/'
  const q = url.indexOf('?')
  const rawPath = q === -1 ? url : url.slice(0, q)
  let data: Uint8Array = new Uint8Array(0)
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(options.headers ?? {})) headers[k.toLowerCase()] = v
  if (options.body !== undefined) {
    if (typeof options.body === 'string') data = encoder.encode(options.body)
    else if (options.body instanceof Uint8Array) data = options.body
    else {
      data = encoder.encode(JSON.stringify(options.body))
      headers['content-type'] ??= 'application/json'
    }
  }
  const chunked = headers['transfer-encoding'] !== undefined
  if (!chunked && (data.length > 0 || options.body !== undefined)) headers['content-length'] ??= String(data.length)
  const environ: Environ = {
    REQUEST_METHOD: method,
    SCRIPT_NAME: '',
    PATH_INFO: decodePath(rawPath) ?? rawPath, // in process, a malformed escape is left as sent
    QUERY_STRING: q === -1 ? '' : url.slice(q + 1),
    REQUEST_URI: url,
    CONTENT_TYPE: headers['content-type'] ?? '',
    CONTENT_LENGTH: headers['content-length'] ?? '',
    SERVER_NAME: 'localhost',
    SERVER_PORT: '80',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REMOTE_ADDR: '127.0.0.1',
    REMOTE_PORT: '0',
    'gateway.version': GATEWAY_VERSION,
    'gateway.url_scheme': 'http',
    'gateway.input': bodyInput(data, chunked),
    'gateway.errors': errors,
    'gateway.multithread': false,
    'gateway.multiprocess': false,
    'gateway.run_once': false,
  }
  environ.HTTP_HOST = 'localhost'
  for (const [name, value] of Object.entries(headers)) {
    if (name === 'content-type' || name === 'content-length' || name.includes('_')) continue
    environ[environKey(name)] = value
  }
  Object.assign(environ, options.environ)
  return environ
}


/** Calls `app` in process and collects the response. */
export async function inject(app: GatewayApp, options: InjectOptions = {}): Promise<InjectResponse> {
  const logged: string[] = []
  const errors: ErrorStream = options.errors ?? { write: (m) => void logged.push(m), flush() {} }
  const environ = buildEnviron(options, errors)
  let status: string | undefined
  let headers: Headers = []
  let sent = false
  const chunks: Uint8Array[] = []
  const add = (chunk: Uint8Array | string) => {
    const bytes = typeof chunk === 'string' ? encoder.encode(chunk) : chunk
    if (bytes.length > 0) sent = true
    chunks.push(bytes)
  }
  const startResponse = (s: string, h: Headers, error?: unknown) => {
    if (status !== undefined) {
      if (error === undefined) throw new Error('startResponse called twice without an error')
      if (sent) throw error
      chunks.length = 0
    }
    if (parseStatus(s) === -1) throw new TypeError(`invalid status ${JSON.stringify(s)}`)
    status = s
    headers = h
    return add
  }
  let body: Body | undefined
  try {
    body = await app(environ, startResponse)
    if (Symbol.asyncIterator in body) {
      for await (const chunk of body as AsyncIterable<Uint8Array | string>) add(chunk)
    } else {
      for (const chunk of body as Iterable<Uint8Array | string>) add(chunk)
    }
    if (status === undefined) throw new Error('the app returned without calling startResponse')
  } catch (error) {
    errors.write(describeError(error))
    if (sent) throw error
    status = error instanceof GatewayError && error.status >= 400 ? `${error.status} Error` : '500 Internal Server Error'
    headers = [['content-type', 'text/plain; charset=utf-8']]
    chunks.length = 0
  } finally {
    await body?.close?.()
  }
  const code = parseStatus(status)
  const noBody = environ.REQUEST_METHOD === 'HEAD' || code === 204 || code === 304
  const bytes = noBody ? new Uint8Array(0) : Buffer.concat(chunks)
  const text = decoder.decode(bytes)
  const flat: Record<string, string> = {}
  for (const [n, v] of headers) {
    const lower = n.toLowerCase()
    flat[lower] = flat[lower] === undefined ? v : `${flat[lower]}, ${v}`
  }
  return {
    status: code,
    statusText: status.slice(4),
    headers: flat,
    rawHeaders: headers,
    body: text,
    bytes,
    json: <T>() => JSON.parse(text) as T,
    errors: logged,
  }
}
