/**
 * Hono's `upgradeWebSocket` on postern's servers, through fromFetch: Hono's
 * own helpers (hono/bun, hono/deno, @hono/node-ws) need their runtime's
 * server, but fromFetch hands the environ to the handler as Hono's `c.env`,
 * so a few lines of `defineWebSocketHelper` over `gateway.websocket` (the
 * README's recipe, below as written there) serve Hono WebSocket routes on
 * postern's own server and on node:http (serveNode), with Hono middleware
 * refusing before the upgrade.
 */
import t, { type Test } from 'tap'
import { Hono } from 'hono'
import { defineWebSocketHelper, WSContext, type WSEvents } from 'hono/ws'
import { fromFetch } from '../../lib/adapters/fetch.js'
import { serveNode } from '../../lib/adapters/node.js'
import type { Environ } from '../../lib/gateway/spec.js'
import type { WebSocketUpgrade } from '../../lib/gateway/websocket.js'
import { serve } from '../helpers/server.js'
import { talk } from '../fixtures/ws-scenarios.js'

// --- the recipe ---------------------------------------------------------------

type CloseEventLike = Parameters<NonNullable<WSEvents['onClose']>>[0]

/** Hono's `upgradeWebSocket` on any postern server, through fromFetch (the environ is `c.env`). */
export const upgradeWebSocket = defineWebSocketHelper(async (c, events, options?: { protocol?: string }) => {
  const upgrade = (c.env as Environ | undefined)?.['gateway.websocket'] as WebSocketUpgrade | undefined
  if (upgrade === undefined) return // not a handshake, or no WebSocket on this server: the next handler answers
  const socket = upgrade.accept(options)
  let readyState: 1 | 3 = 1
  const ws = new WSContext({
    raw: socket,
    protocol: socket.protocol,
    get readyState() {
      return readyState
    },
    send: (data) => void socket.send(typeof data === 'string' ? data : new Uint8Array(data)),
    close: (code, reason) => socket.close(code, reason),
  })
  void (async () => {
    events.onOpen?.(new Event('open'), ws)
    try {
      for await (const data of socket) {
        const payload = typeof data === 'string' ? data : new Uint8Array(data).buffer
        events.onMessage?.(new MessageEvent('message', { data: payload }), ws)
      }
    } catch (error) {
      events.onError?.(Object.assign(new Event('error'), { error }), ws)
    }
    const { code, reason } = await socket.closed
    readyState = 3
    events.onClose?.(Object.assign(new Event('close'), { code, reason, wasClean: code !== 1006 }) as CloseEventLike, ws)
  })()
  return new Response(null) // discarded: the server sent the 101
})

// --- the test -------------------------------------------------------------------

const closes: number[] = []
const hono = new Hono()
hono.get('/hello', (c) => c.text('hello from hono'))
hono.use('/private/*', async (c, next) => {
  if (c.req.header('authorization') === undefined) return c.text('who are you?', 401)
  await next()
})
const echo = upgradeWebSocket(() => ({
  onMessage(event, ws) {
    ws.send(typeof event.data === 'string' ? `echo ${event.data}` : new Uint8Array(event.data as ArrayBuffer))
  },
  onClose(event) {
    closes.push(event.code)
  },
}))
hono.get('/ws', echo)
hono.get('/private/ws', echo)
const app = fromFetch(hono)

const servers: Array<[string, (t: Test) => Promise<number>]> = [
  ["postern's server", async (t) => (await serve(t, app)).port],
  [
    'node:http (serveNode)',
    async (t) => {
      const served = await serveNode(app, { drainTimeout: 1000 })
      t.teardown(() => served.close())
      return served.port
    },
  ],
]

for (const [name, start] of servers) {
  t.test(name, async (t) => {
    const port = await start(t)
    closes.length = 0
    const r = await talk('ws', port, '/ws', { send: ['hi', new Uint8Array([7, 8])], closeAfter: 2 })
    t.same(r.messages, ['echo hi', new Uint8Array([7, 8])], 'text and binary echoed by the Hono handler')
    t.equal(r.code, 1000)
    const u = await talk('undici', port, '/ws', { send: ['again'], closeAfter: 1 })
    t.same(u.messages, ['echo again'])
    const refused = await talk('ws', port, '/private/ws')
    t.equal(refused.status, 401, 'Hono middleware refuses before the upgrade')
    const res = await fetch(`http://127.0.0.1:${port}/hello`)
    t.equal(await res.text(), 'hello from hono', 'plain routes of the same Hono app')
    await new Promise((resolve) => setTimeout(resolve, 20))
    t.same(closes, [1000, 1000], "Hono's onClose saw both closes")
  })
}
