/**
 * The bare Fetch server of the runtime (`Bun.serve` or `Deno.serve`) with a
 * handler written by hand: no framework, the runtime's own HTTP stack. Every
 * other peer on that runtime is measured against it.
 */
import { JSON_BODY, TEXT_BODY, streamChunks, userReply, type Route } from '../scenarios.js'
import type { Serve } from '../peer.js'
import { listenFetch, type FetchHandler } from './fetch-host.js'
import { listenWebSocketEcho } from './fetch-ws.js'
import { validateEcho } from './schema.js'

const TEXT = { 'content-type': 'text/plain; charset=utf-8' }
const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8' }

function notFound(): Response {
  return new Response('Not Found', { status: 404, headers: TEXT })
}

async function echo(request: Request): Promise<Response> {
  let value: unknown
  try {
    value = await request.json()
  } catch {
    return new Response('{"error":"invalid JSON"}', { status: 400, headers: JSON_TYPE })
  }
  if (!validateEcho(value)) return new Response(JSON.stringify({ error: validateEcho.errors }), { status: 400, headers: JSON_TYPE })
  return new Response(JSON.stringify(value), { headers: JSON_TYPE })
}

/** The path of a request URL (`http://host/path?query`) without building a URL object. */
function pathOf(url: string): { path: string; query: string } {
  const start = url.indexOf('/', url.indexOf('//') + 2)
  const q = url.indexOf('?', start)
  return q === -1 ? { path: url.slice(start), query: '' } : { path: url.slice(start, q), query: url.slice(q + 1) }
}

export function bareHandler(route: Route): FetchHandler {
  return (request) => {
    const { path, query } = pathOf(request.url)
    const get = request.method === 'GET'
    if (route === 'text' && get && path === '/hello') return new Response(TEXT_BODY, { headers: TEXT })
    if (route === 'json' && get && path === '/hello') return new Response(JSON.stringify(JSON_BODY), { headers: JSON_TYPE })
    if (route === 'user' && get && path.startsWith('/users/')) {
      const fields = new URLSearchParams(query).get('fields') ?? undefined
      return new Response(JSON.stringify(userReply(decodeURIComponent(path.slice(7)), fields)), { headers: JSON_TYPE })
    }
    if (route === 'echo' && request.method === 'POST' && path === '/echo') return echo(request)
    if (route === 'stream' && get && path === '/stream') {
      const chunks = streamChunks()
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          const next = chunks.next()
          if (next.done === true) controller.close()
          else controller.enqueue(next.value)
        },
      })
      return new Response(body, { headers: { 'content-type': 'application/octet-stream' } })
    }
    return notFound()
  }
}

export const serve: Serve = (route, options) => {
  if (route === 'plugins') throw new Error('the bare Fetch server does not serve scenario 8')
  if (route === 'ws') return listenWebSocketEcho(options)
  return listenFetch(bareHandler(route), options)
}
