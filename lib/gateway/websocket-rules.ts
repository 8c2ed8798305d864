/**
 * The app-side rules of the WebSocket extension as code, like rules.ts for
 * the rest of the spec: what `accept(options)` may be given [ws-protocol]
 * and which close codes and reasons an app may use [ws-app]. Every server's
 * `accept()` and `close()` call these, so a fault is worded the same on all.
 */
import type { Headers } from './spec.js'
import type { WebSocketAcceptOptions } from './websocket.js'
import { GatewayViolation, checkHeaders, chunkLength, describeValue } from './rules.js'

/** The accept options once checked: the subprotocol (`''` for none) and the extra headers of the 101. */
export interface AcceptChoice {
  readonly protocol: string
  readonly headers: Headers
  /**
   * Whether the app's headers hold a `Server` field. As on any response
   * (HeaderFacts.hasServer in rules.ts), the app's replaces the server's
   * own: a server that writes a `Server` line on its 101 leaves it out.
   */
  readonly hasServer: boolean
}

const NO_HEADERS: Headers = []
const NONE: AcceptChoice = { protocol: '', headers: NO_HEADERS, hasServer: false }

/** `Sec-WebSocket-`, the prefix of the fields the server writes on a 101 (RFC 6455 §11.3). */
const SEC_WEBSOCKET = 'sec-websocket-'

/**
 * Checks `accept(options)` against what the client offered [ws-protocol]:
 * the protocol is one of `offered`; the headers are well-formed
 * [header-form], no hop-by-hop field [hop-by-hop] (so no Transfer-Encoding,
 * Connection or Upgrade), no `Content-Length` (a 101 has no content: RFC
 * 9110 §8.6 forbids the field on any 1xx) and no `Sec-WebSocket-*` one (the
 * server writes those).
 */
export function checkAcceptOptions(options: WebSocketAcceptOptions | undefined, offered: readonly string[]): AcceptChoice {
  if (options === undefined) return NONE
  if (options === null || typeof options !== 'object') throw new GatewayViolation('ws-protocol', `accept() takes an options object, got ${describeValue(options)}`)
  const protocol: unknown = options.protocol
  if (protocol !== undefined && (typeof protocol !== 'string' || !offered.includes(protocol))) {
    throw new GatewayViolation('ws-protocol', `accept() chose the subprotocol ${describeValue(protocol)}, which the client did not offer (${JSON.stringify(offered)})`)
  }
  const headers: unknown = options.headers
  if (headers === undefined) return { protocol: protocol ?? '', headers: NO_HEADERS, hasServer: false }
  const facts = checkHeaders(headers, 101)
  if (facts.declaredLength !== -1) {
    throw new GatewayViolation('ws-protocol', 'accept() headers must not set Content-Length: a 101 has no content (RFC 9110 §8.6)')
  }
  for (const [name] of headers as Headers) {
    if (name.length >= SEC_WEBSOCKET.length && name.slice(0, SEC_WEBSOCKET.length).toLowerCase() === SEC_WEBSOCKET) {
      throw new GatewayViolation('ws-protocol', `accept() headers must not set ${JSON.stringify(name)}: the server writes the Sec-WebSocket-* fields`)
    }
  }
  return { protocol: protocol ?? '', headers: headers as Headers, hasServer: facts.hasServer }
}

/** The longest close reason, in UTF-8 bytes: a control frame holds 125 bytes, 2 of them the code (RFC 6455 §5.5). */
export const MAX_CLOSE_REASON = 123

/**
 * The codes of RFC 6455 §7.4.1 an app (the server's endpoint) may close
 * with: normal, going away, unsupported data, invalid data, policy, too big,
 * internal error. Not 1002 (a protocol error is the framing layer's), 1010
 * (a client's), nor the ones never sent (1004-1006, 1015).
 */
const APP_CODES: ReadonlySet<number> = new Set([1000, 1001, 1003, 1007, 1008, 1009, 1011])

/**
 * Checks the code and reason an app passes to `close()` [ws-app]: one of
 * RFC 6455's codes that fits an app (1000, 1001, 1003, 1007, 1008, 1009,
 * 1011), or 3000–4999 (registered and private codes), and a string reason
 * of at most 123 UTF-8 bytes.
 */
export function checkCloseCode(code: unknown, reason: unknown): void {
  if (!(typeof code === 'number' && (APP_CODES.has(code) || (Number.isInteger(code) && code >= 3000 && code <= 4999)))) {
    throw new GatewayViolation(
      'ws-app',
      `close() takes code 1000, 1001, 1003, 1007, 1008, 1009, 1011 or 3000-4999, got ${describeValue(code)}${typeof code === 'number' ? ` ${code}` : ''}`,
    )
  }
  if (typeof reason !== 'string') throw new GatewayViolation('ws-app', `close() takes a string reason, got ${describeValue(reason)}`)
  if (reason.length > 0 && chunkLength(reason) > MAX_CLOSE_REASON) {
    throw new GatewayViolation('ws-app', `a close reason holds at most ${MAX_CLOSE_REASON} UTF-8 bytes`)
  }
}
