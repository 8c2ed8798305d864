/**
 * Refusing an invalid WebSocket handshake on node:http [ws-handshake], for
 * both listeners: Node hands `'upgrade'` only requests whose `Connection`
 * says `upgrade`, so one that names `Upgrade: websocket` without it (or
 * with another fault Node does not look at) reaches the request listener,
 * which must refuse it too when the server offers WebSockets. No `ws`
 * here: toNodeListener loads this file.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import { STATUS_TEXT } from '../gateway/headers.js'
import type { Environ } from '../gateway/spec.js'
import { checkWebSocketEnviron, type InvalidHandshake } from '../gateway/websocket-handshake.js'
import type { NodeRequest } from './to-node.js'

/** Answers `refusal` (400, or 426 naming version 13) on `res`. */
export function writeRefusal(res: ServerResponse, refusal: InvalidHandshake, method: string): void {
  const body = `${refusal.message}\n`
  const headers = [...refusal.headers, ['Content-Type', 'text/plain; charset=utf-8'], ['Content-Length', String(Buffer.byteLength(body))]].flat()
  res.writeHead(refusal.status, STATUS_TEXT[refusal.status] ?? '', headers)
  res.end(method === 'HEAD' ? undefined : body)
}

/**
 * For a request with an `Upgrade` header that reached the request
 * listener: when its server listens for upgrades (it offers WebSockets)
 * and the request is an invalid WebSocket handshake, answers it and
 * returns true; the app is not called.
 */
export function refusedHandshake(req: NodeRequest, res: ServerResponse, environ: Environ): boolean {
  if (req.httpVersionMajor >= 2) return false
  const server = (req.socket as { server?: { listenerCount(event: string): number } } | null)?.server
  if (server === undefined || server.listenerCount('upgrade') === 0) return false
  const handshake = checkWebSocketEnviron(environ)
  if (handshake === null || handshake.valid) return false
  writeRefusal(res, handshake, environ.REQUEST_METHOD)
  return true
}

/** Whether a request's head announces a body: any `Transfer-Encoding`, or a `Content-Length` other than 0. */
export function hasRequestBody(headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true
  const length = headers['content-length']
  return length !== undefined && !/^\s*0+\s*$/.test(length)
}

/**
 * Answers 501 to a request that upgrades to something other than WebSocket
 * (`POST` with `Upgrade: h2c`) and has a body: Node emits it as `'upgrade'`
 * and stops parsing there, so its body never reaches `req`. Serving it
 * would give the app an empty body; this refusal tells the client instead
 * (it can retry without `Upgrade`). The connection closes after it.
 */
export function writeUpgradeBodyRefusal(res: ServerResponse, method: string): void {
  const body = 'a request with a body and an Upgrade header other than websocket is not supported on node:http; send it without Upgrade\n'
  res.writeHead(501, STATUS_TEXT[501] ?? 'Not Implemented', ['Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(Buffer.byteLength(body))])
  res.end(method === 'HEAD' ? undefined : body)
}
