/**
 * `validate()`'s checks of the server's side of a call, made once as the
 * call comes in: a fresh `environ` and `startResponse` [fresh-call]
 * [start-response], every required key in its form [environ-key]
 * [environ-type], the CGI path keys agreeing with the raw request target
 * [request-target], and a usable `gateway.input` [input] and
 * `gateway.errors` [errors]. The rules are those of lib/gateway/spec.ts.
 */
import type { Environ, ErrorStream, GatewayInput } from './spec.js'
import { GATEWAY_VERSION } from './spec.js'
import { isToken } from './headers.js'
import { decodePath, splitTarget } from './target.js'
import { describe, isObject, type Reporter } from './validate-report.js'

/** The CGI keys every environ holds, as strings. */
const CGI_KEYS = [
  'REQUEST_METHOD',
  'SCRIPT_NAME',
  'PATH_INFO',
  'QUERY_STRING',
  'REQUEST_URI',
  'CONTENT_TYPE',
  'CONTENT_LENGTH',
  'SERVER_NAME',
  'SERVER_PORT',
  'SERVER_PROTOCOL',
  'REMOTE_ADDR',
  'REMOTE_PORT',
] as const

const GATEWAY_KEYS = ['gateway.version', 'gateway.url_scheme', 'gateway.input', 'gateway.errors', 'gateway.multithread', 'gateway.multiprocess', 'gateway.run_once'] as const

/** The keys an app must leave as the server set them [environ-changed]. */
export const FIXED_KEYS: readonly string[] = [...CGI_KEYS, ...GATEWAY_KEYS]

const DIGITS = /^\d+$/
/** What follows `HTTP_`: an upper-cased token with `-` turned into `_`. */
const HTTP_KEY = /^HTTP_[!#$%&'*+.^_`|~0-9A-Z]+$/
const REQUEST_TARGET = /^[^\x00-\x20\x7f]+$/
const BAD_VALUE_CHAR = /[\r\n\0]/
/** The scheme and authority of an absolute-form target; group 1 is the authority. */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/

/**
 * Checks what the server passes in. Returns false when `environ` is not an
 * object at all (only possible with `onViolation`): the call is then passed
 * through unchecked.
 */
export function checkServerCall(environ: unknown, startResponse: unknown, seen: WeakSet<object>, reporter: Reporter): environ is Environ {
  if (typeof startResponse !== 'function') reporter.report('start-response', `startResponse must be a function, got ${describe(startResponse)}`)
  else if (seen.has(startResponse)) reporter.report('fresh-call', 'the server passed a startResponse it had already passed to this app')
  else seen.add(startResponse)

  if (typeof environ !== 'object' || environ === null || Array.isArray(environ)) {
    reporter.report('environ-type', `environ must be a plain object, got ${describe(environ)}`)
    return false
  }
  if (seen.has(environ)) reporter.report('fresh-call', 'the server passed an environ it had already passed to this app')
  else seen.add(environ)
  checkEnviron(environ as Record<string, unknown>, reporter)
  return true
}

/** The forms of the CGI keys; each returns what is wrong, or null. */
const CGI_FORMS: Partial<Record<(typeof CGI_KEYS)[number], (value: string) => string | null>> = {
  REQUEST_METHOD: (v) => (isToken(v) ? null : 'must be a method token'),
  SCRIPT_NAME: (v) => (v === '/' ? "must be '' at the root, not '/'" : v === '' || v.startsWith('/') ? null : "must be '' or start with '/'"),
  PATH_INFO: (v) => (isPathInfo(v) ? null : "must be '' or start with '/'"),
  REQUEST_URI: (v) => (REQUEST_TARGET.test(v) ? null : 'must be a non-empty request target without spaces or control characters'),
  CONTENT_LENGTH: (v) => (v === '' || DIGITS.test(v) ? null : "must be '' or digits"),
  CONTENT_TYPE: (v) => (BAD_VALUE_CHAR.test(v) ? 'must hold no CR, LF or NUL' : null),
  SERVER_NAME: (v) => (v === '' ? 'must not be empty' : null),
  SERVER_PORT: (v) => (DIGITS.test(v) ? null : 'must be digits'),
  SERVER_PROTOCOL: (v) => (v === 'HTTP/1.1' || v === 'HTTP/1.0' ? null : "must be 'HTTP/1.1' or 'HTTP/1.0'"),
  REMOTE_PORT: (v) => (v === '' || DIGITS.test(v) ? null : "must be '' or digits"),
}

function isPathInfo(value: string): boolean {
  return value === '' || value.startsWith('/')
}

function checkEnviron(environ: Record<string, unknown>, reporter: Reporter): void {
  for (const key of CGI_KEYS) {
    const value = environ[key]
    if (!(key in environ)) reporter.report('environ-key', `environ.${key} is missing`)
    else if (typeof value !== 'string') reporter.report('environ-type', `environ.${key} must be a string, got ${describe(value)}`)
    else {
      const wrong = CGI_FORMS[key]?.(value)
      if (wrong) reporter.report('environ-type', `environ.${key} ${wrong}, got ${JSON.stringify(value)}`)
    }
  }
  for (const key of Object.keys(environ)) {
    if (!key.startsWith('HTTP_')) continue
    const value = environ[key]
    if (key === 'HTTP_CONTENT_TYPE' || key === 'HTTP_CONTENT_LENGTH') {
      reporter.report('environ-key', `environ.${key} must not exist: the header is environ.${key.slice(5)}`)
    } else if (!HTTP_KEY.test(key)) {
      reporter.report('environ-type', `environ key ${JSON.stringify(key)} is not HTTP_ + an upper-cased header name`)
    } else if (typeof value !== 'string') {
      reporter.report('environ-type', `environ.${key} must be a string, got ${describe(value)}`)
    } else if (BAD_VALUE_CHAR.test(value)) {
      reporter.report('environ-type', `environ.${key} must hold no CR, LF or NUL, got ${JSON.stringify(value)}`)
    }
  }
  for (const key of GATEWAY_KEYS) if (!(key in environ)) reporter.report('environ-key', `environ['${key}'] is missing`)

  const version = environ['gateway.version']
  if (
    'gateway.version' in environ &&
    !(Array.isArray(version) && version.length === 2 && version.every((n) => Number.isSafeInteger(n) && n >= 0) && version[0] === GATEWAY_VERSION[0])
  ) {
    reporter.report('environ-type', `environ['gateway.version'] must be [${GATEWAY_VERSION[0]}, minor], got ${describe(version)}`)
  }
  const scheme = environ['gateway.url_scheme']
  if ('gateway.url_scheme' in environ && scheme !== 'http' && scheme !== 'https') {
    reporter.report('environ-type', `environ['gateway.url_scheme'] must be 'http' or 'https', got ${describe(scheme)}`)
  }
  for (const key of ['gateway.multithread', 'gateway.multiprocess', 'gateway.run_once'] as const) {
    if (key in environ && typeof environ[key] !== 'boolean') reporter.report('environ-type', `environ['${key}'] must be a boolean, got ${describe(environ[key])}`)
  }
  checkTarget(environ, reporter)
  if ('gateway.input' in environ) checkInput(environ['gateway.input'], environ['CONTENT_LENGTH'], reporter)
  if ('gateway.errors' in environ) checkErrors(environ['gateway.errors'], reporter)
}

/**
 * The path keys come from the raw target as spec.ts's `Environ` says
 * [request-target]: a target whose path does not decode never reaches an app
 * (the server answers 400); `QUERY_STRING` is the target's query; with
 * `SCRIPT_NAME` `''`, `PATH_INFO` is the decoded path (`'/'` for an
 * absolute-form target without one, `''` for `*`); an absolute-form
 * target's authority is `HTTP_HOST`. Keys of the wrong type or form were
 * reported already and are not compared.
 */
function checkTarget(environ: Record<string, unknown>, reporter: Reporter): void {
  const uri = environ['REQUEST_URI']
  if (typeof uri !== 'string' || !REQUEST_TARGET.test(uri)) return
  const query = environ['QUERY_STRING']
  const path = environ['PATH_INFO']
  const atRoot = environ['SCRIPT_NAME'] === ''
  const comparablePath = atRoot && typeof path === 'string' && isPathInfo(path)
  const wrong = (message: string): void => reporter.report('request-target', `${message} (REQUEST_URI ${JSON.stringify(uri)})`)

  if (uri === '*') {
    if (environ['REQUEST_METHOD'] !== 'OPTIONS') wrong('the asterisk-form target is only for OPTIONS: the server must answer 400')
    if (comparablePath && path !== '') wrong(`PATH_INFO must be '' for the target *, got ${JSON.stringify(path)}`)
    if (typeof query === 'string' && query !== '') wrong(`QUERY_STRING must be '' for the target *, got ${JSON.stringify(query)}`)
    return
  }
  let authority: string | null = null
  if (uri.charCodeAt(0) !== 0x2f /* / */) {
    const absolute = ABSOLUTE_FORM.exec(uri)
    if (absolute === null) {
      wrong("the target must be origin-form ('/…'), absolute-form ('http://host/…') or '*'")
      return
    }
    const host = absolute[1]!
    authority = host.slice(host.lastIndexOf('@') + 1) // userinfo is not part of the host
  }
  const split = splitTarget(uri)
  const decoded = decodePath(split.path)
  if (decoded === null) {
    wrong('the path has malformed percent-encoding or is not UTF-8 once decoded: the server must answer 400, not call the app')
    return
  }
  if (typeof query === 'string' && query !== split.query) wrong(`QUERY_STRING must be the target's query ${JSON.stringify(split.query)}, got ${JSON.stringify(query)}`)
  if (comparablePath && path !== decoded) wrong(`PATH_INFO must be the target's path percent-decoded, ${JSON.stringify(decoded)}, got ${JSON.stringify(path)}`)
  if (authority !== null && environ['HTTP_HOST'] !== authority) {
    wrong(`HTTP_HOST must be the absolute-form target's authority ${JSON.stringify(authority)}, got ${describe(environ['HTTP_HOST'])}`)
  }
}

function checkInput(input: unknown, contentLength: unknown, reporter: Reporter | null): input is GatewayInput {
  if (!isObject(input)) {
    reporter?.report('input', `environ['gateway.input'] must be an object, got ${describe(input)}`)
    return false
  }
  const record = input as Record<string | symbol, unknown>
  const wrong: string[] = []
  if (typeof record[Symbol.asyncIterator] !== 'function') wrong.push('must be async iterable')
  if (typeof record['bytes'] !== 'function') wrong.push('must have a bytes() method')
  if (typeof record['text'] !== 'function') wrong.push('must have a text() method')
  if (!Array.isArray(record['trailers'])) wrong.push('must have an array of trailers')
  const length = record['length']
  if (length !== null && !(typeof length === 'number' && Number.isSafeInteger(length) && length >= 0)) {
    wrong.push(`length must be null or a byte count, got ${describe(length)}`)
  } else if (typeof contentLength === 'string' && DIGITS.test(contentLength) && length !== Number(contentLength)) {
    wrong.push(`length must be ${contentLength} as CONTENT_LENGTH says, got ${describe(length)}`)
  } else if (contentLength === '' && length !== null && length !== 0) {
    wrong.push(`length must be null or 0 when CONTENT_LENGTH is '', got ${describe(length)}`)
  }
  if (wrong.length > 0) reporter?.report('input', `environ['gateway.input'] ${wrong.join('; ')}`)
  return wrong.length === 0
}

function checkErrors(errors: unknown, reporter: Reporter | null): errors is ErrorStream {
  const ok = isObject(errors) && typeof (errors as Record<string, unknown>)['write'] === 'function' && typeof (errors as Record<string, unknown>)['flush'] === 'function'
  if (!ok) reporter?.report('errors', `environ['gateway.errors'] must have write() and flush() methods, got ${describe(errors)}`)
  return ok
}

/** Whether the input is usable enough to wrap (its faults were reported already). */
export function isUsableInput(input: unknown): input is GatewayInput {
  return checkInput(input, undefined, null)
}

/** Whether the error stream is usable enough to wrap (its faults were reported already). */
export function isUsableErrors(errors: unknown): errors is ErrorStream {
  return checkErrors(errors, null)
}
