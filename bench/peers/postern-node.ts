/**
 * postern's framework on node:http through the adapter (`toNodeListener`):
 * the same app as postern-app.ts, Node's HTTP stack underneath, so the two
 * rows side by side compare the servers under one framework. The WebSocket
 * scenario adds the adapter's `'upgrade'` listener (`toNodeUpgrade`), as
 * its docs wire it.
 */
import http from 'node:http'
import { toNodeUpgrade } from '../../lib/adapters/node-websocket.js'
import { toNodeListener } from '../../lib/adapters/to-node.js'
import type { Serve } from '../peer.js'
import { frameworkApp } from './postern-routes.js'

export const serve: Serve = async (route, options) => {
  const app = await frameworkApp(route)
  const server = http.createServer(toNodeListener(app))
  const upgrade = route === 'ws' ? toNodeUpgrade(app) : null
  if (upgrade !== null) server.on('upgrade', upgrade)
  if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout
  await new Promise<void>((resolve) => server.listen(options.port, options.host, resolve))
  const address = server.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : options.port,
    close: () =>
      new Promise<void>((resolve) => {
        void upgrade?.closeAll()
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
