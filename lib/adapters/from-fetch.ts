/**
 * `fromFetch(handler)`: a Fetch handler (`(Request) => Response`, such as a
 * Hono app's `app.fetch`) as a postern app. The Request is built from the
 * environ with `gateway.input` as its streaming body; the Response's body
 * stream becomes the gateway body, and closing that body cancels the stream
 * and aborts `request.signal`, so the handler learns the client went away.
 *
 * WebSockets: the Fetch API has no way to answer with an upgrade (a
 * Response cannot have status 101 outside Cloudflare), and each runtime's
 * own helper (Hono's `upgradeWebSocket` from `hono/bun`, `hono/deno`,
 * `@hono/node-ws`) needs that runtime's server, so none of them works
 * through fromFetch. What is carried: the handler gets the environ as its
 * second argument (Hono's `c.env`), and so `gateway.websocket` when the
 * server offers it; a handler that calls its `accept()` has taken the
 * socket, and the Response it then returns is discarded. A few lines of
 * Hono's `defineWebSocketHelper` over that make `upgradeWebSocket` work on
 * any postern server (the README's recipe). The `Upgrade` and `Connection`
 * headers are hop-by-hop and not in the Request.
 */
import type { Body, Environ, GatewayApp, Headers as GatewayHeaders, StartResponse } from '../gateway/spec.js'
import { WEBSOCKET_KEY, type WebSocketUpgrade } from '../gateway/websocket.js'
import { isHopByHop, statusLine } from '../gateway/headers.js'
import { environTarget } from '../gateway/target.js'
import { environHeaders } from './from-environ-headers.js'

/**
 * What a Fetch handler looks like (Hono's `app.fetch`, an itty router, a
 * plain function). The second argument is the environ (Hono's `c.env`).
 */
export type FetchApp = (request: Request, environ: Environ) => Response | Promise<Response>

/** Wraps a Fetch handler (or an object with a `fetch` method, such as a Hono app) as a gateway app. */
export function fromFetch(app: FetchApp | { fetch: FetchApp }): GatewayApp {
  const handler: FetchApp = typeof app === 'function' ? app : (request, environ) => app.fetch(request, environ)
  return async (environ, startResponse) => {
    const aborter = new LazyAbort()
    let request: Request
    try {
      request = toRequest(environ)
    } catch {
      // An unusable Host or method: nothing a handler could answer.
      startResponse(statusLine(400), [['Content-Type', 'text/plain; charset=utf-8']])
      return ['Bad Request']
    }
    aborter.attach(request)
    const upgrade = environ[WEBSOCKET_KEY]
    if (upgrade !== undefined) {
      let accepted = false
      const offer: WebSocketUpgrade = {
        protocols: upgrade.protocols,
        accept(options) {
          const socket = upgrade.accept(options)
          accepted = true
          return socket
        },
      }
      const response = await handler(request, { ...environ, [WEBSOCKET_KEY]: offer })
      // The handler took the socket: its Response stands for the 101 the server sent.
      if (accepted) {
        await response?.body?.cancel().catch(() => {})
        return []
      }
      return answer(response, startResponse, aborter)
    }
    return answer(await handler(request, environ), startResponse, aborter)
  }
}

/**
 * `request.signal`, made only when the handler reads it: a Request given a
 * signal at construction costs four times one without (Node links the two
 * signals with listeners and a finalizer), and most handlers never look.
 * The Request's own `signal` is shadowed by this one, which `abort()`
 * aborts when the client goes away.
 */
class LazyAbort {
  private controller: AbortController | null = null
  private aborted = false

  attach(request: Request): void {
    Object.defineProperty(request, 'signal', {
      configurable: true,
      enumerable: false,
      get: () => {
        if (this.controller === null) {
          this.controller = new AbortController()
          if (this.aborted) this.controller.abort()
        }
        return this.controller.signal
      },
    })
  }

  abort(): void {
    this.aborted = true
    this.controller?.abort()
  }
}

/** The handler's Response as the gateway response. */
function answer(response: Response, startResponse: StartResponse, aborter: LazyAbort): Promise<Body> {
  if (typeof response !== 'object' || response === null || typeof response.status !== 'number' || response.status < 200) {
    throw new TypeError('the fetch handler did not return a Response with a status 200-599')
  }
  const headers: GatewayHeaders = []
  // Iteration keeps each Set-Cookie separate.
  for (const [name, value] of response.headers) if (!isHopByHop(name)) headers.push([name, value])
  startResponse(response.statusText === '' ? statusLine(response.status) : `${response.status} ${response.statusText}`, headers)
  return responseBody(response.body, () => aborter.abort())
}

/** The Request a Fetch handler sees for this environ. */
export function toRequest(environ: Environ, signal?: AbortSignal): Request {
  const scheme = environ['gateway.url_scheme']
  const url = `${scheme}://${hostOf(environ)}${environTarget(environ)}`
  // Pairs, not a Headers object: the Request makes its own from them either way.
  const headers: Array<[string, string]> = []
  for (const [name, value] of environHeaders(environ)) if (!isHopByHop(name)) headers.push([name, value])
  const method = environ.REQUEST_METHOD
  const input = environ['gateway.input']
  const init: RequestInit & { duplex?: 'half' } = { method, headers }
  if (signal !== undefined) init.signal = signal
  if (method !== 'GET' && method !== 'HEAD' && input.length !== 0) {
    init.body = inputStream(input)
    init.duplex = 'half' // a streaming request body (required by the Fetch spec for streams)
  }
  return new Request(url, init)
}

/** `HTTP_HOST`, or `SERVER_NAME[:SERVER_PORT]` when the client sent none. */
function hostOf(environ: Environ): string {
  if (typeof environ.HTTP_HOST === 'string' && environ.HTTP_HOST !== '') return environ.HTTP_HOST
  const name = environ.SERVER_NAME.includes(':') ? `[${environ.SERVER_NAME}]` : environ.SERVER_NAME
  const usual = environ['gateway.url_scheme'] === 'https' ? '443' : '80'
  return environ.SERVER_PORT === usual || environ.SERVER_PORT === '' ? name : `${name}:${environ.SERVER_PORT}`
}

/** `gateway.input` as a pull-driven stream: bytes are read from the client only as the handler reads. */
function inputStream(input: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  let iterator: AsyncIterator<Uint8Array> | undefined
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        iterator ??= input[Symbol.asyncIterator]()
        const step = await iterator.next()
        if (step.done === true) controller.close()
        else controller.enqueue(step.value)
      },
      async cancel() {
        await iterator?.return?.()
      },
    },
    { highWaterMark: 0 },
  )
}

/** Resolves after pending I/O callbacks: long enough for an in-memory stream to finish. */
const nextMacrotask = (): Promise<void> => new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)))

/**
 * A Response body as a gateway body. A body that is already all there (a
 * string or bytes, as most handlers return) is given whole, so the server
 * knows its length; otherwise it streams, and `close()` cancels an
 * unfinished stream and calls `onAbandon`.
 */
async function responseBody(stream: ReadableStream<Uint8Array> | null, onAbandon: () => void): Promise<Body> {
  if (stream === null) return []
  const reader = stream.getReader()
  let finished = false
  const fail = async (error: unknown): Promise<never> => {
    onAbandon()
    await reader.cancel().catch(() => {})
    throw error
  }
  const first = await reader.read().catch(fail)
  if (first.done) return []
  let second: ReturnType<typeof reader.read> | undefined = reader.read()
  second.catch(() => {}) // its failure is handled where it is awaited
  const early = await Promise.race([second, nextMacrotask()]).catch(fail)
  if (early?.done) return [first.value]
  const pending: Uint8Array[] = [first.value]
  return {
    [Symbol.asyncIterator]() {
      return {
        async next(): Promise<IteratorResult<Uint8Array>> {
          const queued = pending.shift()
          if (queued !== undefined) return { done: false, value: queued }
          const step = await (second ?? reader.read())
          second = undefined
          if (step.done) {
            finished = true
            return { done: true, value: undefined }
          }
          return { done: false, value: step.value }
        },
      }
    },
    async close() {
      if (finished) return
      finished = true
      onAbandon()
      await reader.cancel().catch(() => {})
    },
  }
}
