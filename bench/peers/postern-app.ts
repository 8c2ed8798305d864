/** postern's framework on postern's server (`app.listen`). */
import type { Serve } from '../peer.js'
import { frameworkApp } from './postern-routes.js'

export const serve: Serve = async (route, options) => {
  const app = await frameworkApp(route)
  const address = await app.listen({
    port: options.port,
    host: options.host,
    ...(options.keepAliveTimeout === undefined ? {} : { keepAliveTimeout: options.keepAliveTimeout }),
  })
  return { port: address.port, close: () => app.close() }
}
