/**
 * Fastify as its docs advise for production: logger off, JSON schemas for
 * the body (Ajv) and the responses (fast-json-stringify).
 */
import Fastify from 'fastify'
import { Readable } from 'node:stream'
import { ECHO_SCHEMA, HELLO_SCHEMA, JSON_BODY, TEXT_BODY, USER_SCHEMA, streamChunks, userReply } from '../scenarios.js'
import type { Serve } from '../peer.js'

export const serve: Serve = async (route, options) => {
  const app = Fastify({ logger: false, ...(options.keepAliveTimeout === undefined ? {} : { keepAliveTimeout: options.keepAliveTimeout }) })
  switch (route) {
    case 'text':
      app.get('/hello', (_req, reply) => {
        reply.send(TEXT_BODY)
      })
      break
    case 'json':
      app.get('/hello', { schema: { response: { 200: HELLO_SCHEMA } } }, (_req, reply) => {
        reply.send(JSON_BODY)
      })
      break
    case 'user':
      app.get<{ Params: { id: string }; Querystring: { fields?: string } }>(
        '/users/:id',
        {
          schema: {
            params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
            querystring: { type: 'object', properties: { fields: { type: 'string' } } },
            response: { 200: USER_SCHEMA },
          },
        },
        (req, reply) => {
          reply.send(userReply(req.params.id, req.query.fields))
        },
      )
      break
    case 'echo':
      app.post('/echo', { schema: { body: ECHO_SCHEMA, response: { 200: ECHO_SCHEMA } } }, (req, reply) => {
        reply.send(req.body)
      })
      break
    case 'stream':
      app.get('/stream', (_req, reply) => {
        reply.type('application/octet-stream').send(Readable.from(streamChunks()))
      })
      break
  }
  await app.listen({ port: options.port, host: options.host })
  const address = app.server.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : options.port,
    close: () => app.close(),
  }
}
