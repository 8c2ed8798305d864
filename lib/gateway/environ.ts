/**
 * The one environ builder: postern's server, the node and fetch adapters and
 * `inject` all call it, so an app sees the same environ on every server. It
 * holds the rules of spec.ts's `Environ`: the target split into `PATH_INFO`
 * (percent-decoded as UTF-8; a malformed escape is a 400) and
 * `QUERY_STRING`; absolute-form and `*` targets; header folding (repeats
 * joined with `, `, cookies with `; `, names with `_` dropped, Content-Type
 * and Content-Length in their CGI keys, HTTP/2 pseudo-headers skipped).
 *
 * Every environ gets the same keys in the same order (one hidden class on
 * the hot path), and header names are converted once and cached, so a
 * request with the usual headers makes no new key strings.
 */
import type { Environ, ErrorStream, GatewayInput } from './spec.js'
import { GATEWAY_VERSION, GatewayError } from './spec.js'
import { cacheTakes, environKey } from './headers.js'
import { decodePath, splitTarget } from './target.js'

/** What a server knows of the connection a request came on, once for every request it carries. */
export interface ConnectionInfo {
  serverName: string
  serverPort: string
  remoteAddr: string
  remotePort: string
  scheme: 'http' | 'https'
  errors: ErrorStream
  multiprocess: boolean
}

/** Where an app is mounted below the server's root (Express's `baseUrl`), when it is. */
export interface Mount {
  /** `SCRIPT_NAME`, decoded; the target is then the rest of the path. */
  scriptName: string
  /** The raw target as the client sent it (`REQUEST_URI`). */
  requestUri: string
}

/**
 * The client's address for a server that learns it only when asked (Bun's
 * `server.requestIP(request)` makes a system call): called at most once,
 * when the app first reads `REMOTE_ADDR` or `REMOTE_PORT`.
 */
export type RemoteLookup = () => { address: string; port: string }

/** The answer to a target whose path cannot be decoded: the client's fault. */
export const MALFORMED_PATH = 'malformed percent-encoding in the request path'

const KEY_CONTENT_TYPE = 1
const KEY_CONTENT_LENGTH = 2
const KEY_DROP = 3
const KEY_COOKIE = 4
const KEY_AUTHORITY = 5

/** raw header name → `HTTP_*` key (or one of the KEY_* markers). */
const keyCache = new Map<string, string | number>()
const KEY_CACHE_MAX = 4096

function envKey(name: string): string | number {
  let key = keyCache.get(name)
  if (key !== undefined) return key
  const lower = name.toLowerCase()
  if (lower === 'content-type') key = KEY_CONTENT_TYPE
  else if (lower === 'content-length') key = KEY_CONTENT_LENGTH
  else if (lower === 'cookie') key = KEY_COOKIE
  else if (lower === ':authority') key = KEY_AUTHORITY
  else if (name.includes('_') || name.charCodeAt(0) === 0x3a /* : */)
    key = KEY_DROP // `_` would alias the `-` spelling; other pseudo-headers are in the CGI keys
  else key = environKey(name)
  if (cacheTakes(keyCache, KEY_CACHE_MAX, name)) keyCache.set(name, key)
  return key
}

/**
 * Builds the environ for one request.
 *
 * @param method the method as sent
 * @param target the raw request target: origin-form `/a%20b?x`,
 *   absolute-form `http://h/p?x`, or `*`
 * @param protocol `HTTP/1.1`, `HTTP/1.0`, `HTTP/2.0`
 * @param headers the header fields as a flat `[name, value, name, value, …]`
 *   list in the order received (Node's `rawHeaders` shape); values trimmed
 * @param remote when given, `REMOTE_ADDR` and `REMOTE_PORT` are read from it
 *   on first use instead of from `info` (see {@link RemoteLookup})
 * @throws {GatewayError} 400 when the path's percent-encoding is malformed
 *   or not UTF-8: the app is not called.
 */
export function buildEnviron(
  method: string,
  target: string,
  protocol: string,
  headers: readonly string[],
  info: ConnectionInfo,
  input: GatewayInput,
  mount?: Mount,
  remote?: RemoteLookup,
): Environ {
  let path: string
  let query: string
  let authority = ''
  if (target.charCodeAt(0) === 0x2f /* / */) {
    const q = target.indexOf('?')
    path = q < 0 ? target : target.slice(0, q)
    query = q < 0 ? '' : target.slice(q + 1)
  } else {
    // absolute-form (RFC 9112 §3.2.2: its authority is the host) or `*` (no path)
    const split = splitTarget(target)
    path = split.path
    query = split.query
    authority = authorityOf(target)
  }
  const decoded = decodePath(path)
  if (decoded === null) throw new GatewayError(400, MALFORMED_PATH)
  if (remote !== undefined) return addHeaders(remoteOnDemand(method, decoded, query, target, protocol, info, input, mount, remote), headers, authority)
  const env: Environ = {
    REQUEST_METHOD: method,
    SCRIPT_NAME: mount === undefined ? '' : mount.scriptName,
    PATH_INFO: decoded,
    QUERY_STRING: query,
    REQUEST_URI: mount === undefined ? target : mount.requestUri,
    CONTENT_TYPE: '',
    CONTENT_LENGTH: '',
    SERVER_NAME: info.serverName,
    SERVER_PORT: info.serverPort,
    SERVER_PROTOCOL: protocol,
    REMOTE_ADDR: info.remoteAddr,
    REMOTE_PORT: info.remotePort,
    'gateway.version': GATEWAY_VERSION,
    'gateway.url_scheme': info.scheme,
    'gateway.input': input,
    'gateway.errors': info.errors,
    'gateway.multithread': false,
    'gateway.multiprocess': info.multiprocess,
    'gateway.run_once': false,
  }
  return addHeaders(env, headers, authority)
}

/**
 * The environ's fixed keys with `REMOTE_ADDR` and `REMOTE_PORT` as accessors
 * that call `remote` once. Written as a literal, in the same order as
 * {@link buildEnviron}'s: defining accessors on a built object costs more
 * than the lookup saves (on Bun, 1.1 µs a request against 0.8). Assigning
 * either key makes it a plain value, for middleware that rewrites the client
 * address behind a proxy.
 */
function remoteOnDemand(
  method: string,
  decoded: string,
  query: string,
  target: string,
  protocol: string,
  info: ConnectionInfo,
  input: GatewayInput,
  mount: Mount | undefined,
  remote: RemoteLookup,
): Environ {
  let found: { address: string; port: string } | null = null
  return {
    REQUEST_METHOD: method,
    SCRIPT_NAME: mount === undefined ? '' : mount.scriptName,
    PATH_INFO: decoded,
    QUERY_STRING: query,
    REQUEST_URI: mount === undefined ? target : mount.requestUri,
    CONTENT_TYPE: '',
    CONTENT_LENGTH: '',
    SERVER_NAME: info.serverName,
    SERVER_PORT: info.serverPort,
    SERVER_PROTOCOL: protocol,
    get REMOTE_ADDR(): string {
      found ??= remote()
      return found.address
    },
    set REMOTE_ADDR(value: string) {
      settle(this, 'REMOTE_ADDR', value)
    },
    get REMOTE_PORT(): string {
      found ??= remote()
      return found.port
    },
    set REMOTE_PORT(value: string) {
      settle(this, 'REMOTE_PORT', value)
    },
    'gateway.version': GATEWAY_VERSION,
    'gateway.url_scheme': info.scheme,
    'gateway.input': input,
    'gateway.errors': info.errors,
    'gateway.multithread': false,
    'gateway.multiprocess': info.multiprocess,
    'gateway.run_once': false,
  }
}

/** Makes an accessor key of the environ a plain value. */
function settle(env: object, key: string, value: unknown): void {
  Object.defineProperty(env, key, { configurable: true, enumerable: true, writable: true, value })
}

/** Adds the header fields to an environ, folded by the rules in this file's comment. */
function addHeaders(env: Environ, headers: readonly string[], authority: string): Environ {
  let pseudoAuthority = ''
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const key = envKey(headers[i]!)
    const value = headers[i + 1]!
    if (typeof key === 'string') {
      const previous = env[key as `HTTP_${string}`]
      env[key as `HTTP_${string}`] = previous === undefined ? value : `${previous}, ${value}`
    } else if (key === KEY_CONTENT_TYPE) {
      env.CONTENT_TYPE = env.CONTENT_TYPE === '' ? value : `${env.CONTENT_TYPE}, ${value}`
    } else if (key === KEY_CONTENT_LENGTH) {
      // Repeats were already refused unless identical (RFC 9112 §6.3): keep one, in canonical digits.
      if (env.CONTENT_LENGTH === '') env.CONTENT_LENGTH = canonicalLength(value)
    } else if (key === KEY_COOKIE) {
      const previous = env.HTTP_COOKIE
      env.HTTP_COOKIE = previous === undefined ? value : `${previous}; ${value}`
    } else if (key === KEY_AUTHORITY) {
      pseudoAuthority = value
    }
  }
  if (authority !== '') env.HTTP_HOST = authority
  else if (env.HTTP_HOST === undefined && pseudoAuthority !== '') env.HTTP_HOST = pseudoAuthority // HTTP/2
  return env
}

/** `http://host:1/p` → `host:1`; `''` for `*` or anything without an authority. */
function authorityOf(target: string): string {
  const match = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(target)
  if (match === null) return ''
  const authority = match[1]!
  const at = authority.lastIndexOf('@') // userinfo is not part of the host
  return at < 0 ? authority : authority.slice(at + 1)
}

/**
 * The body length `CONTENT_LENGTH` declares, or null when it declares none
 * a server could frame by (empty, or not digits, such as a combined
 * `'5, 5'`): what an adapter gives `gateway.input.length`.
 */
export function declaredLength(environ: Environ): number | null {
  const value = environ.CONTENT_LENGTH
  return value !== '' && /^\d+$/.test(value) ? Number(value) : null
}

/** `'007'` → `'7'`; anything but digits is kept as sent. */
function canonicalLength(value: string): string {
  if (value.length > 1 && value.charCodeAt(0) === 0x30 && /^\d+$/.test(value)) return String(Number(value))
  return value
}
