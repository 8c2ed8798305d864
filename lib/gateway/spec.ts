/**
 * The postern Gateway Interface, version 1.0: the contract between HTTP
 * servers and web applications in TypeScript, in the spirit of Python's WSGI
 * (PEP 3333). Any app that follows it runs on any server that follows it.
 *
 * This file is the specification: the types say the shapes, the doc comments
 * say the rules. `validate(app)` (lib/validate.ts) checks both sides against
 * every rule that can be checked at run time; each rule below has an id
 * (`[rule-id]`) that the validator names when it reports a violation.
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
 * - build `environ` as described in {@link Environ};
 * - send nothing to the client until the app has called `startResponse` and
 *   either produced the first non-empty body chunk or finished the body
 *   (so an app may still replace its response with an error until then);
 * - frame the response themselves: `Content-Length` when the length is known
 *   before the first byte is sent (the body is an array, the app set
 *   `Content-Length`, or a synchronous body ended while the server gathered
 *   it), chunked on HTTP/1.1 otherwise, close-delimited on HTTP/1.0;
 * - add `Date` and may add `Server`;
 * - send no body for `HEAD` requests and for 204 and 304 responses (the app's
 *   body is still iterated and closed, its chunks discarded);
 * - call the body's `close()` exactly once when done with it, whether the
 *   body was fully sent, an error occurred, or the client went away;
 * - answer with a 500 when the app throws (or its promise rejects, or its
 *   body iterator throws) before the response started, and report the error
 *   to `gateway.errors`, not to the client; after the response started, end
 *   the connection so the client sees a truncated response, never a wrong one.
 *
 * ## Apps must
 * - treat `environ` as theirs to read and to add keys to (middleware passes it
 *   on), but never remove or change the CGI and `gateway.*` keys;
 * - give a status of the form `'200 OK'` (three digits, a space, a reason
 *   phrase that may be empty) with a final status code, 200–599 [status-form];
 * - give headers as an array of `[name, value]` string pairs, names being
 *   RFC 9110 tokens and values holding no CR, LF or NUL (nor other control
 *   characters but tab) [header-form]. This is what makes response splitting
 *   impossible: servers refuse such headers with an error;
 * - not set hop-by-hop headers: `Connection`, `Keep-Alive`,
 *   `Proxy-Connection`, `Transfer-Encoding`, `TE`, `Trailer`, `Upgrade`
 *   [hop-by-hop]. Framing is the server's job;
 * - produce body chunks that are `Uint8Array` or `string` (UTF-8) [chunk-type];
 * - if they set `Content-Length`, produce exactly that many bytes
 *   [content-length].
 */

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
 * after the last byte of the body (an empty body ends at once). Reading is
 * what pulls bytes from the network: a slow reader slows the client down.
 * If the client asked for `Expect: 100-continue`, the server sends
 * `100 Continue` when the app first reads.
 */
export interface GatewayInput extends AsyncIterable<Uint8Array> {
  /**
   * Reads the whole body into one `Uint8Array`. Rejects with a
   * {@link GatewayError} whose status is 413 if the body is over `limit`
   * bytes (default: the server's body limit), and with status 400 if the
   * body is malformed or the client went away before sending all of it.
   */
  bytes(limit?: number): Promise<Uint8Array>
  /** Reads the whole body as UTF-8 text, bounded like {@link bytes}. */
  text(limit?: number): Promise<string>
  /**
   * The body's length when the request declared it (`Content-Length`),
   * `null` for a chunked body, 0 for no body.
   */
  readonly length: number | null
  /** Trailer fields of a chunked body, as `[name, value]` pairs; filled in once the body was read. */
  readonly trailers: ReadonlyArray<readonly [string, string]>
}

/** Where apps report errors (`gateway.errors`); servers send it to a log, not the client. */
export interface ErrorStream {
  write(message: string): void
  flush(): void
}

/**
 * The request environment: CGI variables, one `HTTP_*` key per request
 * header, and the `gateway.*` keys. A plain object; servers and middleware
 * add their own keys with a dotted prefix (`router.params`, `postern.*`).
 */
export interface Environ {
  /** `GET`, `POST`, … as sent (methods are case-sensitive). */
  REQUEST_METHOD: string
  /** The part of the path the app is mounted at; `''` at the root. */
  SCRIPT_NAME: string
  /** The rest of the path, percent-decoded as UTF-8; `''` or starts with `/`. */
  PATH_INFO: string
  /** The query after `?`, not decoded; `''` when absent. */
  QUERY_STRING: string
  /** The raw request target as sent (`/a%20b?x=1`, or absolute form). */
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
   * Every request header but Content-Type and Content-Length, as
   * `HTTP_` + the name upper-cased with `-` as `_` (`HTTP_USER_AGENT`).
   * Repeated headers are joined with `, ` (cookies with `; `), as RFC 9110
   * §5.3 allows. Servers drop header names containing `_`, which would
   * otherwise be confused with `-` after conversion.
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
 * limit, say) and by middleware. Any error with a 4xx/5xx `status` (or
 * `statusCode`) is answered with that status before the response started;
 * lib/gateway/errors.ts holds that policy.
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
