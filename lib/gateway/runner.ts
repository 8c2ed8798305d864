/**
 * One gateway call driven the way lib/gateway.ts says a server must, for the
 * adapters that put postern apps on other servers (`toNodeListener`,
 * `toFetch`): it checks `startResponse` arguments, keeps the response
 * replaceable until the first body byte, and calls `close()` exactly once.
 * The adapter only moves the committed head and the chunks to its server.
 */
import { describeError, errorAnswer } from './errors.js'
import { GatewayError, type Body, type Environ, type ErrorStream, type GatewayApp, type Headers, type StartResponse, type Write } from './spec.js'
import { STATUS_TEXT, checkHeader, isHopByHop, parseStatus } from './headers.js'
import { concat } from './stream-input.js'

/** A response whose head is fixed: the app can no longer replace it. */
export interface Started {
  status: number
  /** The reason phrase, possibly empty. */
  reason: string
  headers: Headers
  /** Bytes produced before the head was fixed (`write()` chunks, then the first non-empty body chunk). */
  first: Uint8Array[]
  /** True when the body already ended: `first` is the whole body. */
  readonly done: boolean
  /** The next non-empty chunk; null at the end. Rejects when the body fails. */
  next(): Promise<Uint8Array | null>
  /** Calls the body's `close()` (once, whatever happened); safe to call again. */
  close(): Promise<void>
}

const encoder = new TextEncoder()

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk
  if (typeof chunk === 'string') return encoder.encode(chunk)
  throw new TypeError(`body chunks must be Uint8Array or string, got ${chunk === null ? 'null' : typeof chunk} [chunk-type]`)
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
}

/**
 * Calls `app` and runs it up to its first body byte (or its end). Resolves
 * with the fixed head; rejects (after closing the body) when the app fails
 * before that, so the adapter can still answer with an error.
 */
export async function callApp(app: GatewayApp, environ: Environ): Promise<Started> {
  let status: string | null = null
  let headers: Headers = []
  let fixed = false
  const written: Uint8Array[] = []

  const write: Write = (chunk) => {
    written.push(toBytes(chunk))
  }
  const startResponse: StartResponse = (s, h, error) => {
    if (status !== null) {
      if (error === undefined) throw new Error('startResponse was called a second time without an error [start-response-order]')
      if (fixed) throw error
    }
    if (parseStatus(s) < 0) throw new TypeError(`status ${JSON.stringify(s)} is not of the form '200 OK' with a code 200-599 [status-form]`)
    if (!Array.isArray(h)) throw new TypeError('headers must be an array of [name, value] pairs [header-form]')
    for (const pair of h as unknown[]) {
      if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError('each header must be a [name, value] pair [header-form]')
      const problem = checkHeader(pair[0], pair[1])
      if (problem !== null) throw new TypeError(`${problem} [header-form]`)
      if (isHopByHop(pair[0] as string)) throw new TypeError(`header ${JSON.stringify(pair[0])} is hop-by-hop: framing is the server's job [hop-by-hop]`)
    }
    status = s
    headers = h.slice()
    return write
  }

  let body: Body | undefined
  let iterator: Iterator<unknown> | AsyncIterator<unknown> | undefined
  let done = false
  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // An abandoned generator gets return() so its finally blocks run;
      // not awaited, as it may be suspended on something that never settles.
      if (!done && iterator?.return !== undefined) {
        try {
          void Promise.resolve(iterator.return()).catch(() => {})
        } catch {
          // a running sync generator refuses return(): nothing to do
        }
      }
      if (typeof body?.close === 'function') await body.close()
    })()
    return closing
  }

  const first: Uint8Array[] = []
  try {
    const result = app(environ, startResponse)
    body = (isPromiseLike(result) ? await result : result) as Body
    if (typeof body !== 'object' || body === null) throw new TypeError(`the app must return an iterable body, got ${body === null ? 'null' : typeof body} [app-result]`)
    if (Array.isArray(body)) {
      // Every chunk is already here: take them all, the length is known.
      for (const chunk of body as unknown[]) {
        const bytes = toBytes(chunk)
        if (bytes.byteLength > 0) first.push(bytes)
      }
      done = true
    } else if (written.length === 0) {
      if (Symbol.asyncIterator in body) iterator = (body as AsyncIterable<unknown>)[Symbol.asyncIterator]()
      else if (Symbol.iterator in body) iterator = (body as Iterable<unknown>)[Symbol.iterator]()
      else throw new TypeError('the app must return an iterable or async iterable body [app-result]')
      for (;;) {
        const step = await iterator.next()
        if (step.done === true) {
          done = true
          break
        }
        const bytes = toBytes(step.value)
        if (bytes.byteLength > 0) {
          first.push(bytes)
          break
        }
      }
    } else {
      // Bytes already went out through write(): the head is fixed now.
      iterator = Symbol.asyncIterator in body ? (body as AsyncIterable<unknown>)[Symbol.asyncIterator]() : (body as Iterable<unknown>)[Symbol.iterator]()
    }
    if (status === null) throw new Error('the app did not call startResponse before its body [start-response-order]')
  } catch (error) {
    await close().catch(() => {})
    throw error
  }
  fixed = true
  const code = parseStatus(status)
  const reason = (status as string).slice(4)
  const firstChunks = [...written.splice(0), ...first]

  // [content-length]: bytes beyond a declared length would be read as the
  // next response on a kept-alive connection; fewer would hang the client.
  const declared = hasNoBody(environ.REQUEST_METHOD, code) ? -1 : declaredLength(headers)
  let sent = firstChunks.reduce((n, c) => n + c.byteLength, 0)
  if (declared >= 0 && (sent > declared || (done && written.length === 0 && sent !== declared))) {
    await close().catch(() => {})
    throw new Error(`[content-length] the app set Content-Length: ${declared} but its body has ${sent > declared ? 'more' : 'fewer'} bytes (${sent})`)
  }
  const count = (bytes: Uint8Array | null): Uint8Array | null => {
    if (declared < 0) return bytes
    if (bytes === null) {
      if (sent !== declared) throw new Error(`[content-length] the app set Content-Length: ${declared} but its body ended after ${sent} bytes`)
      return null
    }
    sent += bytes.byteLength
    if (sent > declared) throw new Error(`[content-length] the app set Content-Length: ${declared} but its body has more bytes`)
    return bytes
  }

  /** The next non-empty chunk: pending write() chunks first, then the body's. */
  const pull = async (): Promise<Uint8Array | null> => {
    for (;;) {
      const pending = written.shift()
      if (pending !== undefined) {
        if (pending.byteLength > 0) return pending
        continue
      }
      if (done || iterator === undefined) {
        done = true
        return null
      }
      const step = await iterator.next()
      if (step.done === true) {
        done = true
        continue // write() chunks may have been added by the last step
      }
      const bytes = toBytes(step.value)
      if (bytes.byteLength > 0) return bytes
    }
  }

  return {
    status: code,
    reason,
    headers,
    first: firstChunks,
    get done() {
      return done && written.length === 0
    },
    next: async () => count(await pull()),
    close,
  }
}

/** The app's Content-Length as a number; -1 when it set none. */
function declaredLength(headers: Headers): number {
  for (const [name, value] of headers) {
    if (name.length === 14 && name.toLowerCase() === 'content-length') return /^\d+$/.test(value) ? Number(value) : -1
  }
  return -1
}

/** The error response an adapter sends when the app failed before its response started. */
export interface ErrorResponse {
  status: number
  reason: string
  headers: Headers
  body: Uint8Array
}

/**
 * Turns an error raised before the response started into the response
 * postern's server sends for it: a {@link GatewayError} with a 4xx/5xx
 * status keeps it (the message shown when `expose`), anything else is a
 * 500; 5xx errors are reported to `errors`, never shown to the client.
 */
export function errorResponse(error: unknown, errors: ErrorStream): ErrorResponse {
  const { status, message } = errorAnswer(error)
  if (status >= 500) reportError(errors, 'app error', error)
  return plainResponse(status, message)
}

/** A plain-text response as postern's server words its own errors. */
export function plainResponse(status: number, message: string): ErrorResponse {
  const body = encoder.encode(message + '\n')
  return { status, reason: STATUS_TEXT[status] ?? '', headers: textHeaders(body), body }
}

/** Writes an error to the error stream, with its stack. */
export function reportError(errors: ErrorStream, what: string, error: unknown): void {
  try {
    errors.write(`postern: ${what}: ${describeError(error)}\n`)
    errors.flush()
  } catch {
    // a broken error log must not break the response
  }
}

function textHeaders(body: Uint8Array): Headers {
  return [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(body.byteLength)],
  ]
}


/** Whether a response to this method and status carries no body (RFC 9110 §6.4.1). */
export function hasNoBody(method: string, status: number): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)
}

/** Pulls the rest of a body and drops it (HEAD, 204, 304), then closes it. */
export async function drain(started: Started, errors: ErrorStream): Promise<void> {
  try {
    while ((await started.next()) !== null) {
      // discarded: this response has no body
    }
  } catch (error) {
    reportError(errors, 'app error after the response started', error)
  } finally {
    await started.close().catch((error: unknown) => reportError(errors, 'body close() failed', error))
  }
}

export { concat }
