/**
 * A bare gateway app on postern's server: `(environ, startResponse) → body`
 * written by hand, with no framework. The distance between it and the raw
 * socket ceiling is the server's own cost.
 */
import { createServer } from '../../lib/server/index.js'
import type { AppResult, Environ, GatewayApp, Headers, StartResponse } from '../../lib/gateway/spec.js'
import { JSON_BODY, TEXT_BODY, streamChunks, userReply, type Route } from '../scenarios.js'
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
  }
}

export const serve: Serve = async (route, options) => {
  const server = createServer(gatewayApp(route), options.keepAliveTimeout === undefined ? {} : { keepAliveTimeout: options.keepAliveTimeout })
  const address = await server.listen({ port: options.port, host: options.host })
  return { port: address.port, close: async () => void (await server.close()) }
}
