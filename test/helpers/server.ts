/**
 * Starts a real postern server on 127.0.0.1 for one test and tears it down
 * with the test, plus the small apps the server tests share (echo the
 * environ, echo the request body). Kept here so each test file says only
 * what it checks.
 */
import { createServer } from '../../lib/server/index.js'
import type { ServerOptions } from '../../lib/server/options.js'
import type { Environ, GatewayApp, ErrorStream } from '../../lib/gateway/spec.js'
import { RawClient, exchange, type ExchangeOptions, type ReadResult, type ClientOptions, type RawResponse } from './raw.js'
import { validate } from '../../lib/gateway/validate.js'

/** The part of a tap test these helpers use. */
export interface Teardown {
  teardown(fn: () => unknown): void
}

export interface Served {
  port: number
  /** Opens a raw connection that is destroyed with the test. */
  connect(options?: ClientOptions): Promise<RawClient>
  /** One request/response exchange on a new connection. */
  exchange(data: string | Buffer, options?: ExchangeOptions): Promise<ReadResult>
  /** Closes the server now (also done at teardown). */
  close(): Promise<void>
  /** Messages the server or app wrote to `gateway.errors`. */
  errors: string[]
}

/**
 * Serves `app` until the test ends. Errors go to a list (`served.errors`)
 * instead of standard error unless `options.errors` is given.
 */
export async function serve(t: Teardown, app: GatewayApp, options: ServerOptions = {}): Promise<Served> {
  const errors: string[] = []
  const errorStream: ErrorStream = { write: (m) => void errors.push(m), flush() {} }
  const server = createServer(app, { errors: errorStream, ...options })
  const address = await server.listen({ port: 0, host: '127.0.0.1' })
  const port = address.port
  const clients = new Set<RawClient>()
  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= server.close().then(() => {})
    return closing
  }
  t.teardown(async () => {
    for (const c of clients) c.destroy()
    // A server that never finishes closing must not hang the run (nor end it early).
    let timer: NodeJS.Timeout | undefined
    const gaveUp = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 3000)))
    const outcome = await Promise.race([close().then(() => 'closed' as const), gaveUp])
    clearTimeout(timer)
    if (outcome === 'timeout') process.stderr.write(`server.close() did not resolve within 3 s (port ${port})\n`)
  })
  return {
    port,
    errors,
    close,
    async connect(opts?: ClientOptions) {
      const c = await RawClient.connect(port, opts)
      clients.add(c)
      return c
    },
    exchange: (data, opts) => exchange(port, data, opts),
  }
}

/**
 * Serves `app` under validate(): a violation of the interface by either side
 * throws, which the server turns into a 500 or a cut response that a test's
 * assertions would see.
 */
export function serveValidated(t: Teardown, app: GatewayApp, options: ServerOptions = {}): Promise<Served> {
  return serve(t, validate(app), options)
}

/** Sends one request and returns its response (failing when none came). */
export async function firstResponse(served: Served, request: string): Promise<RawResponse> {
  const { responses } = await served.exchange(request)
  if (responses[0] === undefined) throw new Error('no response')
  return responses[0]
}

/** Every string-valued environ key, plus url_scheme and input.length: for asserting what the server filled in. */
export function environSnapshot(environ: Environ): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(environ)) if (typeof value === 'string') out[key] = value
  out['gateway.url_scheme'] = environ['gateway.url_scheme']
  out['gateway.version'] = environ['gateway.version']
  out['input.length'] = environ['gateway.input'].length
  return out
}

/** Answers 200 with the JSON of {@link environSnapshot}. */
export const echoEnviron: GatewayApp = (environ, startResponse) => {
  const body = JSON.stringify(environSnapshot(environ))
  startResponse('200 OK', [['Content-Type', 'application/json']])
  return [body]
}

/** Reads the whole body with `text()` and answers 200 with JSON {method, path, length, body, trailers}. */
export const echoBody: GatewayApp = async (environ, startResponse) => {
  const input = environ['gateway.input']
  const body = await input.text()
  startResponse('200 OK', [['Content-Type', 'application/json']])
  return [JSON.stringify({ method: environ.REQUEST_METHOD, path: environ.PATH_INFO, length: input.length, body, trailers: input.trailers })]
}

/** Answers 200 `text/plain` with `text` (Content-Length framed). */
export function textApp(text: string): GatewayApp {
  return (_environ, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return [text]
  }
}

/** Parses a response body as JSON into a record. */
export function json(body: Buffer): Record<string, unknown> {
  return JSON.parse(body.toString('utf8')) as Record<string, unknown>
}

/** Resolves with the promise's value, or with `fallback` after `ms` milliseconds (the timer is cleared either way). */
export async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)))
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
