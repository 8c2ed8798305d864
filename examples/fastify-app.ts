/**
 * A Fastify app served by postern through the Node bridge:
 * `postern examples/fastify-app.ts:app`. Once ready, `fastify.routing(req,
 * res)` is Fastify's whole request handling without its server, which is
 * what the bridge needs.
 */
import Fastify from 'fastify'
import { fromNode } from '../lib/adapters/node.js'

export const fastify = Fastify()
fastify.get('/hello', async () => 'Hello from Fastify!')
fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
fastify.post('/echo', async (request, reply) => {
  reply.type(request.headers['content-type'] ?? 'application/octet-stream')
  return request.body
})
await fastify.ready()

export const app = fromNode(fastify.routing)
