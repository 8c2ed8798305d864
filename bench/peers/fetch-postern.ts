/**
 * postern's framework on `Bun.serve` or `Deno.serve` through the Fetch
 * adapter (`toFetch`): the same app as postern-app.ts and postern-node.ts,
 * so the row compares with the runtime's bare server and Hono on it.
 */
import { toFetch } from '../../lib/adapters/to-fetch.js'
import type { Serve } from '../peer.js'
import { listenFetch } from './fetch-host.js'
import { frameworkApp } from './postern-routes.js'

export const serve: Serve = async (route, options) => listenFetch(toFetch(await frameworkApp(route)), options)
