/** The Hono app of hono-app.ts on postern's server through `fromFetch`: the same app as on @hono/node-server. */
import { fromFetch } from '../../lib/adapters/from-fetch.js'
import type { Serve } from '../peer.js'
import { honoApp } from './hono-app.js'
import { listenPostern } from './postern-host.js'

export const serve: Serve = (route, options) => listenPostern(fromFetch(honoApp(route)), options)
