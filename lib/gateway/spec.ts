/**
 * The postern Gateway Interface, version 1.0: the contract between HTTP
 * servers and web applications in TypeScript, in the spirit of Python's WSGI
 * (PEP 3333). Any app that follows it runs on any server that follows it.
 *
 * This file is the specification: the types say the shapes, the doc comments
 * say the rules. MUST, SHOULD and MAY are meant as in RFC 2119. Each rule has
 * an id (`[rule-id]`); lib/gateway/rules.ts holds the app-side rules as the
 * code every postern server runs, and `validate(app)`
 * (lib/gateway/validate.ts) checks both sides against every rule that can be
 * checked at run time.
 *
 * ## The call
 *
 *     const body = app(environ, startResponse)
 *
 * The server calls the app once per request with a fresh `environ` and a
 * fresh `startResponse`. The app calls `startResponse(status, headers)` before
 * the first body chunk is produced (either before returning, or at the latest
 * before its body iterator yields its first chunk), and returns the body.
 *
 * ## Servers must
 * - build `environ` as described in {@link Environ}, including how the path
 *   keys come from the request target. A target whose path holds a malformed
 *   `%` escape, or bytes that are not UTF-8 once decoded, is the client's
 *   fault: the server answers 400 and does not call the app (a bare
 *   `decodeURIComponent` throws on it) [request-target];
 * - give a `gateway.input` whose `bytes(limit)` and `text(limit)` honour
 *   `limit` ({@link GatewayInput}) [input-limit];
 * - send nothing to the client until the app has called `startResponse` and
 *   either produced the first non-empty body chunk or finished the body
 *   (so an app may still replace its response with an error until then);
 * - frame the response themselves: `Content-Length` when the length is known
 *   before the first byte is sent (the body is an array, the app set
 *   `Content-Length`, or a synchronous body ended while the server gathered
 *   it), chunked on HTTP/1.1 otherwise, close-delimited on HTTP/1.0;
 * - add `Date` and may add `Server`;
 * - send no body for `HEAD` requests and for 204 and 304 responses (the app's
 *   body is still iterated and closed, its chunks discarded), and never send
 *   `Content-Length` on a 204 (RFC 9110 §8.6): one the app set is dropped;
 * - call the body's `close()` exactly once when done with it, whether the
 *   body was fully sent, an error occurred, or the client went away
 *   [close-called];
 * - follow the error policy below when the app fails.
 *
 * ## The error policy (lib/gateway/errors.ts, the one implementation)
 *
 * When the app throws, its promise rejects, or its body iterator throws
 * before the response started (no byte of it was sent), the server answers
 * with the error's own status: its `status` when that is a number, else its
 * `statusCode`, provided it is an integer 400–599 (`statusOf`); anything
 * else thrown is answered 500 (`errorStatus`). The client may read the error's
 * `message` only when the thrown value is an `Error`, the status is 4xx and
 * its `expose` is not `false` (or, for a 5xx, when `expose` is `true`);
 * otherwise it reads the status text, like `Internal Server Error`
 * (`publicMessage`). postern's servers send that text and a `'\n'` as
 * `text/plain; charset=utf-8`, and report 5xx errors to `gateway.errors`,
 * never to the client. After the response started the server cannot change
 * it: it ends the connection (or the stream), so the client sees a truncated
 * response, never a wrong one. Describing a thrown value for the log must
 * not throw, whatever was thrown (`describeError`).
 *
 * ## Apps must
 * - treat `environ` as theirs to read and to add keys to (middleware passes it
 *   on), but never remove or change the CGI and `gateway.*` keys
 *   [environ-changed];
 * - give a status of the form `'200 OK'` (three digits, a space, a reason
 *   phrase that may be empty) with a final status code, 200–599 [status-form];
 * - give headers as an array of `[name, value]` string pairs, names being
 *   RFC 9110 tokens and values holding no CR, LF or NUL (nor other control
 *   characters but tab) [header-form]. This is what makes response splitting
 *   impossible: servers refuse such headers with an error;
 * - not set hop-by-hop headers: `Connection`, `Keep-Alive`,
 *   `Proxy-Connection`, `Transfer-Encoding`, `TE`, `Trailer`, `Upgrade`
 *   [hop-by-hop]. Framing is the server's job, and so is switching
 *   protocols: an app takes a WebSocket through the `gateway.websocket`
 *   extension (lib/gateway/websocket.ts), never by answering `Upgrade`
 *   itself. The one exception: a 426 Upgrade Required names the protocol
 *   it wants in `Upgrade` (RFC 9110 §15.5.22 requires it), as an app
 *   needing a WebSocket does on a server without the extension;
 * - return an iterable or async iterable of chunks, or a promise of one; not
 *   a bare string, which would be sent a character at a time [app-result];
 * - produce body chunks that are `Uint8Array` or `string` (UTF-8) [chunk-type];
 * - if they set `Content-Length`: give it as digits (repeats agreeing), not on
 *   a 204, and produce exactly that many bytes (none is also right for HEAD,
 *   204 and 304) [content-length];
 * - read `gateway.input` once [input-read] and write strings to
 *   `gateway.errors` [errors-write].
 *
 * ## Rule ids
 *
 * A broken rule is thrown (or, by `validate()` with `onViolation`, reported)
 * as a `GatewayViolation` (lib/gateway/rules.ts): a `TypeError` whose `rule`
 * is the id and whose message starts with the id in brackets, a space and
 * what is wrong: `[status-form] invalid status "200": expected …`. postern's
 * servers use the same format in what they log. The ids, with the side that
 * must keep each rule (`RuleId` and `RULE_SIDE` in rules.ts are this list):
 *
 * - `[status-form]` (app): the status is `'200 OK'`-like, code 200–599.
 * - `[header-form]` (app): headers are `[name, value]` string pairs, names
 *   tokens, values free of CR, LF, NUL and other controls but tab.
 * - `[hop-by-hop]` (app): no framing or connection header (but
 *   `Upgrade` on a 426).
 * - `[start-response-order]` (app): `startResponse` before the first chunk
 *   and before the body ends; a second call only with `error`.
 * - `[app-result]` (app): the app returns a body or a promise of one.
 * - `[chunk-type]` (app): chunks, from the body or `write()`, are
 *   `Uint8Array` or `string`.
 * - `[content-length]` (app): a declared length is digits, not on a 204,
 *   and met exactly.
 * - `[environ-changed]` (app): the CGI and `gateway.*` keys are left as
 *   the server set them.
 * - `[input-read]` (app): `gateway.input` is read once.
 * - `[errors-write]` (app): `gateway.errors.write()` is given a string.
 * - `[environ-type]` (server): `environ` is a plain object, each key of
 *   its type and form ({@link Environ}).
 * - `[environ-key]` (server): every required key is there; no
 *   `HTTP_CONTENT_TYPE` or `HTTP_CONTENT_LENGTH`.
 * - `[request-target]` (server): the path keys and `HTTP_HOST` come from
 *   `REQUEST_URI` as {@link Environ} says; an undecodable path gets a 400,
 *   never the app.
 * - `[fresh-call]` (server): a fresh `environ` and `startResponse` per call.
 * - `[input]` (server): `gateway.input` is a {@link GatewayInput} whose
 *   bytes agree with its `length` and `CONTENT_LENGTH`.
 * - `[input-limit]` (server): `bytes(limit)`/`text(limit)` refuse a body
 *   over `limit` with a 413 {@link GatewayError}, and only such a body.
 * - `[errors]` (server): `gateway.errors` has `write()` and `flush()`.
 * - `[start-response]` (server): `startResponse` is a function that
 *   returns `write`.
 * - `[close-called]` (server): the body's `close()` is called exactly once,
 *   and the body is not iterated after it.
 *
 * The WebSocket extension's rules, stated in lib/gateway/websocket.ts:
 *
 * - `[ws-app]` (app): `accept()` instead of `startResponse`, once, then an
 *   empty body.
 * - `[ws-protocol]` (app): the chosen subprotocol is one the client
 *   offered; the 101's extra headers are no hop-by-hop, `Content-Length`
 *   or `Sec-WebSocket-*` field, and a `Server` field replaces the server's.
 * - `[ws-offered]` (server): `gateway.websocket` on valid WebSocket
 *   handshakes only.
 * - `[ws-handshake]` (server): an invalid handshake is answered 400 or 426
 *   without calling the app.
 * - `[ws-accept]` (server): the 101 goes out at `accept()`, with the
 *   chosen subprotocol and the app's headers.
 * - `[ws-messages]` (server): each message once, in order, text as
 *   `string`, binary as `Uint8Array`.
 * - `[ws-limits]` (server): message size, UTF-8, timeouts and unread
 *   messages are bounded.
 * - `[ws-shutdown]` (server): graceful shutdown closes sockets with 1001.
 * - `[ws-handoff]` (server): bytes read after the handshake are the
 *   socket's first frames.
 */

import type { WebSocketUpgrade } from './websocket.js'

/** A body chunk: bytes, or a string sent as UTF-8. */
export type Chunk = Uint8Array | string

/** Anything the app may return as a body, before awaiting. */
export type BodyIterable = Iterable<Chunk> | AsyncIterable<Chunk>

/**
 * The response body: an iterable or async iterable of chunks. If it has a
 * `close()` method the server calls it exactly once when it is done with the
 * body, whatever happened (the client may have gone away) [close-called].
 */
export type Body = BodyIterable & { close?(): void | Promise<void> }

/** What an app returns: a body, or a promise of one [app-result]. */
export type AppResult = Body | Promise<Body>

/**
 * Response headers: `[name, value]` pairs, in the order they are sent. Names
 * are case-insensitive; repeated names (`Set-Cookie`) are sent repeatedly.
 */
export type Headers = Array<[name: string, value: string]>

/** Legacy imperative output, returned by `startResponse` (see WSGI's `write`). */
export type Write = (chunk: Chunk) => void

/**
 * Starts the response.
 *
 * - `status`: `'200 OK'` [status-form].
 * - `headers`: `[name, value]` pairs [header-form] [hop-by-hop].
 * - `error`: pass the caught error when replacing a response after a failure.
 *
 * Rules [start-response-order]: a second call is allowed only with `error`
 * set, and only while no byte of the response has been sent; it replaces the
 * first status and headers. A second call after the first byte was sent
 * rethrows `error`; a second call without `error` throws.
 *
 * Returns `write(chunk)`: chunks written through it are sent before the
 * chunks of the returned body. New apps should return a body instead.
 */
export type StartResponse = (status: string, headers: Headers, error?: unknown) => Write

/**
 * The request body, as the server gives it to the app (`gateway.input`).
 *
 * It is an async iterable of `Uint8Array` chunks (iterate it once) that ends
 * after the last byte of the body (an empty body ends at once) [input]
 * [input-read]. Reading is what pulls bytes from the network: a slow reader
 * slows the client down. If the client asked for `Expect: 100-continue`, the
 * server sends `100 Continue` when the app first reads.
 *
 * ## The body limit [input-limit]
 *
 * An app bounds the body it reads only through `bytes(limit)` and
 * `text(limit)`; iterating the input has no limit, the app counts. So a
 * server's input MUST honour `limit`: reject with a {@link GatewayError}
 * whose status is 413 at once when the declared `length` is over it, else as
 * soon as more than `limit` bytes arrived, without buffering past `limit`;
 * never resolve with more than `limit` bytes, and never refuse a body within
 * the limit with 413. Without `limit`, the server's own body limit applies
 * (postern's: its `maxBodySize` option, by default 1 MiB,
 * `DEFAULT_BODY_LIMIT` in lib/gateway/limits.ts). A server MAY also refuse a
 * body over its own maximum before calling the app (postern's server answers
 * 413 to a declared `Content-Length` over `maxBodySize`, and stops a chunked
 * body there). Middleware that replaces `gateway.input` (to decompress, say)
 * in the environ it passes on MUST keep honouring `limit` in the same way.
 */
export interface GatewayInput extends AsyncIterable<Uint8Array> {
  /**
   * Reads the whole body into one `Uint8Array`. Rejects with a
   * {@link GatewayError} whose status is 413 if the body is over `limit`
   * bytes (default: the server's body limit) [input-limit], and with status
   * 400 if the body is malformed or the client went away before sending all
   * of it.
   */
  bytes(limit?: number): Promise<Uint8Array>
  /** Reads the whole body as UTF-8 text, bounded like {@link bytes}: `limit` counts bytes, not characters. */
  text(limit?: number): Promise<string>
  /**
   * The body's length when the request declared it (`Content-Length`),
   * `null` for a chunked body, 0 for no body.
   */
  readonly length: number | null
  /** Trailer fields of a chunked body, as `[name, value]` pairs; filled in once the body was read. */
  readonly trailers: ReadonlyArray<readonly [string, string]>
}

/**
 * Where apps report errors (`gateway.errors`); servers send it to a log, not
 * the client [errors]. Each `write(message)` is one message: apps SHOULD end
 * each message with `'\n'` (as postern's servers do with theirs), and
 * servers MUST accept messages without one (postern's default stream,
 * `stderrStream` in lib/gateway/errors.ts, adds the missing `'\n'`). The
 * message is a string [errors-write]. `flush()` pushes out what is buffered.
 */
export interface ErrorStream {
  write(message: string): void
  flush(): void
}

/**
 * The request environment: CGI variables, one `HTTP_*` key per request
 * header, and the `gateway.*` keys. A plain object; servers and middleware
 * add their own keys with a dotted prefix (`router.params`, `postern.*`).
 *
 * ## From the request target to the path keys [request-target]
 *
 * `REQUEST_URI` is the target exactly as sent. The rest comes from it:
 *
 * - origin-form `/a%20b?x=1`: `PATH_INFO` is the part before the first `?`,
 *   percent-decoded as UTF-8 (every `%XX` escape, so `%2F` becomes `/` and
 *   `%3F` becomes `?`: `'/a b'`); `QUERY_STRING` is the part after it, not
 *   decoded (`'x=1'`; `''` when there is no `?`).
 * - absolute-form `http://h:1/a%20b?x` (a request sent to a proxy): the
 *   same, from the path after the authority: `PATH_INFO` `'/a b'`,
 *   `QUERY_STRING` `'x'`, `REQUEST_URI` the whole target. An authority with
 *   no path gives `PATH_INFO` `'/'` (`http://h:1?q`: `'/'` and `'q'`).
 *   `HTTP_HOST` is the target's authority (`'h:1'`), replacing any `Host`
 *   header (RFC 9112 §3.2.2), and set even when no `Host` was sent
 *   (HTTP/1.0). postern's server accepts only the `http` and `https`
 *   schemes (any case) with a non-empty authority and no userinfo, and
 *   answers 400 to other targets; a server that accepts userinfo leaves it
 *   out of `HTTP_HOST`.
 * - asterisk-form `OPTIONS * HTTP/1.1`: `PATH_INFO` `''`, `QUERY_STRING`
 *   `''`, `REQUEST_URI` `'*'`. `*` with another method is answered 400.
 * - authority-form (`CONNECT h:443`) never reaches an app: postern's server
 *   answers 501.
 *
 * A path with a malformed escape (`%zz`, a lone `%`) or that is not UTF-8
 * once decoded (`%ff`) is answered 400 and the app is not called. With
 * `SCRIPT_NAME` `''`, `PATH_INFO` is exactly the decoded path. A server or
 * middleware that mounts an app below a path moves that leading part of the
 * path to `SCRIPT_NAME` and leaves `REQUEST_URI` as the client sent it.
 */
export interface Environ {
  /** `GET`, `POST`, … as sent (methods are case-sensitive). */
  REQUEST_METHOD: string
  /** The part of the path the app is mounted at; `''` at the root. */
  SCRIPT_NAME: string
  /** The rest of the path, percent-decoded as UTF-8; `''` or starts with `/` (see above). */
  PATH_INFO: string
  /** The query after `?`, not decoded; `''` when absent. */
  QUERY_STRING: string
  /** The raw request target as sent: `/a%20b?x=1`, `http://h/p` (absolute-form) or `*`. */
  REQUEST_URI: string
  /** The `Content-Type` header, `''` when absent. */
  CONTENT_TYPE: string
  /** The `Content-Length` header, `''` when absent (a chunked body has none). */
  CONTENT_LENGTH: string
  /** The server's host name or address the connection came in on. */
  SERVER_NAME: string
  /** The server's port, as a string. */
  SERVER_PORT: string
  /** `HTTP/1.1` or `HTTP/1.0`. */
  SERVER_PROTOCOL: string
  /** The client's address. */
  REMOTE_ADDR: string
  /** The client's port, as a string. */
  REMOTE_PORT: string
  /** `[1, 0]`. */
  'gateway.version': readonly [number, number]
  /** `'http'` or `'https'`. */
  'gateway.url_scheme': 'http' | 'https'
  /** The request body. */
  'gateway.input': GatewayInput
  /** The error log. */
  'gateway.errors': ErrorStream
  /** Whether the server may call the app concurrently from other threads (never, in Node: false). */
  'gateway.multithread': boolean
  /** Whether other processes serve the same app (workers). */
  'gateway.multiprocess': boolean
  /** Whether the app is called only once in this process (CGI-like). */
  'gateway.run_once': boolean
  /**
   * The WebSocket extension (lib/gateway/websocket.ts): present only when
   * the request is a valid WebSocket handshake and the server can upgrade.
   */
  'gateway.websocket'?: WebSocketUpgrade
  /**
   * Every request header but Content-Type and Content-Length, as
   * `HTTP_` + the name upper-cased with `-` as `_` (`HTTP_USER_AGENT`).
   * Repeated headers are joined with `, ` (cookies with `; `), as RFC 9110
   * §5.3 allows. Servers drop header names containing `_`, which would
   * otherwise be confused with `-` after conversion. `HTTP_HOST` is the
   * authority of an absolute-form target when there is one (see above).
   */
  [header: `HTTP_${string}`]: string | undefined
  /** Keys added by servers and middleware (`router.params`, …). */
  [key: string]: unknown
}

/** A gateway application. */
export type GatewayApp = (environ: Environ, startResponse: StartResponse) => AppResult

/** Middleware wraps an app and returns an app; chains compose in onion order. */
export type Middleware = (app: GatewayApp) => GatewayApp

/** The interface version this package implements. */
export const GATEWAY_VERSION: readonly [number, number] = Object.freeze([1, 0] as const)

/**
 * An error that carries an HTTP status, raised by servers (a body over the
 * limit, say) and by middleware. Any error with an integer 400–599 `status`
 * (or `statusCode`) is answered with that status before the response
 * started, its message shown for a 4xx unless `expose` is false: the error
 * policy above, whose one implementation is lib/gateway/errors.ts.
 */
export class GatewayError extends Error {
  readonly status: number
  /** Whether `message` may be shown to the client (true for 4xx by default). */
  readonly expose: boolean
  constructor(status: number, message: string, options?: { cause?: unknown; expose?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'GatewayError'
    this.status = status
    this.expose = options?.expose ?? status < 500
  }
}
