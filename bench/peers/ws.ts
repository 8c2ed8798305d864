/**
 * `ws` on node:http, as its README shows: a `WebSocketServer` sharing the
 * HTTP server, echoing each message with its type (text or binary). The
 * most used WebSocket server on Node, and what @fastify/websocket and
 * postern's server build on; it serves only the WebSocket scenario.
 */
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { WS_PATH } from '../scenarios.js'
import type { Serve } from '../peer.js'

export const serve: Serve = async (route, options) => {
  if (route !== 'ws') throw new Error('the ws peer serves only the WebSocket scenario')
  const server = http.createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
    res.end('Not Found')
  })
  const wss = new WebSocketServer({ server, path: WS_PATH })
  wss.on('connection', (socket) => {
    socket.on('error', () => socket.terminate())
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
  })
  await new Promise<void>((resolve) => server.listen(options.port, options.host, resolve))
  const address = server.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : options.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of wss.clients) socket.terminate()
        wss.close()
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
