/**
 * `fromNode(listener)`: a Node request listener (an Express app, Fastify's
 * router, a plain `(req, res) => void`) as a postern app, without parsing
 * HTTP twice. The listener gets a request and a response object that behave
 * like Node's for what such apps use; the response's head becomes
 * `startResponse`, what it writes becomes the gateway body, with
 * backpressure (`write()` returns false until the server pulled the bytes).
 *
 * The pieces: the connection (from-node-socket.ts), the request
 * (from-node-request.ts), the response (from-node-response.ts), and what
 * keeps them Node-like under Express (from-node-emulation.ts).
 *
 * WebSockets are not carried. Node's WebSocket libraries (`ws`,
 * `express-ws`, socket.io, `@fastify/websocket`) take the raw connection
 * from the server's `'upgrade'` event and frame the bytes themselves; a
 * gateway app is given messages (`gateway.websocket`), never the bytes, so
 * there is no socket to hand them, and a listener here sees a handshake as
 * a plain GET (Express answers it 404). Serve such a listener on node:http
 * itself, or write the WebSocket route as a gateway app (or the
 * framework's `app.ws()`) next to the mounted listener.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { GatewayApp } from '../gateway/spec.js'
import { toError } from './from-node-emulation.js'
import { BridgeRequest } from './from-node-request.js'
import { BridgeResponse } from './from-node-response.js'
import { BridgeSocket } from './from-node-socket.js'

/** A Node request listener, as Express and `http.createServer` take them. */
export type NodeListener = (req: IncomingMessage, res: ServerResponse) => unknown

/**
 * Wraps a Node request listener as a gateway app. A listener that throws, or
 * whose promise rejects, destroys the response: before it started, the
 * server answers the error; after, the body fails.
 */
export function fromNode(listener: NodeListener): GatewayApp {
  return (environ, startResponse) => {
    const socket = new BridgeSocket(environ)
    const req = new BridgeRequest(environ, socket)
    const res = new BridgeResponse(req, socket, startResponse)
    try {
      const result = listener(req as unknown as IncomingMessage, res as unknown as ServerResponse)
      if (typeof result === 'object' && result !== null && typeof (result as { then?: unknown }).then === 'function') {
        ;(result as PromiseLike<unknown>).then(undefined, (error: unknown) => res.destroy(toError(error)))
      }
    } catch (error) {
      res.destroy(toError(error))
    }
    return res.result()
  }
}
