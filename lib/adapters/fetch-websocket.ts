/**
 * The `gateway.websocket` extension for `toFetch`, kept out of its hot
 * path: `toFetch` calls {@link FetchWebSockets.offer} only for a request
 * with an `Upgrade` header. The extension is offered where the host can
 * upgrade: Bun.serve given the handler's `websocket` handlers
 * (fetch-websocket-bun.ts), and Deno.serve (fetch-websocket-deno.ts).
 * Anywhere else (a worker, a request built in process) the request goes to
 * the app as before, without the key, and the app answers 426.
 *
 * Fetch hosts do not say the request's HTTP version, so a handshake over
 * HTTP/1.0 cannot be refused here: Bun and Deno both let it upgrade.
 * No Node built-ins: this runs on every Fetch runtime.
 */
import type { GatewayCall } from '../gateway/runner.js'
import { writeLog } from '../gateway/errors.js'
import type { Environ, ErrorStream } from '../gateway/spec.js'
import { WEBSOCKET_KEY } from '../gateway/websocket.js'
import { checkWebSocketEnviron } from '../gateway/websocket-handshake.js'
import type { TransportWebSocket } from '../gateway/websocket-transport.js'
import { isBunServer } from './bun-server.js'
import { bunWebSocketHandler, openOnBun, type BunWebSocketHandler } from './fetch-websocket-bun.js'
import { denoUpgrade, openOnDeno } from './fetch-websocket-deno.js'
import { handshakeDeadline, offerWebSocket, type OpenWebSocket } from './websocket-offer.js'
import { webSocketLimits, type WebSocketLimits, type WebSocketOptions } from '../gateway/websocket-limits.js'
import { WebSocketRegistry } from '../gateway/websocket-registry.js'

/** The WebSockets of one `toFetch` handler. */
export class FetchWebSockets {
  /** Bun's `websocket` handlers, for Bun.serve. */
  readonly bun: BunWebSocketHandler
  private readonly limits: WebSocketLimits
  /** `webSocket: false`: never offer. */
  private readonly off: boolean
  /** Whether Bun read {@link bun}: a Bun server was started with it. */
  private bunServed = false
  /** Whether the hint about a Bun server without the handlers was logged (once per handler). */
  private bunHinted = false
  private readonly errors: ErrorStream
  private readonly open = new WebSocketRegistry<TransportWebSocket>()

  constructor(options: WebSocketOptions | false | undefined, errors: ErrorStream) {
    this.errors = errors
    this.off = options === false
    this.limits = webSocketLimits(options === false ? undefined : options)
    this.bun = bunWebSocketHandler(this.limits, () => {
      this.bunServed = true
    })
  }

  /**
   * Puts the offer in `environ` when the request is a valid handshake on a
   * host that can upgrade. Returns true when it answered the request itself
   * (an invalid handshake: 400/426, the app not called [ws-handshake]).
   */
  offer(call: GatewayCall, request: Request, info: unknown, environ: Environ, answer: (response: Response) => void): boolean {
    let open: OpenWebSocket
    let drainEvents = true
    if (this.off) return false
    if (isBunServer(info)) {
      if (!this.bunServed) {
        this.hintBun(environ)
        return false
      }
      open = openOnBun(info, request, answer)
    } else {
      const upgrade = denoUpgrade(info)
      if (upgrade === null) return false
      open = openOnDeno(upgrade, request, this.limits, answer)
      drainEvents = false
    }
    const handshake = checkWebSocketEnviron(environ)
    if (handshake === null) return false
    if (!handshake.valid) {
      const headers = new Headers(handshake.headers)
      headers.set('content-type', 'text/plain; charset=utf-8')
      answer(new Response(request.method === 'HEAD' ? null : `${handshake.message}\n`, { status: handshake.status, headers }))
      return true
    }
    const cancel = handshakeDeadline(call, this.limits)
    environ[WEBSOCKET_KEY] = offerWebSocket(
      call,
      handshake,
      this.limits,
      (choice, socket) => {
        cancel()
        open(choice, socket)
        // After closeAll(), the 101 still goes out (the app accepted) and a 1001 follows at once.
        this.open.add(socket)
      },
      drainEvents,
    )
    return false
  }

  /** A handshake on a Bun server started without `handler.websocket`: say once how to serve WebSockets, then serve it as a normal request. */
  private hintBun(environ: Environ): void {
    if (this.bunHinted || environ.HTTP_SEC_WEBSOCKET_KEY === undefined) return
    this.bunHinted = true
    writeLog(
      this.errors,
      "postern: a WebSocket handshake came in on Bun, but Bun.serve was not given this handler's websocket handlers, so gateway.websocket is not offered; " +
        'serve it with Bun.serve({ fetch: handler, websocket: handler.websocket })\n',
    )
  }

  /** Closes every open WebSocket with 1001 and refuses (1001 at once) those accepted from now on [ws-shutdown]; resolves once all are closed. */
  closeAll(): Promise<void> {
    return this.open.closeAll()
  }
}
