/**
 * Hono on @hono/node-server, written the way Hono's docs show: `c.text`,
 * `c.json`, the `validator('json', …)` middleware (here with Ajv, as no
 * schema library ships with Hono) and the `stream` helper.
 */
import { Hono } from 'hono'
import { validator } from 'hono/validator'
import { stream } from 'hono/streaming'
import { serve as honoServe } from '@hono/node-server'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { JSON_BODY, TEXT_BODY, streamChunks, userReply } from '../scenarios.js'
import type { Serve } from '../peer.js'
import { validateEcho } from './schema.js'

export const serve: Serve = async (route, options) => {
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
  let listening!: (port: number) => void
  const ready = new Promise<number>((resolve) => (listening = resolve))
  const server = honoServe({ fetch: app.fetch, port: options.port, hostname: options.host }, (info: AddressInfo) => listening(info.port)) as Server
  if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout
  return {
    port: await ready,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
