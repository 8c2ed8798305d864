/**
 * The request's header fields read back from an environ, for the adapters
 * that hand a request to a foreign app (`fromNode`, `fromFetch`): the
 * inverse of `environKey` in lib/gateway/headers.ts, written once.
 */
import type { Environ, Headers } from '../gateway/spec.js'
import { cacheTakes } from '../gateway/headers.js'

/**
 * Each `HTTP_*` key as a lower-case field name (`HTTP_USER_AGENT` →
 * `user-agent`), in environ order, then `content-type` and `content-length`
 * when the environ has them. Repeated fields arrive already combined (one
 * environ key each) and the spec forbids `HTTP_CONTENT_TYPE` and
 * `HTTP_CONTENT_LENGTH`, so every name appears once.
 */
export function environHeaders(environ: Environ): Headers {
  const headers: Headers = []
  for (const key in environ) {
    if (!key.startsWith('HTTP_')) continue
    const value = environ[key]
    if (typeof value !== 'string') continue
    headers.push([fieldName(key), value])
  }
  if (environ.CONTENT_TYPE !== '') headers.push(['content-type', environ.CONTENT_TYPE])
  if (environ.CONTENT_LENGTH !== '') headers.push(['content-length', environ.CONTENT_LENGTH])
  return headers
}

/** `HTTP_*` key → field name, converted once per key (bounded by the core's rule for name caches). */
const names = new Map<string, string>()
const NAMES_MAX = 1024

function fieldName(key: string): string {
  let name = names.get(key)
  if (name === undefined) {
    name = key.slice(5).toLowerCase().replace(/_/g, '-')
    if (cacheTakes(names, NAMES_MAX, key)) names.set(key, name)
  }
  return name
}
