/**
 * Cookies as gateway middleware: `cookies({ secret })` puts a per-request
 * {@link CookieJar} in the environ (`environ['cookies.jar']`) with the
 * request's cookies (parsed on first use), signing and checking of signed
 * values, and `set`/`clear`, which queue `Set-Cookie` headers that are
 * added when the app starts its response. Bare gateway apps that want no
 * middleware use the plain functions: {@link parseCookies},
 * {@link serializeCookie}, {@link signCookie}, {@link unsignCookie}.
 *
 * Parsing and serializing are the `cookie` package's (jshttp, as in Express
 * and Fastify); signatures are `cookie-signature`'s HMAC-SHA256, so a value
 * signed here verifies in Express or Fastify with the same secret, and back.
 * Signing proves a value was set by the server; it does not hide it.
 *
 * `jar.set`/`jar.clear` (and the framework's `reply.cookie`/`clearCookie`)
 * send `SameSite=Lax` unless `sameSite` is given, as @fastify/cookie does:
 * a cookie then stays home on cross-site POSTs in every browser, not only
 * those that default to Lax (`sameSite: false` leaves the attribute out).
 * The plain `serializeCookie` adds nothing it was not given.
 *
 * Key rotation: `secret: ['new', 'old']`: the first secret signs, every
 * secret verifies, and a value that only an older secret verifies comes back
 * with `renew: true` so the app can set it again under the new key.
 */
import { parseCookie, stringifySetCookie } from 'cookie'
import { sign, unsign } from 'cookie-signature'
import type { Environ, Headers, Middleware } from '../lib/gateway/spec.js'

/** Environ key of the request's {@link CookieJar}. */
export const COOKIES_KEY = 'cookies.jar'

/** Cookies by name; the first of a repeated name wins, as in browsers. */
export type Cookies = Record<string, string | undefined>

export interface CookieParseOptions {
  /** Decodes a cookie value; default: percent-decoding, leaving a malformed escape as sent. Return `undefined` to skip the cookie. */
  decode?: (value: string) => string | undefined
}

/** The attributes of a `Set-Cookie` header (RFC 6265 and its drafts). */
export interface CookieOptions {
  /** Hosts the cookie goes to (and their subdomains); default: this host only. */
  domain?: string
  /** Paths the cookie goes to; default: the request's directory. Set `'/'` for the whole site. */
  path?: string
  /** When the cookie expires. */
  expires?: Date
  /** Seconds until the cookie expires (wins over `expires` in browsers); 0 or less: at once. */
  maxAge?: number
  /** Keep the cookie from page scripts (`document.cookie`). */
  httpOnly?: boolean
  /** Send the cookie over HTTPS only. */
  secure?: boolean
  /** Cross-site sending: `'strict'` (or `true`), `'lax'` or `'none'` (needs `secure`); `false`: no attribute. */
  sameSite?: boolean | 'lax' | 'strict' | 'none'
  /** Partitioned storage by top-level site (CHIPS; needs `secure`). */
  partitioned?: boolean
  /** Eviction priority (Chromium). */
  priority?: 'low' | 'medium' | 'high'
  /** Encodes the value; default: percent-encoding of what a cookie value cannot hold (`;`, `,`, spaces, controls, `%`, non-ASCII). */
  encode?: (value: string) => string
}

/** {@link CookieOptions} plus `signed`: sign the value with the first secret. */
export interface SetCookieOptions extends CookieOptions {
  signed?: boolean
}

/** What checking a signed value gives (the shape of @fastify/cookie's `unsignCookie`). */
export type UnsignResult =
  /** `renew`: only an older secret verified it; set it again to sign it with the current one. */
  { valid: true; renew: boolean; value: string } | { valid: false; renew: false; value: null }

export interface CookiesOptions {
  /** The secret that signs, or a list of them: the first signs, all verify (key rotation). */
  secret?: string | readonly string[]
  /** How request cookies are parsed. */
  parse?: CookieParseOptions
}

/** The per-request cookie jar the {@link cookies} middleware puts in the environ. */
export interface CookieJar {
  /** The request's cookies, parsed on first use. */
  readonly cookies: Cookies
  /** Whether the middleware was given a secret (so {@link sign} and {@link unsign} work). */
  readonly signing: boolean
  /** `value` signed with the first secret. Throws without a secret. */
  sign(value: string): string
  /** Checks a signed value against every secret; `undefined` (a missing cookie) is invalid. Throws without a secret. */
  unsign(value: string | undefined): UnsignResult
  /** Queues a `Set-Cookie` (`SameSite=Lax` unless given); throws a TypeError for an invalid name, value or attribute, and an Error once the response started. */
  set(name: string, value: string, options?: SetCookieOptions): this
  /** Queues a `Set-Cookie` that deletes the cookie (give the `path` and `domain` it was set with). */
  clear(name: string, options?: CookieOptions): this
  /** The `Set-Cookie` values queued so far, in order. */
  readonly queued: readonly string[]
}

const INVALID: UnsignResult = Object.freeze({ valid: false, renew: false, value: null })
const EPOCH = new Date(0)

/** The request's cookies, from `HTTP_COOKIE` (several `Cookie` headers arrive joined with `; `). Never throws. */
export function parseCookies(environ: Environ, options?: CookieParseOptions): Cookies {
  const header = environ.HTTP_COOKIE
  if (typeof header !== 'string' || header === '') return Object.create(null) as Cookies
  return parseCookie(header, options)
}

/**
 * A `Set-Cookie` header value. The value is percent-encoded where a cookie
 * value cannot hold a character, so it cannot end the header or add an
 * attribute; a name that is not a cookie token (`;`, `=`, spaces, CR, LF…),
 * a value that is not a string, or an invalid attribute throws a TypeError.
 */
export function serializeCookie(name: string, value: string, options: CookieOptions = {}): string {
  if (typeof name !== 'string') throw new TypeError(`cookies: a cookie name must be a string, got ${typeof name}`)
  if (typeof value !== 'string') throw new TypeError(`cookies: the value of cookie ${JSON.stringify(name)} must be a string, got ${typeof value}`)
  const { encode, ...attributes } = options
  if (attributes.expires !== undefined && !(attributes.expires instanceof Date)) {
    throw new TypeError(`cookies: \`expires\` of cookie ${JSON.stringify(name)} must be a Date`)
  }
  try {
    // Object.assign, not `{ ...attributes, name, value }`: on Node 20's V8 a spread followed by more
    // properties is ~50× slower and its garbage showed in the bench's GC time (scenario 8).
    return stringifySetCookie(Object.assign({}, attributes, { name, value }), encode === undefined ? undefined : { encode })
  } catch (error) {
    // The cookie package names the bad part; its message may quote control characters, so show it escaped.
    const reason = error instanceof Error ? error.message : String(error)
    throw new TypeError(`cookies: cannot set cookie ${JSON.stringify(name)}: ${JSON.stringify(reason).slice(1, -1)}`, { cause: error })
  }
}

/** A `Set-Cookie` value that deletes the cookie: empty, expired at the epoch, `Max-Age=0`, same path and domain. */
export function serializeClearCookie(name: string, options: CookieOptions = {}): string {
  return serializeCookie(name, '', Object.assign({}, options, { expires: EPOCH, maxAge: 0 }))
}

/** The options with `sameSite: 'lax'` unless `sameSite` was given. */
function laxByDefault<T extends CookieOptions>(options: T | undefined): T {
  if (options === undefined) return { sameSite: 'lax' } as T
  // Object.assign for the reason given in serializeCookie.
  return options.sameSite === undefined ? Object.assign({}, options, { sameSite: 'lax' as const }) : options
}

/** Checks secrets at construction: a non-empty string or a non-empty list of them. */
export function cookieSecrets(secret: unknown): readonly string[] {
  const list: unknown = typeof secret === 'string' ? [secret] : secret
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError('cookies: `secret` must be a non-empty string or a non-empty array of them (the first signs, all verify)')
  }
  list.forEach((s: unknown, i) => {
    if (typeof s !== 'string' || s === '') throw new TypeError(`cookies: secret #${i} must be a non-empty string, got ${s === '' ? 'an empty string' : typeof s}`)
  })
  return Object.freeze([...(list as string[])])
}

/** `value` signed with `secret` (the first, given a list): `value.signature`. */
export function signCookie(value: string, secret: string | readonly string[]): string {
  if (typeof value !== 'string') throw new TypeError(`cookies: a signed value must be a string, got ${typeof value}`)
  return sign(value, cookieSecrets(secret)[0]!)
}

/** Checks a signed value against `secret` or each of a list (first to last); a value that is not a string is invalid. */
export function unsignCookie(value: string | undefined, secret: string | readonly string[]): UnsignResult {
  return unsignWith(value, cookieSecrets(secret))
}

function unsignWith(value: unknown, secrets: readonly string[]): UnsignResult {
  if (typeof value !== 'string') return INVALID
  for (let i = 0; i < secrets.length; i++) {
    const unsigned = unsign(value, secrets[i]!)
    if (unsigned !== false) return { valid: true, renew: i > 0, value: unsigned }
  }
  return INVALID
}

class Jar implements CookieJar {
  readonly queued: string[] = []
  /** Set when the app starts its response: later cookies would be lost. */
  started = false
  private parsed: Cookies | undefined = undefined
  constructor(
    private readonly environ: Environ,
    private readonly secrets: readonly string[] | null,
    private readonly parseOptions: CookieParseOptions | undefined,
  ) {}

  get cookies(): Cookies {
    return (this.parsed ??= parseCookies(this.environ, this.parseOptions))
  }

  get signing(): boolean {
    return this.secrets !== null
  }

  sign(value: string): string {
    if (typeof value !== 'string') throw new TypeError(`cookies: a signed value must be a string, got ${typeof value}`)
    return sign(value, this.keys('sign a cookie')[0]!)
  }

  unsign(value: string | undefined): UnsignResult {
    return unsignWith(value, this.keys('check a signed cookie'))
  }

  set(name: string, value: string, options?: SetCookieOptions): this {
    const header = serializeCookie(name, options?.signed === true ? this.sign(value) : value, laxByDefault(options))
    return this.queue(name, header)
  }

  clear(name: string, options?: CookieOptions): this {
    return this.queue(name, serializeClearCookie(name, laxByDefault(options)))
  }

  private queue(name: string, header: string): this {
    if (this.started) throw new Error(`cookies: cookie ${JSON.stringify(name)} was set after the response started; set cookies before returning the body`)
    this.queued.push(header)
    return this
  }

  private keys(action: string): readonly string[] {
    if (this.secrets === null) throw new Error(`cookies: cannot ${action} without a secret: use cookies({ secret })`)
    return this.secrets
  }
}

/**
 * Gateway middleware: a {@link CookieJar} in `environ['cookies.jar']` for
 * the app below, and its queued cookies added as `Set-Cookie` headers (one
 * per cookie, after the app's own headers) when the app starts its response,
 * a replacing call with an error included. Throws at construction when
 * `secret` is given but empty or not strings.
 */
export function cookies(options: CookiesOptions = {}): Middleware {
  const secrets = options.secret === undefined ? null : cookieSecrets(options.secret)
  const parse = options.parse
  if (parse?.decode !== undefined && typeof parse.decode !== 'function') throw new TypeError('cookies: `parse.decode` must be a function')
  return (app) => (environ, startResponse) => {
    const jar = new Jar(environ, secrets, parse)
    environ[COOKIES_KEY] = jar
    return app(environ, (status, headers, error) => {
      jar.started = true
      let all: Headers = headers
      if (jar.queued.length > 0) {
        all = headers.slice()
        for (const value of jar.queued) all.push(['set-cookie', value])
      }
      return error === undefined ? startResponse(status, all) : startResponse(status, all, error)
    })
  }
}

/** The request's jar, when the {@link cookies} middleware runs above. */
export function cookieJar(environ: Environ): CookieJar | undefined {
  const jar = environ[COOKIES_KEY]
  return jar instanceof Jar ? jar : undefined
}

/** The request's cookies: the jar's when the middleware runs above (its parse options), else parsed from `HTTP_COOKIE`. */
export function requestCookies(environ: Environ): Cookies {
  return cookieJar(environ)?.cookies ?? parseCookies(environ)
}

/** The jar of a request that needs a secret (`what` names the caller for the error). */
export function signingJar(environ: Environ, what: string): CookieJar {
  const jar = cookieJar(environ)
  if (jar === undefined || !jar.signing) throw new Error(`postern: ${what} needs a cookie secret: app.use(cookies({ secret }))`)
  return jar
}

/** A `Set-Cookie` value for a request (`SameSite=Lax` unless given), signed with its jar's secret when `options.signed`: the framework's `reply.cookie`. */
export function setCookieHeader(environ: Environ, name: string, value: string, options?: SetCookieOptions): string {
  const signed = options?.signed === true ? signingJar(environ, `the signed cookie ${JSON.stringify(name)}`).sign(value) : value
  return serializeCookie(name, signed, laxByDefault(options))
}

/** A `Set-Cookie` value that deletes the cookie (`SameSite=Lax` unless given): the framework's `reply.clearCookie`. */
export function clearCookieHeader(name: string, options?: CookieOptions): string {
  return serializeClearCookie(name, laxByDefault(options))
}
