/**
 * Conditional requests (RFC 9110 §13) against a file's validators: its
 * entity tag and its modification time. The preconditions are evaluated in
 * the order of §13.2.2, so a client that sends several gets the answer the
 * RFC defines, and a header that does not parse counts as absent where the
 * RFC says so (dates) or as matching nothing (entity-tag lists).
 */
import type { Environ } from '../../lib/gateway/spec.js'

/** What a file can be compared by; either may be absent when its header is turned off. */
export interface Validators {
  /** The entity tag as sent in `ETag` (`W/"…"` or `"…"`), or null. */
  etag: string | null
  /** The modification time in whole seconds since the epoch, times 1000 (as `Last-Modified` says it), or null. */
  lastModified: number | null
}

/** The weak entity tag of a file, from its size and modification time, as `send` (Express, Fastify) makes it. */
export function fileEtag(size: number, mtimeMs: number): string {
  return `W/"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`
}

/** One entity tag of a list: its opaque tag (quotes included) and whether it is weak. */
interface Tag {
  weak: boolean
  opaque: string
}

/**
 * Parses an entity-tag list (`"a", W/"b"`). Returns `'*'` for the wildcard,
 * or the tags read before anything malformed (a malformed list cannot match
 * what it failed to say).
 */
export function parseEtagList(value: string): Tag[] | '*' {
  if (value.trim() === '*') return '*'
  const tags: Tag[] = []
  let i = 0
  const n = value.length
  for (;;) {
    while (i < n && (value[i] === ' ' || value[i] === '\t' || value[i] === ',')) i++
    if (i >= n) return tags
    let weak = false
    if (value.startsWith('W/', i)) {
      weak = true
      i += 2
    }
    if (value[i] !== '"') return tags
    const close = value.indexOf('"', i + 1)
    if (close < 0) return tags
    tags.push({ weak, opaque: value.slice(i, close + 1) })
    i = close + 1
  }
}

function splitTag(etag: string): Tag {
  return etag.startsWith('W/') ? { weak: true, opaque: etag.slice(2) } : { weak: false, opaque: etag }
}

/** Weak comparison (§8.8.3.2): the opaque tags are equal, weak or not. */
function weakMatch(list: Tag[] | '*', etag: string | null): boolean {
  if (list === '*') return true
  if (etag === null) return false
  const own = splitTag(etag).opaque
  return list.some((tag) => tag.opaque === own)
}

/** Strong comparison (§8.8.3.2): neither tag is weak and the opaque tags are equal. */
function strongMatch(list: Tag[] | '*', etag: string | null): boolean {
  if (list === '*') return true
  if (etag === null) return false
  const own = splitTag(etag)
  return !own.weak && list.some((tag) => !tag.weak && tag.opaque === own.opaque)
}

/** An HTTP-date in milliseconds, or NaN when the value is not one. */
function httpDate(value: string | undefined): number {
  if (value === undefined || value.includes(',', value.indexOf(',') + 1)) return Number.NaN // a list of dates: not valid
  return Date.parse(value)
}

/** The outcome of the preconditions of a GET or HEAD: go on, answer 304, or answer 412. */
export type Precondition = 'send' | 'not-modified' | 'failed'

/**
 * Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and
 * `If-Modified-Since` for a GET or HEAD of an existing file (§13.2.2).
 * `If-Match` compares strongly, so a weak tag (this plugin's) never matches
 * it; only `*` does. `If-None-Match` compares weakly. A date condition is
 * ignored when the date does not parse, when the other header of its pair is
 * present, and when the file sends no `Last-Modified`.
 */
export function preconditions(environ: Environ, validators: Validators): Precondition {
  const { etag, lastModified } = validators
  const ifMatch = environ.HTTP_IF_MATCH
  if (ifMatch !== undefined) {
    if (!strongMatch(parseEtagList(ifMatch), etag)) return 'failed'
  } else if (lastModified !== null) {
    const since = httpDate(environ.HTTP_IF_UNMODIFIED_SINCE)
    if (lastModified > since) return 'failed'
  }
  const ifNoneMatch = environ.HTTP_IF_NONE_MATCH
  if (ifNoneMatch !== undefined) return weakMatch(parseEtagList(ifNoneMatch), etag) ? 'not-modified' : 'send'
  if (lastModified !== null) {
    const since = httpDate(environ.HTTP_IF_MODIFIED_SINCE)
    if (lastModified <= since) return 'not-modified'
  }
  return 'send'
}

/**
 * Whether `If-Range` lets a `Range` apply (§13.1.5): true when absent; an
 * entity tag must match strongly (so this plugin's weak tag never does: the
 * whole file is sent, which is always correct), a date must equal the
 * file's `Last-Modified` exactly.
 */
export function ifRangeHolds(environ: Environ, validators: Validators): boolean {
  const value = environ.HTTP_IF_RANGE
  if (value === undefined) return true
  const trimmed = value.trim()
  if (trimmed.startsWith('"') || trimmed.startsWith('W/')) {
    const tags = parseEtagList(trimmed)
    return tags !== '*' && tags.length === 1 && strongMatch(tags, validators.etag)
  }
  const date = Date.parse(trimmed)
  return validators.lastModified !== null && date === validators.lastModified
}
