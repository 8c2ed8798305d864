/** Hono (bench/peers/hono-app.ts) on `Bun.serve` or `Deno.serve`: `app.fetch` handed to the runtime, as Hono's Bun and Deno guides show. */
import type { Serve } from '../peer.js'
import { listenFetch } from './fetch-host.js'
import { honoApp } from './hono-app.js'

export const serve: Serve = (route, options) => listenFetch(honoApp(route).fetch, options)
