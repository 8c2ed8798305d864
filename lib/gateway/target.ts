/**
 * Request targets between the gateway's CGI view (`SCRIPT_NAME`,
 * `PATH_INFO`, `QUERY_STRING`, raw `REQUEST_URI`) and the single URL that
 * Node and Fetch apps see, shared by the server, the adapters and inject.
 * Decoding follows postern's server: the path is
 * percent-decoded as UTF-8 and a malformed escape is the client's fault.
 */
import type { Environ } from './spec.js'

/** Splits a raw request target into its path and query; an absolute-form target keeps only its path. */
export function splitTarget(target: string): { path: string; query: string } {
  let start = 0
  if (target.charCodeAt(0) !== 0x2f /* / */) {
    // absolute-form (`http://host/p?q`): the path starts after the authority
    const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target)
    if (scheme === null) return { path: '', query: '' } // `*` (OPTIONS) or garbage: no path
    start = scheme[0].length
  }
  const q = target.indexOf('?', start)
  const path = q < 0 ? target.slice(start) : target.slice(start, q)
  const query = q < 0 ? '' : target.slice(q + 1)
  return { path: start > 0 && path === '' ? '/' : path, query }
}

/** Percent-decodes a path as UTF-8; null when an escape is malformed or not UTF-8. */
export function decodePath(path: string): string | null {
  if (path.indexOf('%') < 0) return path
  try {
    return decodeURIComponent(path)
  } catch {
    return null
  }
}

/**
 * The path and query an app behind a bridge should see: the full path
 * (`SCRIPT_NAME` + `PATH_INFO`) with the query. The raw `REQUEST_URI` is
 * used when it still says the same (so its exact escapes reach the app);
 * when middleware rewrote the path, the path is encoded afresh.
 */
export function environTarget(environ: Environ): string {
  const full = environ.SCRIPT_NAME + environ.PATH_INFO
  const query = environ.QUERY_STRING === '' ? '' : `?${environ.QUERY_STRING}`
  const { path } = splitTarget(typeof environ.REQUEST_URI === 'string' ? environ.REQUEST_URI : '')
  if (path !== '' && decodePath(path) === full) return path + query
  return encodePath(full === '' ? '/' : full) + query
}

/** Encodes a decoded path for a URL: `%`, `?`, `#` and non-URL characters escaped, `/` kept. */
export function encodePath(path: string): string {
  return encodeURI(path).replace(/[?#]/g, (c) => (c === '?' ? '%3F' : '%23'))
}
