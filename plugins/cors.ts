/**
 * `cors(options)`: Cross-Origin Resource Sharing (the Fetch standard's CORS
 * protocol) as gateway middleware, with the options users of `@fastify/cors`
 * and the `cors` package know.
 *
 * - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
 *   is answered here and never reaches the app: a route that has only `GET`,
 *   an auth layer that would refuse the header-less preflight, or the
 *   router's automatic 405 never see it.
 * - Any other request with an `Origin` goes to the app, and its response
 *   gets the `Access-Control-*` headers (a header the app set itself is
 *   kept, never doubled).
 * - A disallowed origin gets no `Access-Control-Allow-*` header at all (the
 *   browser then refuses the response to the page); its preflight is
 *   answered too, without them, and does not reach the app either.
 * - `Vary: Origin` is added (to the app's own `Vary`) whenever the answer
 *   depends on the origin: every option but `origin: '*'`. It is added to responses to requests without `Origin`
 *   too, as the Fetch standard asks (§3.2.5): else a cache could hand the
 *   header-less answer to a cross-origin request. With the default
 *   `origin: '*'`, a request without `Origin` passes through untouched and
 *   allocates nothing.
 * - `credentials` never go with a wildcard origin: echoing every origin
 *   with `Access-Control-Allow-Credentials` would let any website read a
 *   logged-in user's answers, so `origin: '*'` (the default) with
 *   credentials throws; `origin: true` says so knowingly. Wildcard methods
 *   and headers are answered with the ones asked for (browsers take `*`
 *   literally with credentials).
 *
 * Origins are compared as browsers send them: `scheme://host[:port]`, lower
 * case, no default port, no path. Options are checked when `cors()` is
 * called, so a typo fails at start-up, not on a user's request.
 */
import type { AppResult, Body, Environ, Headers, Middleware, StartResponse } from '../lib/gateway/spec.js'
import { isToken, statusLine } from '../lib/gateway/headers.js'
import { addVary, headerIndex } from '../lib/gateway/vary.js'

/**
 * What an origin function says: `true` allows (the request's origin is sent
 * back), `false` refuses, a string is sent as `Access-Control-Allow-Origin`.
 * With `credentials`, `'*'` refuses: browsers reject it with credentials,
 * and echoing the origin instead would allow every website.
 */
export type OriginVerdict = boolean | string

/** Decides per request; may return a promise (only then does the request wait for one). */
export type OriginFunction = (origin: string, environ: Environ) => OriginVerdict | PromiseLike<OriginVerdict>

/**
 * Which origins may read responses: `'*'` (any, the default; not with
 * credentials), `true` (any, answered with the request's own origin, even
 * with credentials), `false` (CORS off: the middleware does nothing), one
 * origin, a RegExp tested against the origin, a list of origins and
 * RegExps, or a function (whose `'*'` refuses the origin when credentials
 * are on).
 */
export type CorsOrigin = boolean | string | RegExp | ReadonlyArray<string | RegExp> | OriginFunction

export interface CorsOptions {
  /**
   * Which origins are allowed; default `'*'`, which throws with `credentials`
   * (list the origins, or pass `true` to echo any). An origin function that
   * returns `'*'` while `credentials` is on refuses the origin: no
   * `Access-Control-Allow-*` header is sent. See {@link CorsOrigin}.
   */
  origin?: CorsOrigin
  /** Send `Access-Control-Allow-Credentials: true` (cookies, HTTP auth); default false. */
  credentials?: boolean
  /** Methods a preflight allows, a list or comma-separated; default `GET,HEAD,PUT,PATCH,POST,DELETE`. `'*'` for any. */
  methods?: string | readonly string[]
  /** Request headers a preflight allows; default: the ones the preflight asks for (`Access-Control-Request-Headers`). `'*'` for any. */
  allowedHeaders?: string | readonly string[]
  /** Response headers the page may read beyond the safelisted ones; default none. */
  exposedHeaders?: string | readonly string[]
  /** Seconds a browser may cache a preflight's answer (`Access-Control-Max-Age`); default: not sent (browser default, 5 s). */
  maxAge?: number
  /** Status of a preflight's answer; default 204 (some old clients need 200). */
  optionsSuccessStatus?: number
  /** Answer preflights here (default true); false passes them to the app as ordinary requests, with the CORS headers added. */
  preflight?: boolean
  /** An `OPTIONS` with `Origin` but no `Access-Control-Request-Method` is refused with 400 instead of passed to the app; default false. */
  strictPreflight?: boolean
}

const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  'origin',
  'credentials',
  'methods',
  'allowedHeaders',
  'exposedHeaders',
  'maxAge',
  'optionsSuccessStatus',
  'preflight',
  'strictPreflight',
])

export const DEFAULT_CORS_METHODS = 'GET,HEAD,PUT,PATCH,POST,DELETE'

/** The origin's answer: the `Access-Control-Allow-Origin` value, or null when refused. */
type Allow = (origin: string, environ: Environ) => string | null | PromiseLike<string | null>

/** The options, checked and turned into what each request needs. */
interface Settings {
  allow: Allow
  /** Whether the answer depends on the origin: `Vary: Origin`. */
  vary: boolean
  credentials: boolean
  /** `Access-Control-Allow-Methods`, or null to reflect the requested method. */
  methods: string | null
  /** `Access-Control-Allow-Headers`, null to reflect the requested ones, '' for none. */
  allowedHeaders: string | null
  exposedHeaders: string
  maxAge: string
  status: string
  preflight: boolean
  strict: boolean
}

const EMPTY_BODY: Body = Object.freeze([]) as unknown as Body
const BAD_PREFLIGHT = 'Invalid CORS preflight: an OPTIONS request with Origin must carry Access-Control-Request-Method\n'

/** CORS middleware; see the file's comment. Throws on an invalid option. */
export function cors(options: CorsOptions = {}): Middleware {
  const settings = compile(options)
  if (settings === null) return (app) => app
  const { allow, vary, preflight, strict } = settings
  return (app) => (environ, startResponse) => {
    const origin = environ.HTTP_ORIGIN
    if (origin === undefined || origin === '') {
      // No CORS request: nothing to add but, when the answer depends on the origin, Vary.
      return vary ? app(environ, varyOrigin(startResponse)) : app(environ, startResponse)
    }
    let isPreflight = false
    if (preflight && environ.REQUEST_METHOD === 'OPTIONS') {
      const requested = environ.HTTP_ACCESS_CONTROL_REQUEST_METHOD
      if (requested !== undefined && requested !== '') isPreflight = true
      else if (strict) {
        startResponse('400 Bad Request', [['Content-Type', 'text/plain; charset=utf-8']])
        return [BAD_PREFLIGHT]
      }
    }
    const allowed = allow(origin, environ)
    if (allowed !== null && typeof allowed === 'object') {
      return Promise.resolve(allowed).then((value): AppResult => {
        if (isPreflight) return answerPreflight(settings, environ, startResponse, value)
        return app(environ, withCors(settings, startResponse, value))
      })
    }
    if (isPreflight) return answerPreflight(settings, environ, startResponse, allowed)
    return app(environ, withCors(settings, startResponse, allowed))
  }
}

/** Answers a preflight; without `allowed` (a refused origin) it carries no `Access-Control-Allow-*` header. */
function answerPreflight(settings: Settings, environ: Environ, startResponse: StartResponse, allowed: string | null): Body {
  const headers: Headers = []
  if (allowed !== null) {
    headers.push(['Access-Control-Allow-Origin', allowed])
    if (settings.credentials) headers.push(['Access-Control-Allow-Credentials', 'true'])
    headers.push(['Access-Control-Allow-Methods', settings.methods ?? (environ.HTTP_ACCESS_CONTROL_REQUEST_METHOD as string)])
    const requestedHeaders = environ.HTTP_ACCESS_CONTROL_REQUEST_HEADERS
    const allowHeaders = settings.allowedHeaders ?? requestedHeaders ?? ''
    if (allowHeaders !== '') headers.push(['Access-Control-Allow-Headers', allowHeaders])
    if (settings.maxAge !== '') headers.push(['Access-Control-Max-Age', settings.maxAge])
  }
  if (settings.vary) addVary(headers, 'Origin')
  // A cached preflight answer that copied what was asked for holds only for the same question.
  if (settings.methods === null) addVary(headers, 'Access-Control-Request-Method')
  if (settings.allowedHeaders === null) addVary(headers, 'Access-Control-Request-Headers')
  startResponse(settings.status, headers)
  return EMPTY_BODY
}

/** A startResponse that adds the CORS headers of an actual request (and Vary) to the app's. */
function withCors(settings: Settings, startResponse: StartResponse, allowed: string | null): StartResponse {
  return (status, headers, error) => {
    const out = headers.slice()
    if (allowed !== null) {
      if (headerIndex(out, 'access-control-allow-origin') === -1) out.push(['Access-Control-Allow-Origin', allowed])
      if (settings.credentials && headerIndex(out, 'access-control-allow-credentials') === -1) out.push(['Access-Control-Allow-Credentials', 'true'])
      if (settings.exposedHeaders !== '' && headerIndex(out, 'access-control-expose-headers') === -1) {
        out.push(['Access-Control-Expose-Headers', settings.exposedHeaders])
      }
    }
    if (settings.vary) addVary(out, 'Origin')
    return startResponse(status, out, error)
  }
}

/** A startResponse that adds `Vary: Origin` and nothing else. */
function varyOrigin(startResponse: StartResponse): StartResponse {
  return (status, headers, error) => startResponse(status, addVary(headers.slice(), 'Origin'), error)
}

// ── Options ─────────────────────────────────────────────────────────────────

/** Checks the options and compiles them; null when CORS is off (`origin: false`). */
function compile(options: CorsOptions): Settings | null {
  if (options === null || typeof options !== 'object') throw new TypeError('cors: options must be an object')
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new TypeError(`cors: unknown option ${JSON.stringify(key)}; known options are ${[...KNOWN_OPTIONS].join(', ')}`)
  }
  const credentials = flag(options.credentials, 'credentials', false)
  const preflight = flag(options.preflight, 'preflight', true)
  const strict = flag(options.strictPreflight, 'strictPreflight', false)
  const origin = options.origin ?? '*'
  if (origin === false) return null
  if (origin === '*' && credentials) {
    throw new TypeError(
      'cors: `credentials: true` with `origin: "*"` would let every website read logged-in answers (browsers refuse "*" with credentials, and echoing any origin allows them all); ' +
        'list the allowed origins (or give a RegExp or a function), or pass `origin: true` to echo any origin knowingly',
    )
  }

  let methods: string | null = list(options.methods ?? DEFAULT_CORS_METHODS, 'methods', ',')
  if (methods === '') throw new Error('cors: `methods` is empty; list the methods cross-origin pages may use, or "*"')
  // With credentials, browsers take `*` literally (a method named "*"): answer with the method asked for.
  if (methods === '*' && credentials) methods = null
  let allowedHeaders: string | null = options.allowedHeaders === undefined ? null : list(options.allowedHeaders, 'allowedHeaders', ', ')
  if (allowedHeaders === '*' && credentials) allowedHeaders = null
  const exposedHeaders = options.exposedHeaders === undefined ? '' : list(options.exposedHeaders, 'exposedHeaders', ', ')
  if (exposedHeaders === '*' && credentials) {
    throw new Error('cors: `exposedHeaders: "*"` exposes nothing with credentials (browsers read it as a header named "*"); list the headers to expose')
  }

  let maxAge = ''
  if (options.maxAge !== undefined) {
    if (!Number.isSafeInteger(options.maxAge) || options.maxAge < 0) {
      throw new RangeError(`cors: \`maxAge\` must be a whole number of seconds, 0 or more, got ${String(options.maxAge)}`)
    }
    maxAge = String(options.maxAge)
  }
  const status = options.optionsSuccessStatus ?? 204
  if (!Number.isInteger(status) || status < 200 || status > 299) {
    throw new RangeError(`cors: \`optionsSuccessStatus\` must be a 2xx status, got ${String(status)}`)
  }
  const { allow, vary } = compileOrigin(origin, credentials)
  return { allow, vary, credentials, methods, allowedHeaders, exposedHeaders, maxAge, status: statusLine(status), preflight, strict }
}

function flag(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new TypeError(`cors: \`${name}\` must be true or false, got ${JSON.stringify(value)}`)
  return value
}

/** A list of methods or header names (array or comma-separated) as one header value; `*` stays `*`. */
function list(value: string | readonly string[], name: string, separator: string): string {
  let items: readonly unknown[]
  if (typeof value === 'string') items = value.split(',')
  else if (Array.isArray(value)) items = value
  else throw new TypeError(`cors: \`${name}\` must be a string or a list of strings`)
  const out: string[] = []
  for (const item of items) {
    if (typeof item !== 'string') throw new TypeError(`cors: \`${name}\` entries must be strings, got ${typeof item}`)
    const token = item.trim()
    if (token === '' && typeof value === 'string') continue
    if (token === '*') {
      if (items.length > 1) throw new Error(`cors: "*" in \`${name}\` must stand alone`)
      return '*'
    }
    if (!isToken(token)) throw new Error(`cors: ${JSON.stringify(item)} in \`${name}\` is not a valid ${name === 'methods' ? 'method' : 'header name'}`)
    out.push(token)
  }
  return out.join(separator)
}

/** The origin option as the per-request check, and whether answers vary by origin. */
function compileOrigin(origin: CorsOrigin, credentials: boolean): { allow: Allow; vary: boolean } {
  const reflect: Allow = (requestOrigin) => requestOrigin
  if (origin === true) return { allow: reflect, vary: true }
  // With credentials, '*' was refused in compile().
  if (origin === '*') return { allow: () => '*', vary: false }
  if (typeof origin === 'function') return { allow: fromFunction(origin, credentials), vary: true }
  const entries: readonly unknown[] = Array.isArray(origin) ? origin : [origin]
  if (entries.length === 0) throw new Error('cors: the `origin` list is empty; to turn CORS off use `origin: false`')
  const exact = new Set<string>()
  const patterns: RegExp[] = []
  for (const entry of entries) {
    if (typeof entry === 'string') {
      if (entry === '*') throw new Error('cors: "*" in an `origin` list would allow every origin; use `origin: "*"` on its own')
      exact.add(normalizeOrigin(entry))
    } else if (entry instanceof RegExp) {
      // A global or sticky RegExp keeps state between tests (lastIndex): use a stateless copy.
      patterns.push(entry.global || entry.sticky ? new RegExp(entry.source, entry.flags.replace(/[gy]/g, '')) : entry)
    } else {
      throw new TypeError(`cors: \`origin\` must be true, false, "*", an origin, a RegExp, a list of origins and RegExps, or a function; got ${describe(entry)}`)
    }
  }
  const allow: Allow = (requestOrigin) => {
    if (exact.has(requestOrigin)) return requestOrigin
    for (let i = 0; i < patterns.length; i++) if (patterns[i]!.test(requestOrigin)) return requestOrigin
    return null
  }
  return { allow, vary: true }
}

function fromFunction(fn: OriginFunction, credentials: boolean): Allow {
  const verdict = (value: unknown, origin: string): string | null => {
    if (value === true) return origin
    if (value === false) return null
    // With credentials, '*' is refused: browsers would reject it, and echoing the origin would allow every site.
    if (typeof value === 'string' && value !== '') return value === '*' && credentials ? null : value
    throw new TypeError(`cors: the origin function must return true, false or an origin string, got ${describe(value)}`)
  }
  return (origin, environ) => {
    const value = fn(origin, environ)
    if (value !== null && typeof value === 'object' && typeof (value as PromiseLike<OriginVerdict>).then === 'function') {
      return Promise.resolve(value).then((v) => verdict(v, origin))
    }
    return verdict(value, origin)
  }
}

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i

/**
 * An allowed origin as browsers send it: `https://Example.com/` and
 * `https://example.com:443` become `https://example.com`. Anything with a
 * path, query or credentials is refused: it could never match an `Origin`.
 */
function normalizeOrigin(entry: string): string {
  if (entry === 'null') return entry
  const bad = (why: string) => new Error(`cors: origin ${JSON.stringify(entry)} ${why}; an origin is scheme://host[:port], as in "https://example.com"`)
  const scheme = SCHEME.exec(entry)?.[1]?.toLowerCase()
  if (scheme === undefined) throw bad('has no scheme')
  let url: URL
  try {
    url = new URL(entry)
  } catch {
    throw bad('is not a valid URL')
  }
  if (url.username !== '' || url.password !== '') throw bad('holds credentials')
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || entry.endsWith('?') || entry.endsWith('#')) {
    throw bad('has a path or query')
  }
  if (url.host === '') throw bad('has no host')
  // URL gives `null` as the origin of non-special schemes (chrome-extension://id); build it the same way for all.
  return `${scheme}://${url.host}`
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object'
  return typeof value
}
