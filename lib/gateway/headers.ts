/**
 * Header rules shared by the server's writer, the validator and the adapters:
 * what a field name and value may hold (RFC 9110 §5.1, §5.5) and which
 * headers are hop-by-hop (RFC 9110 §7.6.1), so every part refuses the same
 * things with the same words.
 */

/** Token characters (RFC 9110 §5.6.2), as a byte lookup table. */
export const TOKEN: Uint8Array = (() => {
  const table = new Uint8Array(256)
  const extra = "!#$%&'*+-.^_`|~"
  for (let c = 0x30; c <= 0x39; c++) table[c] = 1
  for (let c = 0x41; c <= 0x5a; c++) table[c] = 1
  for (let c = 0x61; c <= 0x7a; c++) table[c] = 1
  for (const ch of extra) table[ch.charCodeAt(0)] = 1
  return table
})()

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** A value made only of visible ASCII, space and tab: the common, fast case. */
const ASCII_VALUE_RE = /^[\t\x20-\x7e]*$/
/** A value that may also hold obs-text (0x80–0xFF), sent as Latin-1. */
const LATIN1_VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/

/** Headers that describe one connection, never the message: the server's job. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])

/** Whether `name` is an RFC 9110 token (a valid field name or method). */
export function isToken(name: string): boolean {
  return TOKEN_RE.test(name)
}

/**
 * Checks one response header [header-form]; returns `null` when it is fine,
 * else a message that says what is wrong.
 */
export function checkHeader(name: unknown, value: unknown): string | null {
  if (typeof name !== 'string') return `header name must be a string, got ${typeof name}`
  if (typeof value !== 'string') return `header ${JSON.stringify(name)} value must be a string, got ${typeof value}`
  if (!TOKEN_RE.test(name)) return `header name ${JSON.stringify(name)} is not a valid token (RFC 9110 §5.1)`
  if (!ASCII_VALUE_RE.test(value) && !LATIN1_VALUE_RE.test(value)) {
    return `header ${JSON.stringify(name)} value ${JSON.stringify(value)} holds CR, LF, NUL, another control character or a character above U+00FF`
  }
  return null
}

/** Whether a valid value holds characters above 0x7E (to be sent as Latin-1). */
export function isAsciiValue(value: string): boolean {
  return ASCII_VALUE_RE.test(value)
}

/** Whether `name` (any case) is hop-by-hop. */
export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name.toLowerCase())
}

/**
 * The status line rule [status-form]: three digits 200–599, a space, and a
 * reason phrase of visible characters, spaces and tabs (may be empty).
 * Returns the numeric code, or -1 when the status is malformed.
 */
export function parseStatus(status: unknown): number {
  if (typeof status !== 'string' || status.length < 4 || status.charCodeAt(3) !== 0x20) return -1
  const code = (status.charCodeAt(0) - 48) * 100 + (status.charCodeAt(1) - 48) * 10 + (status.charCodeAt(2) - 48)
  if (!(code >= 200 && code <= 599) || !/^\d\d\d [\t\x20-\x7e\x80-\xff]*$/.test(status)) return -1
  return code
}

const environKeys = new Map<string, string>()

/**
 * The longest header name any per-name cache keeps (the parser's, the
 * environ's, this file's, the adapters' field names). Caches are bounded in
 * entries; without this, a client sending a new long name with every
 * request (up to the head size limit, 16 KiB) would fill them with
 * megabytes that are kept for good.
 */
export const CACHED_NAME_MAX = 64

/**
 * Whether a per-name cache takes `name` as one more entry: it has room
 * (fewer than `max` entries) and the name is short (CACHED_NAME_MAX). The
 * one rule every such cache keeps, so a flood of new names only stops the
 * caching.
 */
export function cacheTakes(cache: { readonly size: number }, max: number, name: string): boolean {
  return cache.size < max && name.length <= CACHED_NAME_MAX
}

/** Entries of `environKey`'s cache. */
const ENVIRON_KEYS_MAX = 4096

/**
 * The environ key of a request header field: `HTTP_` and the name
 * upper-cased with `-` as `_` (`User-Agent` → `HTTP_USER_AGENT`). Every
 * server, adapter and view uses this one conversion; results are cached.
 */
export function environKey(name: string): string {
  let key = environKeys.get(name)
  if (key === undefined) {
    key = `HTTP_${name.toUpperCase().replace(/-/g, '_')}`
    if (cacheTakes(environKeys, ENVIRON_KEYS_MAX, name)) environKeys.set(name, key)
  }
  return key
}

/**
 * Reason phrases for every code in the IANA HTTP status code registry (RFC
 * 9110 §15 and the RFCs it lists; 306 is unused), so no status line or error
 * name is ever left blank. RFC 9110's names where it renamed one (413, 422);
 * 418 as Node names it.
 */
export const STATUS_TEXT: Readonly<Record<number, string>> = {
  100: 'Continue',
  101: 'Switching Protocols',
  102: 'Processing',
  103: 'Early Hints',
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  203: 'Non-Authoritative Information',
  204: 'No Content',
  205: 'Reset Content',
  206: 'Partial Content',
  207: 'Multi-Status',
  208: 'Already Reported',
  226: 'IM Used',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  304: 'Not Modified',
  305: 'Use Proxy',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  417: 'Expectation Failed',
  418: "I'm a Teapot",
  421: 'Misdirected Request',
  422: 'Unprocessable Content',
  423: 'Locked',
  424: 'Failed Dependency',
  425: 'Too Early',
  426: 'Upgrade Required',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  451: 'Unavailable For Legal Reasons',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
  506: 'Variant Also Negotiates',
  507: 'Insufficient Storage',
  508: 'Loop Detected',
  510: 'Not Extended',
  511: 'Network Authentication Required',
}

const statusLines: Record<number, string> = {}

/** `'404 Not Found'` for 404: the status string for a code (made once per code). */
export function statusLine(code: number): string {
  return (statusLines[code] ??= `${code} ${STATUS_TEXT[code] ?? ''}`)
}
