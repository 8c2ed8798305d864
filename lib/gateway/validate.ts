/**
 * `validate(app)`: a conformance checker for the postern Gateway Interface,
 * in the spirit of Python's `wsgiref.validate`. It wraps an app and checks
 * BOTH sides of every call against the rules of lib/gateway/spec.ts that can
 * be checked at run time: the server (the `environ` and `startResponse` it
 * passes in, the input it gives, how it treats the body) and the app (what it
 * passes to `startResponse`, what it returns, how it reads the input).
 *
 * The app's status, headers and chunks are checked by the same code every
 * server runs (lib/gateway/rules.ts), so a violation has the same rule id and
 * wording here as on any server: `[status-form] invalid status "200": …`.
 *
 * A conforming app behaves exactly as it would without the wrapper: same
 * status, headers and bytes, and a synchronous array body stays a synchronous
 * array. So it can wrap any app on a real server, in tests or in development.
 *
 * Each violation is a {@link GatewayViolation} whose `rule` names the broken
 * rule. By default it is thrown: inside the app call that makes the server
 * answer 500 and log it, which is the point. With `onViolation` it is
 * reported there instead and the call goes on unchanged (useful to test a
 * server, or to collect violations without breaking responses).
 *
 * ## Rules checked
 *
 * The ids are those of spec.ts (where each rule is stated) and `RuleId`.
 *
 * App side: `status-form`, `header-form`, `hop-by-hop`, `chunk-type` and
 * `content-length` (as servers check them; plus: no Content-Length on a 204,
 * and the body produces exactly the declared bytes, none being fine for
 * HEAD, 204 and 304); `start-response-order` (`startResponse` before the
 * first chunk and before the body ends, a second call only with `error`);
 * `app-result` (an iterable or async iterable, or a promise of one; a bare
 * string is refused); `environ-changed` (a CGI or `gateway.*` key removed or
 * replaced); `input-read` (the body read twice); `errors-write` (a
 * non-string written to `gateway.errors`).
 *
 * Server side (lib/gateway/validate-server.ts, validate-input.ts):
 * `environ-type` and `environ-key` (every required key, in its form);
 * `request-target` (`PATH_INFO`, `QUERY_STRING` and `HTTP_HOST` agree with
 * `REQUEST_URI`, a target whose path does not decode never reaches the app;
 * the path is compared only when `SCRIPT_NAME` is `''`, so put the validator
 * where the server calls, not behind middleware that rewrites the path);
 * `fresh-call` (an `environ` or `startResponse` passed twice);
 * `start-response` (not a function, or returns no `write`); `input` (not
 * readable, or yields other than `Uint8Array`, or a byte count that
 * disagrees with `length`); `input-limit` (`bytes(limit)`/`text(limit)`
 * gave more than `limit` bytes, or did not reject a body declared over the
 * limit with 413, or refused one within it); `errors` (no `write()` and
 * `flush()`); `close-called` (the body's `close()` called other than exactly
 * once, or the body iterated after it). A body dropped without `close()` can
 * only be seen when it is garbage-collected (like wsgiref's `__del__`
 * check); it is then reported to `onViolation`, or else written to
 * `gateway.errors`, as there is no caller left to throw to.
 *
 * The WebSocket extension (lib/gateway/validate-websocket.ts): `ws-offered`
 * (`gateway.websocket` only on a valid handshake, with the client's
 * subprotocols) and `ws-accept` (what `accept()` returns is a socket with
 * the interface) on the server's side; `ws-app` (`accept()` once, not after
 * `startResponse`, then no `startResponse` and an empty body) and
 * `ws-protocol` (an offered subprotocol, allowed 101 headers) on the app's.
 */
import type { AppResult, Environ, GatewayApp, StartResponse } from './spec.js'
import type { GatewayViolation, RuleId } from './rules.js'
import { CheckedCall } from './validate-app.js'
import { checkServerCall } from './validate-server.js'
import { Reporter } from './validate-report.js'

export { GatewayViolation, RULE_SIDE, type RuleId } from './rules.js'

/** @deprecated Use {@link RuleId}: one name for a rule id, the one spec.ts and every server use. */
export type ViolationRule = RuleId

export interface ValidateOptions {
  /** Receives each violation instead of it being thrown. */
  onViolation?: (violation: GatewayViolation) => void
}

/** Wraps `app` so that every call is checked against the gateway interface. */
export function validate(app: GatewayApp, options: ValidateOptions = {}): GatewayApp {
  const reporter = new Reporter(options.onViolation)
  const seen = new WeakSet<object>()
  return function validated(environ: Environ, startResponse: StartResponse): AppResult {
    if (!checkServerCall(environ, startResponse, seen, reporter)) return app(environ, startResponse)
    const call = new CheckedCall(environ, reporter)
    const result = app(environ, call.startResponse(startResponse))
    return call.result(result)
  }
}
