/**
 * A Hono app served by postern through the Fetch bridge:
 * `postern examples/hono-app.ts:app`. Hono routes; postern serves.
 */
import { Hono } from 'hono'
import { fromFetch } from '../lib/adapters/fetch.js'

export const hono = new Hono()
hono.get('/hello', (c) => c.text('Hello from Hono!'))
hono.post('/echo', async (c) => c.body(await c.req.arrayBuffer(), 200, { 'content-type': c.req.header('content-type') ?? 'application/octet-stream' }))

export const app = fromFetch(hono.fetch)
