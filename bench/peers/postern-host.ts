/** Serving any gateway app on postern's server, as the peers that run another framework's app there do. */
import { createServer } from '../../lib/server/index.js'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import type { RunningPeer, ServeOptions } from '../peer.js'

export async function listenPostern(app: GatewayApp, options: ServeOptions): Promise<RunningPeer> {
  const server = createServer(app, options.keepAliveTimeout === undefined ? {} : { keepAliveTimeout: options.keepAliveTimeout })
  const address = await server.listen({ port: options.port, host: options.host })
  return { port: address.port, close: async () => void (await server.close()) }
}
