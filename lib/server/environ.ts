/**
 * Builds the gateway `environ` from a parsed request head. Every environ has
 * the same keys in the same order (one hidden class for the hot path); the
 * `HTTP_*` keys follow. Header names are converted once and cached, so a
 * request with the usual headers makes no new key strings.
 */
import type { Environ, ErrorStream, GatewayInput } from '../gateway/spec.js'
import { GATEWAY_VERSION } from '../gateway/spec.js'
import { environKey } from '../gateway/headers.js'
import { decodePath } from '../gateway/target.js'
import { ParseError } from './parse-error.js'
import type { RequestHead } from './parser.js'

/** What the connection knows once, for every request it carries. */
export interface ConnectionInfo {
  serverName: string
  serverPort: string
  remoteAddr: string
  remotePort: string
  scheme: 'http' | 'https'
  errors: ErrorStream
  multiprocess: boolean
}

const KEY_CONTENT_TYPE = 1
const KEY_CONTENT_LENGTH = 2
const KEY_DROP = 3
const KEY_COOKIE = 4

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
  else if (name.includes('_')) key = KEY_DROP // would alias the `-` spelling after conversion
  else key = environKey(name)
  if (keyCache.size < KEY_CACHE_MAX) keyCache.set(name, key)
  return key
}


/** Creates the environ for one request. Throws {@link ParseError} for an undecodable path. */
export function buildEnviron(head: RequestHead, info: ConnectionInfo, input: GatewayInput): Environ {
  // A malformed escape or invalid UTF-8 is the client's fault, not something to pass on half-decoded.
  const pathInfo = decodePath(head.path)
  if (pathInfo === null) throw new ParseError(400, 'malformed percent-encoding in the request path')
  const env: Environ = {
    REQUEST_METHOD: head.method,
    SCRIPT_NAME: '',
    PATH_INFO: pathInfo,
    QUERY_STRING: head.query,
    REQUEST_URI: head.target,
    CONTENT_TYPE: '',
    CONTENT_LENGTH: '',
    SERVER_NAME: info.serverName,
    SERVER_PORT: info.serverPort,
    SERVER_PROTOCOL: head.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0',
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
  const headers = head.headers
  for (let i = 0; i < headers.length; i += 2) {
    const key = envKey(headers[i]!)
    const value = headers[i + 1]!
    if (typeof key === 'string') {
      const previous = env[key as `HTTP_${string}`]
      env[key as `HTTP_${string}`] = previous === undefined ? value : `${previous}, ${value}`
    } else if (key === KEY_CONTENT_TYPE) {
      env.CONTENT_TYPE = env.CONTENT_TYPE === '' ? value : `${env.CONTENT_TYPE}, ${value}`
    } else if (key === KEY_CONTENT_LENGTH) {
      env.CONTENT_LENGTH = String(head.contentLength)
    } else if (key === KEY_COOKIE) {
      const previous = env.HTTP_COOKIE
      env.HTTP_COOKIE = previous === undefined ? value : `${previous}; ${value}`
    }
  }
  // An absolute-form target's authority is the host (RFC 9112 §3.2.2).
  if (head.host !== '' && env.HTTP_HOST !== head.host) env.HTTP_HOST = head.host
  return env
}
