/**
 * postern's framework on `Bun.serve` or `Deno.serve` through the Fetch
 * adapter (`toFetch`): the same app as postern-app.ts and postern-node.ts,
 * so the row compares with the runtime's bare server and Hono on it (on
 * the WebSocket scenario too: `app.ws()` through the adapter).
 */
import { toFetch } from '../../lib/adapters/to-fetch.js'
import type { Serve } from '../peer.js'
import { listenFetch } from './fetch-host.js'
import { frameworkApp } from './postern-routes.js'

export const serve: Serve = async (route, options) => {
  const handler = toFetch(await frameworkApp(route))
  // Bun.serve gets the adapter's WebSocket handlers for the WebSocket scenario, as toFetch's docs ask; Deno needs none.
  const running = await listenFetch(handler, options, route === 'ws' ? handler.websocket : undefined)
  return {
    port: running.port,
    close: async () => {
      await handler.closeWebSockets()
      await running.close()
    },
  }
}
