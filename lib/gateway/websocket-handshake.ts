/**
 * The one check of a WebSocket opening handshake (RFC 6455 §4.2.1), so that
 * postern's server and every adapter refuse the same requests with the same
 * answer [ws-handshake] and offer `gateway.websocket` on the same ones
 * [ws-offered].
 *
 * Three outcomes:
 * - `null`: not a WebSocket upgrade at all. No `Upgrade` header, or one that
 *   names only other protocols (`h2c`, `TLS/1.0`): RFC 9110 §7.8 lets a
 *   server ignore `Upgrade`, so the request is served as a normal one
 *   (without the extension);
 * - `{ valid: true, protocols }`: a valid handshake, with the subprotocols
 *   the client offered, in its order;
 * - `{ valid: false, status, message, headers }`: `Upgrade` names
 *   `websocket` but the handshake is wrong. The server answers it without
 *   calling the app: 426 with `Sec-WebSocket-Version: 13` for a missing or
 *   other version (RFC 6455 §4.2.2), 400 for the rest: not `GET`, not
 *   HTTP/1.1 (RFC 6455 needs 1.1; answering beats silently serving a page
 *   the client cannot use), no `upgrade` token in `Connection`, a key that
 *   is not base64 of 16 bytes, a malformed or repeated subprotocol.
 *
 * Headers are read through a getter by lower-case name, so each server
 * passes what it has cheaply: `(name) => req.headers[name]` on node:http,
 * `(name) => request.headers.get(name)` on Fetch, the environ's `HTTP_*`
 * keys with {@link checkWebSocketEnviron}. A repeated field is read as its
 * values joined with `, ` (what all three give), so a repeated key is
 * refused. The getter is called only once an `Upgrade` header is there;
 * callers on a hot path test for that header first themselves.
 */
import type { Environ, Headers } from './spec.js'

/** The request fields the check reads, by lower-case name. */
export type HandshakeField = 'upgrade' | 'connection' | 'sec-websocket-key' | 'sec-websocket-version' | 'sec-websocket-protocol'

/** Reads one request header (repeats joined with `, `); `undefined` or `null` when absent. */
export type HandshakeHeaders = (name: HandshakeField) => string | null | undefined

/** A valid handshake: offer the extension with these subprotocols. */
export interface ValidHandshake {
  readonly valid: true
  /** The client's `Sec-WebSocket-Key`, for the `Sec-WebSocket-Accept` answer. */
  readonly key: string
  /** The subprotocols offered (`Sec-WebSocket-Protocol`), in the client's order; empty when none. */
  readonly protocols: readonly string[]
}

/** An invalid handshake: answer `status` with `message` and `headers`, without calling the app. */
export interface InvalidHandshake {
  readonly valid: false
  readonly status: 400 | 426
  readonly message: string
  /** Extra response headers: `Sec-WebSocket-Version: 13` (and `Upgrade: websocket`) on a 426. */
  readonly headers: Headers
}

export type WebSocketHandshake = ValidHandshake | InvalidHandshake

/** The only version of the protocol (RFC 6455 §4.1). */
export const WEBSOCKET_VERSION = '13'

/** Base64 of exactly 16 bytes: 22 characters and `==` (RFC 6455 §4.1, as `ws` checks it). */
const KEY_RE = /^[+/0-9A-Za-z]{22}==$/
/** An RFC 9110 token, as a subprotocol must be (RFC 6455 §4.1). */
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/**
 * Checks a request for a WebSocket handshake: `null` when it asks for none,
 * else whether it is valid (see the file's doc). `protocol` is the request's
 * HTTP version as in `SERVER_PROTOCOL` (`'HTTP/1.1'`).
 */
export function checkWebSocketHandshake(method: string, protocol: string, header: HandshakeHeaders): WebSocketHandshake | null {
  const upgrade = header('upgrade')
  if (upgrade === undefined || upgrade === null || !hasToken(upgrade, 'websocket')) return null
  if (method !== 'GET') return invalid(400, `a WebSocket handshake must be a GET request, not ${method}`)
  if (protocol !== 'HTTP/1.1') return invalid(400, `a WebSocket handshake needs HTTP/1.1, not ${protocol}`)
  const connection = header('connection')
  if (connection === undefined || connection === null || !hasToken(connection, 'upgrade')) {
    return invalid(400, 'a WebSocket handshake needs the upgrade token in its Connection header')
  }
  const version = header('sec-websocket-version')
  if (version === undefined || version === null || version.trim() !== WEBSOCKET_VERSION) {
    return {
      valid: false,
      status: 426,
      message: `unsupported WebSocket version ${version === undefined || version === null ? '(none)' : JSON.stringify(version)}: this server speaks version 13`,
      headers: [
        ['Sec-WebSocket-Version', WEBSOCKET_VERSION],
        ['Upgrade', 'websocket'],
      ],
    }
  }
  const key = header('sec-websocket-key')
  const trimmed = key === undefined || key === null ? '' : key.trim()
  if (!KEY_RE.test(trimmed)) return invalid(400, 'missing or invalid Sec-WebSocket-Key: it must be base64 of 16 bytes, given once')
  const offered = header('sec-websocket-protocol')
  const protocols = offered === undefined || offered === null ? [] : parseProtocols(offered)
  if (protocols === null) return invalid(400, 'invalid Sec-WebSocket-Protocol: a list of distinct tokens')
  return { valid: true, key: trimmed, protocols }
}

/** The environ key of each field the check reads. */
const ENVIRON_KEYS: Readonly<Record<HandshakeField, `HTTP_${string}`>> = {
  upgrade: 'HTTP_UPGRADE',
  connection: 'HTTP_CONNECTION',
  'sec-websocket-key': 'HTTP_SEC_WEBSOCKET_KEY',
  'sec-websocket-version': 'HTTP_SEC_WEBSOCKET_VERSION',
  'sec-websocket-protocol': 'HTTP_SEC_WEBSOCKET_PROTOCOL',
}

/**
 * {@link checkWebSocketHandshake} on an environ (its method, protocol and
 * `HTTP_*` keys): for a server that builds the environ first. Costs one key
 * lookup when there is no `Upgrade` header.
 */
export function checkWebSocketEnviron(environ: Environ): WebSocketHandshake | null {
  if (environ.HTTP_UPGRADE === undefined) return null
  return checkWebSocketHandshake(environ.REQUEST_METHOD, environ.SERVER_PROTOCOL, (name) => environ[ENVIRON_KEYS[name]])
}

function invalid(status: 400, message: string): InvalidHandshake {
  return { valid: false, status, message, headers: [] }
}

/** Whether a comma-separated list holds `token` (any case). */
function hasToken(list: string, token: string): boolean {
  for (const item of list.split(',')) if (item.trim().toLowerCase() === token) return true
  return false
}

/** `chat, superchat` → its tokens in order; null when one is not a token or repeats. */
function parseProtocols(value: string): string[] | null {
  const protocols: string[] = []
  for (const item of value.split(',')) {
    const protocol = item.trim()
    if (!TOKEN_RE.test(protocol) || protocols.includes(protocol)) return null
    protocols.push(protocol)
  }
  return protocols
}
