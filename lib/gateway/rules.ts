/**
 * The app-side rules of the gateway interface as code: each function checks
 * one rule of lib/gateway/spec.ts and throws a {@link GatewayViolation} that
 * names it. The runner (what every server uses to call an app) and
 * `validate()` call these same functions, so a rule is written once and
 * worded the same everywhere.
 */
import type { Headers } from './spec.js'
import { HOP_BY_HOP, checkHeader, isAsciiValue, parseStatus } from './headers.js'

/** The id of a rule, as written in lib/gateway/spec.ts (`[status-form]`). */
export type RuleId =
  // the app's side
  | 'status-form'
  | 'header-form'
  | 'hop-by-hop'
  | 'start-response-order'
  | 'app-result'
  | 'chunk-type'
  | 'content-length'
  | 'environ-changed'
  | 'input-read'
  | 'errors-write'
  // the server's side
  | 'environ-type'
  | 'environ-key'
  | 'request-target'
  | 'fresh-call'
  | 'input'
  | 'input-limit'
  | 'errors'
  | 'start-response'
  | 'close-called'
  // the WebSocket extension (lib/gateway/websocket.ts)
  | 'ws-app'
  | 'ws-protocol'
  | 'ws-offered'
  | 'ws-handshake'
  | 'ws-accept'
  | 'ws-messages'
  | 'ws-limits'
  | 'ws-shutdown'
  | 'ws-handoff'

/**
 * Which side each rule binds: the app (and middleware, on the app's side of
 * the call) or the server (and middleware, on the server's side). The list of
 * rule ids in lib/gateway/spec.ts is this table.
 */
export const RULE_SIDE: Readonly<Record<RuleId, 'app' | 'server'>> = Object.freeze({
  'status-form': 'app',
  'header-form': 'app',
  'hop-by-hop': 'app',
  'start-response-order': 'app',
  'app-result': 'app',
  'chunk-type': 'app',
  'content-length': 'app',
  'environ-changed': 'app',
  'input-read': 'app',
  'errors-write': 'app',
  'environ-type': 'server',
  'environ-key': 'server',
  'request-target': 'server',
  'fresh-call': 'server',
  input: 'server',
  'input-limit': 'server',
  errors: 'server',
  'start-response': 'server',
  'close-called': 'server',
  'ws-app': 'app',
  'ws-protocol': 'app',
  'ws-offered': 'server',
  'ws-handshake': 'server',
  'ws-accept': 'server',
  'ws-messages': 'server',
  'ws-limits': 'server',
  'ws-shutdown': 'server',
  'ws-handoff': 'server',
})

/**
 * A broken rule of the gateway interface; `rule` says which one. A
 * `TypeError`, as the wrong kind of value was passed; the message starts
 * with the rule id in brackets: `[status-form] invalid status "200"`.
 */
export class GatewayViolation extends TypeError {
  readonly rule: RuleId
  constructor(rule: RuleId, message: string) {
    super(`[${rule}] ${message}`)
    this.name = 'GatewayViolation'
    this.rule = rule
  }
}

/** Checks a status [status-form]; returns its numeric code. */
export function checkStatus(status: unknown): number {
  const code = parseStatus(status)
  if (code < 0) {
    throw new GatewayViolation('status-form', `invalid status ${describeValue(status)}: expected three digits 200-599, a space and a reason, like '200 OK'`)
  }
  return code
}

/** What the response headers say, once checked. */
export interface HeaderFacts {
  /** The app's Content-Length, or -1 when it set none. */
  declaredLength: number
  hasDate: boolean
  hasServer: boolean
  /** Whether every value is ASCII (else some hold obs-text, sent as Latin-1). */
  ascii: boolean
}

/**
 * Checks response headers [header-form] [hop-by-hop]: an array of
 * `[name, value]` string pairs, names RFC 9110 tokens, values free of
 * CR/LF/NUL and other controls, no hop-by-hop field, Content-Length digits
 * given once (repeats must agree). Names are classified by length first, so
 * the usual headers cost no lower-casing.
 *
 * `code` is the response's status: a 426 Upgrade Required may (must, says
 * RFC 9110 §15.5.22) name the protocol it wants in `Upgrade`, the one
 * hop-by-hop field an app may set.
 */
export function checkHeaders(headers: unknown, code = 0): HeaderFacts {
  if (!Array.isArray(headers)) throw new GatewayViolation('header-form', 'headers must be an array of [name, value] pairs')
  let declaredLength = -1
  let hasDate = false
  let hasServer = false
  let ascii = true
  for (let i = 0; i < headers.length; i++) {
    const pair: unknown = headers[i]
    if (checkedPairs.has(pair as object)) continue
    if (!Array.isArray(pair) || pair.length !== 2) throw new GatewayViolation('header-form', `header ${i} must be a [name, value] pair`)
    const name: unknown = pair[0]
    const value: unknown = pair[1]
    const problem = checkHeader(name, value)
    if (problem !== null) throw new GatewayViolation('header-form', problem)
    const n = name as string
    const v = value as string
    const kind = headerKind(n)
    switch (kind) {
      case H_HOP_BY_HOP:
        if (code === 426 && isUpgrade(n)) break
        throw new GatewayViolation('hop-by-hop', `header ${JSON.stringify(n)} is hop-by-hop: framing and connection headers are the server's`)
      case H_CONTENT_LENGTH: {
        if (!/^[0-9]{1,15}$/.test(v)) throw new GatewayViolation('content-length', `Content-Length must be digits, got ${JSON.stringify(v)}`)
        const length = Number(v)
        if (declaredLength !== -1 && declaredLength !== length) {
          throw new GatewayViolation('content-length', `differing Content-Length headers: ${declaredLength} and ${length}`)
        }
        declaredLength = length
        break
      }
      case H_DATE:
        hasDate = true
        break
      case H_SERVER:
        hasServer = true
        break
    }
    const asciiValue = isAsciiValue(v)
    if (!asciiValue) ascii = false
    else if (kind === H_PLAIN && Object.isFrozen(pair)) checkedPairs.add(pair)
  }
  return { declaredLength, hasDate, hasServer, ascii }
}

/**
 * Frozen header pairs found valid, plain (no framing meaning) and ASCII:
 * they cannot change, so a pair shared by every response (the framework's
 * `content-type` pairs) is checked once, not on each response.
 */
const checkedPairs = new WeakSet<object>()

const H_PLAIN = 0
const H_CONTENT_LENGTH = 1
const H_HOP_BY_HOP = 2
const H_DATE = 3
const H_SERVER = 4

function isUpgrade(name: string): boolean {
  return name.length === 7 && name.toLowerCase() === 'upgrade'
}

/** What a header name means to a server, decided by its length before any lower-casing. */
function headerKind(name: string): number {
  switch (name.length) {
    case 2:
    case 7:
    case 10:
    case 16:
    case 17:
      return HOP_BY_HOP.has(name.toLowerCase()) ? H_HOP_BY_HOP : H_PLAIN
    case 4:
      return name.toLowerCase() === 'date' ? H_DATE : H_PLAIN
    case 6:
      return name.toLowerCase() === 'server' ? H_SERVER : H_PLAIN
    case 14:
      return name.toLowerCase() === 'content-length' ? H_CONTENT_LENGTH : H_PLAIN
    default:
      return H_PLAIN
  }
}

/** The UTF-8 length of a body chunk [chunk-type]: a `Uint8Array` or a string, nothing else. */
export function chunkLength(chunk: unknown): number {
  if (typeof chunk === 'string') return chunk.length === 0 ? 0 : utf8Length(chunk)
  if (chunk instanceof Uint8Array) return chunk.byteLength
  throw new GatewayViolation('chunk-type', `body chunks must be Uint8Array or string, got ${describeValue(chunk)}`)
}

/**
 * The headers of a response with a valid Content-Length, as sent: a 204
 * carries none (RFC 9110 §8.6), and identical repeats go out once. The
 * same array when nothing changes (the usual case: one length, not a 204).
 */
export function lengthHeadersFor(headers: Headers, code: number): Headers {
  if (code !== 204 && !hasRepeatedLength(headers)) return headers
  let seen = code === 204
  return headers.filter(([name]) => {
    if (!isContentLength(name)) return true
    const keep = !seen
    seen = true
    return keep
  })
}

function isContentLength(name: string): boolean {
  return name.length === 14 && name.toLowerCase() === 'content-length'
}

function hasRepeatedLength(headers: Headers): boolean {
  let seen = false
  for (let i = 0; i < headers.length; i++) {
    if (!isContentLength(headers[i]![0])) continue
    if (seen) return true
    seen = true
  }
  return false
}

/** A string's UTF-8 length: Node's native count where there is one (Bun has it too), else counted here (Deno). */
const utf8Length: (text: string) => number =
  (globalThis as { Buffer?: { byteLength(text: string): number } }).Buffer?.byteLength ??
  ((text: string) => {
    let n = 0
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (c < 0x80) n += 1
      else if (c < 0x800) n += 2
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        n += 4 // a surrogate pair: one 4-byte character
        i++
      } else n += 3 // a BMP character, or a lone surrogate sent as U+FFFD
    }
    return n
  })

/**
 * Whether a response carries no body (RFC 9110 §6.4.1, §9.3.2): a `HEAD`
 * request, or a 204 or 304 status. The app's body is still iterated and
 * closed; its chunks are dropped.
 */
export function hasNoBody(method: string, code: number): boolean {
  return code === 204 || code === 304 || method === 'HEAD'
}

/** A short description of a value for a violation message. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'object') {
    try {
      return (value as object).constructor?.name ?? 'object'
    } catch {
      return 'object'
    }
  }
  return typeof value
}
