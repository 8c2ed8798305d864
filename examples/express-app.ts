/**
 * An Express 5 app served by postern through the Node bridge:
 * `postern examples/express-app.ts:app`. Express sees request/response
 * objects shaped like Node's; no bytes are parsed twice.
 */
import express from 'express'
import { fromNode } from '../lib/adapters/node.js'

export const expressApp = express()
expressApp.get('/hello', (_req, res) => {
  res.send('Hello from Express!')
})
expressApp.post('/echo', express.raw({ type: () => true, limit: '1mb' }), (req, res) => {
  res.type(req.get('content-type') ?? 'application/octet-stream').send(req.body)
})

export const app = fromNode(expressApp)
