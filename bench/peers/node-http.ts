/**
 * Bare node:http: the handler a careful Node user writes without a
 * framework. It is the floor every framework on node:http adds to.
 */
import http from 'node:http'
import { Readable, pipeline } from 'node:stream'
import { JSON_BODY, TEXT_BODY, streamChunks, userReply } from '../scenarios.js'
import type { Serve } from '../peer.js'
import { validateEcho } from './schema.js'

const JSON_TYPE = 'application/json; charset=utf-8'

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

export const serve: Serve = async (route, options) => {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    if (route === 'text' && req.method === 'GET' && path === '/hello') return void send(res, 200, 'text/plain; charset=utf-8', TEXT_BODY)
    if (route === 'json' && req.method === 'GET' && path === '/hello') return void send(res, 200, JSON_TYPE, JSON.stringify(JSON_BODY))
    if (route === 'user' && req.method === 'GET' && path.startsWith('/users/')) {
      const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1))
      return void send(res, 200, JSON_TYPE, JSON.stringify(userReply(decodeURIComponent(path.slice(7)), query.get('fields') ?? undefined)))
    }
    if (route === 'echo' && req.method === 'POST' && path === '/echo') {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        let value: unknown
        try {
          value = JSON.parse(Buffer.concat(chunks).toString('utf8'))
        } catch {
          return send(res, 400, JSON_TYPE, '{"error":"invalid JSON"}')
        }
        if (!validateEcho(value)) return send(res, 400, JSON_TYPE, JSON.stringify({ error: validateEcho.errors }))
        send(res, 200, JSON_TYPE, JSON.stringify(value))
      })
      return
    }
    if (route === 'stream' && req.method === 'GET' && path === '/stream') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      pipeline(Readable.from(streamChunks()), res, () => {})
      return
    }
    send(res, 404, 'text/plain; charset=utf-8', 'Not Found')
  }
  const server = http.createServer(handler)
  if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout
  await new Promise<void>((resolve) => server.listen(options.port, options.host, resolve))
  const address = server.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : options.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
