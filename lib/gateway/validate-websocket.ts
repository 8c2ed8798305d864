/**
 * `validate()`'s checks of the WebSocket extension (lib/gateway/websocket.ts),
 * both sides:
 *
 * - the server's: `gateway.websocket` is `{ protocols, accept() }` and is
 *   there only on a valid handshake, with the subprotocols the client
 *   offered [ws-offered] (the one check, `checkWebSocketEnviron`, decides);
 *   what `accept()` returns is a socket with the interface, speaking the
 *   chosen subprotocol [ws-accept];
 * - the app's: `accept()` once, and not after `startResponse` [ws-app], with
 *   a subprotocol the client offered and allowed headers [ws-protocol]
 *   (checked by the code every server's `accept()` runs); after it, no
 *   `startResponse` and an empty body [ws-app] (validate-app.ts asks
 *   {@link OfferWatch.accepted}).
 *
 * The offer is wrapped in the environ (as the input is), so the app's calls
 * are seen; an app that follows the rules behaves exactly as without it.
 */
import type { Environ } from './spec.js'
import { type GatewayWebSocket, WEBSOCKET_KEY, type WebSocketAcceptOptions, type WebSocketUpgrade } from './websocket.js'
import { checkWebSocketEnviron } from './websocket-handshake.js'
import { checkAcceptOptions } from './websocket-rules.js'
import { describe, isObject, type Reporter } from './validate-report.js'

/** The environ key of the extension (defined in websocket.ts), for validate-app.ts. */
export { WEBSOCKET_KEY }

/** Checks the server's offer as the call comes in [ws-offered]; returns it when usable enough to wrap. */
export function checkOffer(environ: Environ, reporter: Reporter): WebSocketUpgrade | null {
  if (!(WEBSOCKET_KEY in environ)) return null
  const offer: unknown = environ[WEBSOCKET_KEY]
  const record = offer as Record<string, unknown>
  const usable =
    isObject(offer) && Array.isArray(record['protocols']) && (record['protocols'] as unknown[]).every((p) => typeof p === 'string') && typeof record['accept'] === 'function'
  if (!usable) {
    reporter.report('ws-offered', `environ['${WEBSOCKET_KEY}'] must be { protocols: string[], accept() }, got ${describe(offer)}`)
    return null
  }
  const handshake = checkWebSocketEnviron(environ)
  if (handshake === null || !handshake.valid) {
    const why = handshake === null ? 'asks for no WebSocket' : `is an invalid handshake (${handshake.message}): the server must answer ${handshake.status} without calling the app`
    reporter.report('ws-offered', `environ['${WEBSOCKET_KEY}'] is offered on a request that ${why}`)
  } else {
    const offered = (offer as WebSocketUpgrade).protocols
    if (offered.length !== handshake.protocols.length || offered.some((p, i) => p !== handshake.protocols[i])) {
      reporter.report('ws-offered', `the offer's protocols ${JSON.stringify(offered)} must be the client's Sec-WebSocket-Protocol, ${JSON.stringify(handshake.protocols)}`)
    }
  }
  return offer as WebSocketUpgrade
}

/** What the wrapped offer needs to know of its call, and tells it. */
export interface OfferWatch {
  /** Whether the app called `startResponse`. */
  readonly started: boolean
  /** Set once the app accepted. */
  accepted: boolean
}

/** The offer the app gets: checks its `accept()` calls and what the server returns. */
export function wrapOffer(offer: WebSocketUpgrade, watch: OfferWatch, reporter: Reporter): WebSocketUpgrade {
  return {
    protocols: offer.protocols,
    accept(options?: WebSocketAcceptOptions): GatewayWebSocket {
      if (watch.accepted) reporter.report('ws-app', 'accept() called a second time')
      else if (watch.started) reporter.report('ws-app', 'accept() called after startResponse')
      const choice = reporter.check(null, () => checkAcceptOptions(options, offer.protocols))
      const socket = offer.accept(options)
      watch.accepted = true
      checkSocket(socket, choice?.protocol ?? null, reporter)
      return socket
    },
  }
}

/** What `accept()` returned must be a socket with the interface [ws-accept]. */
function checkSocket(socket: unknown, protocol: string | null, reporter: Reporter): void {
  if (!isObject(socket)) {
    reporter.report('ws-accept', `accept() must return a socket, got ${describe(socket)}`)
    return
  }
  const record = socket as Record<string | symbol, unknown>
  const wrong: string[] = []
  if (typeof record[Symbol.asyncIterator] !== 'function') wrong.push('must be async iterable')
  for (const method of ['send', 'close'] as const) if (typeof record[method] !== 'function') wrong.push(`must have a ${method}() method`)
  if (typeof record['bufferedAmount'] !== 'number') wrong.push('must have a numeric bufferedAmount')
  const closed = record['closed']
  if (!isObject(closed) || typeof (closed as { then?: unknown }).then !== 'function') wrong.push('must have a closed promise')
  if (typeof record['protocol'] !== 'string') wrong.push('must have a string protocol')
  else if (protocol !== null && record['protocol'] !== protocol)
    wrong.push(`must speak the chosen subprotocol ${JSON.stringify(protocol)}, not ${JSON.stringify(record['protocol'])}`)
  if (wrong.length > 0) reporter.report('ws-accept', `the socket accept() returned ${wrong.join('; ')}`)
}
