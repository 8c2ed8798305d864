/**
 * Express 5 as its docs show it: `res.send`/`res.json`, `express.json()` for
 * the body, Ajv to validate it, and a piped stream. Run with
 * NODE_ENV=production, as Express's production guide advises.
 */
import express, { type Express } from 'express'
import { Readable, pipeline } from 'node:stream'
import { JSON_BODY, TEXT_BODY, streamChunks, userReply, type Route } from '../scenarios.js'
import type { Serve } from '../peer.js'
import { validateEcho } from './schema.js'

/** The scenarios as an Express app; served by its own server here and on postern's (express-postern.ts). */
export function expressApp(route: Route): Express {
  const app = express()
  switch (route) {
    case 'text':
      app.get('/hello', (_req, res) => {
        res.type('text/plain').send(TEXT_BODY)
      })
      break
    case 'json':
      app.get('/hello', (_req, res) => {
        res.json(JSON_BODY)
      })
      break
    case 'user':
      app.get('/users/:id', (req, res) => {
        const fields = req.query['fields']
        res.json(userReply(req.params['id'] ?? '', typeof fields === 'string' ? fields : undefined))
      })
      break
    case 'echo':
      app.post('/echo', express.json(), (req, res) => {
        if (!validateEcho(req.body)) {
          res.status(400).json({ error: validateEcho.errors })
          return
        }
        res.json(req.body)
      })
      break
    case 'stream':
      app.get('/stream', (_req, res) => {
        res.type('application/octet-stream')
        pipeline(Readable.from(streamChunks()), res, () => {})
      })
      break
  }
  return app
}

export const serve: Serve = async (route, options) => {
  const app = expressApp(route)
  const server = await new Promise<import('node:http').Server>((resolve, reject) => {
    const s = app.listen(options.port, options.host, (error?: Error) => (error ? reject(error) : resolve(s)))
  })
  if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout
  const address = server.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : options.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
