/**
 * The framework's reply: the status and headers a handler sets before it
 * returns its value. Headers are checked as they are set, so a bad one fails
 * in the handler that set it (a 500), never on the wire.
 */
import type { Environ, Headers } from '../gateway/spec.js'
import { checkHeader, isHopByHop } from '../gateway/headers.js'
import { clearCookieHeader, setCookieHeader, type CookieOptions, type SetCookieOptions } from '../../plugins/cookies.js'
import { HTML_TYPE, type Html, type HtmlStream } from '../../plugins/html.js'

export class Reply {
  /** The response status; 200 unless set (204 when the handler returns nothing). */
  statusCode: number
  /** The headers set so far, `null` when none (the common case allocates nothing). */
  headers: Headers | null
  /** Set by {@link send}: a hook answered, the handler is skipped. */
  sent: boolean
  /** The value given to {@link send}. */
  payload: unknown
  /** When the request started (`performance.now()`), set when the route has onResponse hooks. */
  startTime: number
  readonly environ: Environ

  constructor(environ: Environ) {
    this.environ = environ
    this.statusCode = 200
    this.headers = null
    this.sent = false
    this.payload = undefined
    this.startTime = 0
  }

  /** Sets the status code (200–599). */
  status(code: number): this {
    if (!Number.isInteger(code) || code < 200 || code > 599) throw new TypeError(`postern: status must be an integer 200–599, got ${String(code)}`)
    this.statusCode = code
    return this
  }

  /** Fastify's name for {@link status}: `reply.code(201).send(x)`. */
  code(code: number): this {
    return this.status(code)
  }

  /** Adds a header (repeatable, e.g. `set-cookie`). Refuses invalid and hop-by-hop headers. */
  header(name: string, value: string | number): this {
    const text = typeof value === 'number' ? String(value) : value
    const problem = checkHeader(name, text)
    if (problem !== null) throw new TypeError(`postern: ${problem}`)
    if (isHopByHop(name)) throw new TypeError(`postern: ${name} is a hop-by-hop header; framing is the server's job`)
    ;(this.headers ??= []).push([name, text])
    return this
  }

  /** Replaces any header of that name. */
  setHeader(name: string, value: string | number): this {
    this.removeHeader(name)
    return this.header(name, value)
  }

  /** The first value of a header, any case. */
  getHeader(name: string): string | undefined {
    const lower = name.toLowerCase()
    return this.headers?.find(([n]) => n.toLowerCase() === lower)?.[1]
  }

  removeHeader(name: string): this {
    const lower = name.toLowerCase()
    if (this.headers !== null) this.headers = this.headers.filter(([n]) => n.toLowerCase() !== lower)
    return this
  }

  /** Sets `Content-Type`. */
  type(contentType: string): this {
    return this.setHeader('content-type', contentType)
  }

  /** Adds a `Set-Cookie` header (`SameSite=Lax` unless given, as in Fastify); `signed: true` signs the value with the secret of `app.use(cookies({ secret }))`. */
  cookie(name: string, value: string, options?: SetCookieOptions): this {
    return this.header('set-cookie', setCookieHeader(this.environ, name, value, options))
  }

  /** Adds a `Set-Cookie` header that deletes the cookie (give the `path` and `domain` it was set with). */
  clearCookie(name: string, options?: CookieOptions): this {
    return this.header('set-cookie', clearCookieHeader(name, options))
  }

  /** Sends a page: `text/html; charset=utf-8` and the value (a string is sent as it is, so it must be trusted markup). */
  html(value: string | Html | HtmlStream): this {
    return this.type(HTML_TYPE).send(value)
  }

  /** Redirects (302 unless given). */
  redirect(location: string, code = 302): this {
    return this.status(code).setHeader('location', location)
  }

  /**
   * Answers with `value` now: from a hook, it skips the handler (and the
   * hooks after it). From a handler, returning the value is the same, and so
   * is returning the reply itself (`return reply.code(201).send(x)`). When a
   * handler calls `send()` and also returns another value, `send()`'s value
   * is sent and the mistake is reported to the error log.
   */
  send(value?: unknown): this {
    this.sent = true
    this.payload = value
    return this
  }

  /** Milliseconds since the request started (meaningful in onResponse hooks). */
  get elapsedTime(): number {
    return this.startTime === 0 ? 0 : performance.now() - this.startTime
  }
}
