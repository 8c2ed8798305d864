/**
 * `toFetch(app)`: a postern app as a Fetch handler, `(Request) => Response`,
 * so it runs on Bun.serve, Deno.serve, workers-style hosts, or in process.
 * Both bodies stream: `request.body` becomes `gateway.input`, the app's body
 * becomes a pull-driven `ReadableStream`, so a slow client slows the app.
 * No Node built-ins are used, so the module runs on any of those runtimes.
 */
import { GATEWAY_VERSION, type Environ, type ErrorStream, type GatewayApp } from '../gateway/spec.js'
import { environKey } from '../gateway/headers.js'
import { callApp, concat, drain, errorResponse, hasNoBody, plainResponse, reportError, type ErrorResponse, type Started } from '../gateway/runner.js'
import { DEFAULT_BODY_LIMIT, StreamInput } from '../gateway/stream-input.js'
import { decodePath } from '../gateway/target.js'

export interface FetchAdapterOptions {
  /** Where app errors go (`gateway.errors`); default: `console.error`. */
  errors?: ErrorStream
  /** The default limit of `gateway.input.bytes()`/`text()`, in bytes (1 MiB). */
  maxBodySize?: number
}

/**
 * A Fetch handler. The optional second argument is what the host passes:
 * Deno's `ServeHandlerInfo` or Bun's `Server`, read for the client address.
 */
export type FetchHandler = (request: Request, info?: unknown) => Promise<Response>

const consoleErrors: ErrorStream = {
  write(message) {
    console.error(message.endsWith('\n') ? message.slice(0, -1) : message)
  },
  flush() {},
}

/** Wraps `app` as a Fetch handler. */
export function toFetch(app: GatewayApp, options: FetchAdapterOptions = {}): FetchHandler {
  const errors = options.errors ?? consoleErrors
  const limit = options.maxBodySize ?? DEFAULT_BODY_LIMIT
  return async (request, info) => {
    const environ = fetchEnviron(request, info, errors, limit)
    if (environ === null) return plain(request, plainResponse(400, 'malformed percent-encoding in the request path'))
    let started: Started
    try {
      started = await callApp(app, environ)
    } catch (error) {
      return plain(request, errorResponse(error, errors))
    }
    const headers = new Headers()
    for (const [name, value] of started.headers) headers.append(name, value)
    const init: ResponseInit = { status: started.status, statusText: started.reason, headers }
    const noBody = hasNoBody(request.method, started.status) || started.status === 205
    if (started.done) {
      await started.close().catch((error: unknown) => reportError(errors, 'body close() failed', error))
      const whole = concat(started.first)
      // A HEAD answer carries the length a GET would have (RFC 9110 §9.3.2).
      if (!hasNoBody('GET', started.status) && !headers.has('content-length')) headers.set('content-length', String(whole.byteLength))
      return new Response(noBody || whole.byteLength === 0 ? null : whole, init)
    }
    if (noBody) {
      void drain(started, errors)
      return new Response(null, init)
    }
    return new Response(bodyStream(started, request.signal, errors), init)
  }
}

function plain(request: Request, response: ErrorResponse): Response {
  return new Response(request.method === 'HEAD' ? null : response.body, { status: response.status, statusText: response.reason, headers: response.headers })
}

/** The app's body as a stream that pulls one chunk per read, closing the body when done or cancelled. */
function bodyStream(started: Started, signal: AbortSignal, errors: ErrorStream): ReadableStream<Uint8Array> {
  const first = started.first.slice()
  const close = (): void => {
    void started.close().catch((error: unknown) => reportError(errors, 'body close() failed', error))
  }
  // The client went away: hosts abort the request's signal.
  signal.addEventListener('abort', close, { once: true })
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const head = first.shift()
        if (head !== undefined) {
          controller.enqueue(head)
          return
        }
        try {
          const chunk = await started.next()
          if (chunk === null) {
            controller.close()
            close()
          } else controller.enqueue(chunk)
        } catch (error) {
          // Bytes went out: an errored stream makes the host cut the response.
          reportError(errors, 'app error after the response started', error)
          controller.error(error)
          close()
        }
      },
      cancel() {
        close()
      },
    },
    { highWaterMark: 0 },
  )
}

/** The environ for a Fetch request; null when the path cannot be decoded (a 400). */
export function fetchEnviron(request: Request, info: unknown, errors: ErrorStream, limit = DEFAULT_BODY_LIMIT): Environ | null {
  const url = new URL(request.url)
  const pathInfo = decodePath(url.pathname)
  if (pathInfo === null) return null
  const https = url.protocol === 'https:'
  const remote = remoteOf(request, info)
  const environ: Environ = {
    REQUEST_METHOD: request.method,
    SCRIPT_NAME: '',
    PATH_INFO: pathInfo,
    QUERY_STRING: url.search.slice(1),
    REQUEST_URI: url.pathname + url.search,
    CONTENT_TYPE: request.headers.get('content-type') ?? '',
    CONTENT_LENGTH: request.headers.get('content-length') ?? '',
    SERVER_NAME: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    SERVER_PORT: url.port !== '' ? url.port : https ? '443' : '80',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REMOTE_ADDR: remote.address,
    REMOTE_PORT: remote.port,
    'gateway.version': GATEWAY_VERSION,
    'gateway.url_scheme': https ? 'https' : 'http',
    'gateway.input': undefined as unknown as StreamInput,
    'gateway.errors': errors,
    'gateway.multithread': false,
    'gateway.multiprocess': false,
    'gateway.run_once': false,
  }
  request.headers.forEach((value, name) => {
    if (name === 'content-type' || name === 'content-length' || name.includes('_')) return
    environ[environKey(name)] = value
  })
  if (environ.HTTP_HOST === undefined) environ.HTTP_HOST = url.host
  const length = /^\d+$/.test(environ.CONTENT_LENGTH) ? Number(environ.CONTENT_LENGTH) : request.body === null ? 0 : null
  environ['gateway.input'] = new StreamInput(streamChunks(request.body), length, limit)
  return environ
}

/** A request body stream as an async iterable (not every runtime makes streams iterable). */
async function* streamChunks(stream: ReadableStream<Uint8Array> | null): AsyncGenerator<Uint8Array> {
  if (stream === null) return
  const reader = stream.getReader()
  let done = false
  try {
    for (;;) {
      const step = await reader.read()
      if (step.done) break
      yield step.value
    }
    done = true
  } finally {
    if (!done) await reader.cancel().catch(() => {})
    else reader.releaseLock()
  }
}

/** The client's address, from Deno's handler info (`remoteAddr`) or Bun's server (`requestIP`). */
function remoteOf(request: Request, info: unknown): { address: string; port: string } {
  if (typeof info === 'object' && info !== null) {
    const deno = (info as { remoteAddr?: { hostname?: unknown; port?: unknown } }).remoteAddr
    if (deno !== undefined && typeof deno.hostname === 'string') return { address: deno.hostname, port: String(deno.port ?? '') }
    const bun = info as { requestIP?: (r: Request) => { address?: unknown; port?: unknown } | null }
    if (typeof bun.requestIP === 'function') {
      const ip = bun.requestIP(request)
      if (ip !== null && typeof ip.address === 'string') return { address: ip.address, port: String(ip.port ?? '') }
    }
  }
  return { address: '', port: '' }
}
