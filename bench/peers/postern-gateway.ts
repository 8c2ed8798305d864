/**
 * A bare gateway app on postern's server: `(environ, startResponse) → body`
 * written by hand, with no framework. The distance between it and the raw
 * socket ceiling is the server's own cost. Scenario 8 wraps it in the same
 * three gateway middleware the framework peers use, so the distance between
 * this row and postern-app's is the framework's own cost there.
 */
import { createServer } from '../../lib/server/index.js'
import type { AppResult, Environ, GatewayApp, Headers, StartResponse } from '../../lib/gateway/spec.js'
import type { WebSocketUpgrade } from '../../lib/gateway/websocket.js'
import { chain } from '../../plugins/chain.js'
import { compression } from '../../plugins/compress.js'
import { cookieJar, cookies } from '../../plugins/cookies.js'
import { cors } from '../../plugins/cors.js'
import { COOKIE_SECRET, CORS_ORIGIN, JSON_BODY, PLUGINS_PATH, TEXT_BODY, UNAUTHORIZED, WS_PATH, pluginsReply, streamChunks, userReply, type Route } from '../scenarios.js'
import type { Serve } from '../peer.js'
import { validateEcho } from './schema.js'

const TEXT: Headers = [['Content-Type', 'text/plain; charset=utf-8']]
const JSON_HEADERS: Headers = [['Content-Type', 'application/json; charset=utf-8']]
const BYTES: Headers = [['Content-Type', 'application/octet-stream']]
const HELLO = Buffer.from(TEXT_BODY)

function notFound(_environ: Environ, startResponse: StartResponse): AppResult {
  startResponse('404 Not Found', [['Content-Type', 'text/plain; charset=utf-8']])
  return ['Not Found']
}

/** Scenario 8's route, below cors(), cookies() and compression(). */
function catalog(environ: Environ, startResponse: StartResponse): AppResult {
  if (environ.PATH_INFO !== PLUGINS_PATH || environ.REQUEST_METHOD !== 'GET') return notFound(environ, startResponse)
  const jar = cookieJar(environ)
  if (jar === undefined) throw new Error('catalog needs cookies() above it')
  const session = jar.unsign(jar.cookies['session'])
  if (!session.valid) {
    startResponse('401 Unauthorized', JSON_HEADERS)
    return [JSON.stringify(UNAUTHORIZED)]
  }
  jar.set('seen', '1', { path: '/', httpOnly: true })
  startResponse('200 OK', JSON_HEADERS)
  return [JSON.stringify(pluginsReply(session.value))]
}

async function echo(environ: Environ, startResponse: StartResponse): Promise<string[]> {
  let value: unknown
  try {
    value = JSON.parse(await environ['gateway.input'].text())
  } catch {
    startResponse('400 Bad Request', JSON_HEADERS)
    return ['{"error":"invalid JSON"}']
  }
  if (!validateEcho(value)) {
    startResponse('400 Bad Request', JSON_HEADERS)
    return [JSON.stringify({ error: validateEcho.errors })]
  }
  startResponse('200 OK', JSON_HEADERS)
  return [JSON.stringify(value)]
}

/**
 * The WebSocket echo as the extension's contract shows it: accept, then
 * send back every message, awaiting `send` (backpressure); the app returns
 * its empty body once the socket is done. Without the extension (a server
 * that offers no upgrades) it answers 426, as the spec asks.
 */
async function echoSocket(environ: Environ, startResponse: StartResponse): Promise<string[]> {
  if (environ.PATH_INFO !== WS_PATH || environ.REQUEST_METHOD !== 'GET') {
    startResponse('404 Not Found', TEXT)
    return ['Not Found']
  }
  const upgrade = environ['gateway.websocket'] as WebSocketUpgrade | undefined
  if (upgrade === undefined) {
    startResponse('426 Upgrade Required', [...TEXT, ['Upgrade', 'websocket']])
    return ['Upgrade Required']
  }
  const socket = upgrade.accept()
  for await (const message of socket) await socket.send(message)
  return []
}

export function gatewayApp(route: Route): GatewayApp {
  switch (route) {
    case 'text':
      return (environ, startResponse) => {
        if (environ.PATH_INFO !== '/hello' || environ.REQUEST_METHOD !== 'GET') return notFound(environ, startResponse)
        startResponse('200 OK', TEXT)
        return [HELLO]
      }
    case 'json':
      return (environ, startResponse) => {
        if (environ.PATH_INFO !== '/hello' || environ.REQUEST_METHOD !== 'GET') return notFound(environ, startResponse)
        startResponse('200 OK', JSON_HEADERS)
        return [JSON.stringify(JSON_BODY)]
      }
    case 'user':
      return (environ, startResponse) => {
        if (!environ.PATH_INFO.startsWith('/users/') || environ.REQUEST_METHOD !== 'GET') return notFound(environ, startResponse)
        const fields = new URLSearchParams(environ.QUERY_STRING).get('fields') ?? undefined
        startResponse('200 OK', JSON_HEADERS)
        return [JSON.stringify(userReply(environ.PATH_INFO.slice(7), fields))]
      }
    case 'echo':
      return (environ, startResponse) => {
        if (environ.PATH_INFO !== '/echo' || environ.REQUEST_METHOD !== 'POST') return notFound(environ, startResponse)
        return echo(environ, startResponse)
      }
    case 'stream':
      return (environ, startResponse) => {
        if (environ.PATH_INFO !== '/stream' || environ.REQUEST_METHOD !== 'GET') return notFound(environ, startResponse)
        startResponse('200 OK', BYTES)
        return streamChunks()
      }
    case 'ws':
      return echoSocket
    case 'plugins':
      return chain(cors({ origin: [CORS_ORIGIN], credentials: true }), cookies({ secret: COOKIE_SECRET }), compression())(catalog)
  }
}

export const serve: Serve = async (route, options) => {
  const server = createServer(gatewayApp(route), options.keepAliveTimeout === undefined ? {} : { keepAliveTimeout: options.keepAliveTimeout })
  const address = await server.listen({ port: options.port, host: options.host })
  return { port: address.port, close: async () => void (await server.close()) }
}
