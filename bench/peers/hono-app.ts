/**
 * The scenarios as a Hono app, written the way Hono's docs show: `c.text`,
 * `c.json`, the `validator('json', …)` middleware (here with Ajv, as no
 * schema library ships with Hono) and the `stream` helper. Served on Node
 * through @hono/node-server (hono.ts) and on Bun and Deno as `app.fetch`
 * (fetch-hono.ts).
 */
import { Hono } from 'hono'
import { validator } from 'hono/validator'
import { stream } from 'hono/streaming'
import { JSON_BODY, TEXT_BODY, streamChunks, userReply, type Route } from '../scenarios.js'
import { validateEcho } from './schema.js'

export function honoApp(route: Route): Hono {
  const app = new Hono()
  switch (route) {
    case 'text':
      app.get('/hello', (c) => c.text(TEXT_BODY))
      break
    case 'json':
      app.get('/hello', (c) => c.json(JSON_BODY))
      break
    case 'user':
      app.get('/users/:id', (c) => c.json(userReply(c.req.param('id'), c.req.query('fields'))))
      break
    case 'echo':
      app.post(
        '/echo',
        validator('json', (value, c) => (validateEcho(value) ? value : c.json({ error: validateEcho.errors }, 400))),
        (c) => c.json(c.req.valid('json')),
      )
      break
    case 'stream':
      app.get('/stream', (c) => {
        c.header('Content-Type', 'application/octet-stream')
        return stream(c, async (s) => {
          for (const chunk of streamChunks()) await s.write(chunk)
        })
      })
      break
  }
  return app
}
