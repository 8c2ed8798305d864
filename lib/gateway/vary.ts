/**
 * Editing an app's response header list from middleware, for those whose
 * answer depends on a request header (CORS on `Origin`, compression on
 * `Accept-Encoding`). The list is the app's: it may be a constant shared by
 * every response and its pairs may be frozen (plugins/response.ts shares
 * them), so these helpers never change it or its pairs in place; they build
 * a new list.
 */
import type { Headers } from './spec.js'

/** The index of the first header named `lowerName` (lower-case), or -1. */
export function headerIndex(headers: Headers, lowerName: string): number {
  for (let i = 0; i < headers.length; i++) {
    const name = headers[i]![0]
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) return i
  }
  return -1
}

/** Whether a comma-separated field value lists `lowerToken` (any case), or `*`. */
function listsToken(value: string, lowerToken: string): boolean {
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase()
    if (token === lowerToken || token === '*') return true
  }
  return false
}

/**
 * `out` with `field` added to its `Vary` header (RFC 9110 §12.5.5): appended
 * to the app's own `Vary` (`Vary: Accept-Language` becomes
 * `Vary: Accept-Language, Origin`), left alone when some `Vary` already
 * lists it or is `*`, and added as `Vary: field` when there is none. `out`
 * must be a list the caller owns (a copy of the app's): it is changed and
 * returned; the app's pairs are replaced, never written to.
 */
export function addVary(out: Headers, field: string): Headers {
  const lower = field.toLowerCase()
  let first = -1
  for (let i = 0; i < out.length; i++) {
    const [name, value] = out[i]!
    if (name.length !== 4 || name.toLowerCase() !== 'vary') continue
    if (listsToken(value, lower)) return out
    if (first === -1) first = i
  }
  if (first === -1) out.push(['Vary', field])
  else {
    const [name, value] = out[first]!
    out[first] = [name, value.trim() === '' ? field : `${value}, ${field}`]
  }
  return out
}
