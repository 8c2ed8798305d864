/**
 * Fastify as its docs advise for production: logger off, JSON schemas for
 * the body (Ajv) and the responses (fast-json-stringify). Scenario 8 adds
 * @fastify/cors, @fastify/cookie and @fastify/compress as their READMEs
 * register them (compress awaited before the routes, as its hooks are added
 * per route). The WebSocket scenario registers @fastify/websocket (the
 * `ws` library underneath) as its README shows.
 */
import Fastify, { type FastifyInstance, type FastifyServerFactory, type FastifyServerOptions } from 'fastify'
import fastifyCompress from '@fastify/compress'
import fastifyCookie from '@fastify/cookie'
import fastifyCors from '@fastify/cors'
import fastifyWebsocket from '@fastify/websocket'
import { Readable } from 'node:stream'
import {
  COOKIE_SECRET,
  CORS_ORIGIN,
  ECHO_SCHEMA,
  HELLO_SCHEMA,
  JSON_BODY,
  PLUGINS_PATH,
  PLUGINS_SCHEMA,
  TEXT_BODY,
  UNAUTHORIZED,
  UNAUTHORIZED_SCHEMA,
  USER_SCHEMA,
  WS_PATH,
  pluginsReply,
  streamChunks,
  userReply,
  type Route,
} from '../scenarios.js'
import type { Serve } from '../peer.js'

/**
 * The scenarios as a Fastify app, not yet listening; `serverFactory` is for
 * serving it elsewhere (fastify-postern.ts takes the request handler Fastify
 * hands it and runs it on postern's server).
 */
export async function fastifyApp(route: Route, options: FastifyServerOptions & { serverFactory?: FastifyServerFactory }): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, ...options })
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
    case 'ws':
      // @fastify/websocket as its README registers it: a `websocket: true` GET route, the handler given the `ws` socket.
      await app.register(fastifyWebsocket)
      app.get(WS_PATH, { websocket: true }, (socket) => {
        socket.on('message', (data, isBinary) => socket.send(data as Buffer, { binary: isBinary }))
      })
      break
    case 'plugins':
      await app.register(fastifyCors, { origin: [CORS_ORIGIN], credentials: true })
      await app.register(fastifyCookie, { secret: COOKIE_SECRET })
      await app.register(fastifyCompress)
      app.get(PLUGINS_PATH, { schema: { response: { 200: PLUGINS_SCHEMA, 401: UNAUTHORIZED_SCHEMA } } }, (req, reply) => {
        const signed = req.cookies['session']
        const session = signed === undefined ? null : req.unsignCookie(signed)
        if (session === null || !session.valid) {
          reply.code(401).send(UNAUTHORIZED)
          return
        }
        reply.setCookie('seen', '1', { path: '/', httpOnly: true })
        reply.send(pluginsReply(session.value))
      })
      break
  }
  return app
}

export const serve: Serve = async (route, options) => {
  const app = await fastifyApp(route, options.keepAliveTimeout === undefined ? {} : { keepAliveTimeout: options.keepAliveTimeout })
  await app.listen({ port: options.port, host: options.host })
  const address = app.server.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : options.port,
    close: () => app.close(),
  }
}
