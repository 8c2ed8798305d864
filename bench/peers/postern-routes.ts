/**
 * The scenarios as a postern framework app, written the way its docs show:
 * handlers return values, routes declare schemas (body validated, responses
 * serialized by fast-json-stringify), scenario 8's plugins registered with
 * one `app.use` each. Served two ways: on postern's server (postern-app.ts)
 * and on node:http through the adapter (postern-node.ts).
 */
import { postern, type App } from '../../lib/framework/app.js'
import { compression } from '../../plugins/compress.js'
import { cookies } from '../../plugins/cookies.js'
import { cors } from '../../plugins/cors.js'
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

export async function frameworkApp(route: Route): Promise<App> {
  const app = postern()
  switch (route) {
    case 'text':
      app.get('/hello', () => TEXT_BODY)
      break
    case 'json':
      app.get('/hello', { schema: { response: { 200: HELLO_SCHEMA } } }, () => JSON_BODY)
      break
    case 'user':
      app.get(
        '/users/:id',
        {
          schema: {
            params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
            query: { type: 'object', properties: { fields: { type: 'string' } } },
            response: { 200: USER_SCHEMA },
          },
        },
        (req) => {
          const fields = req.query['fields']
          return userReply(req.params.id, typeof fields === 'string' ? fields : undefined)
        },
      )
      break
    case 'echo':
      app.post('/echo', { schema: { body: ECHO_SCHEMA, response: { 200: ECHO_SCHEMA } } }, (req) => req.body)
      break
    case 'stream':
      app.get('/stream', () => streamChunks())
      break
    case 'ws':
      app.ws(WS_PATH, async (socket) => {
        for await (const message of socket) await socket.send(message)
      })
      break
    case 'plugins':
      app.use(cors({ origin: [CORS_ORIGIN], credentials: true }))
      app.use(cookies({ secret: COOKIE_SECRET }))
      app.use(compression())
      app.get(PLUGINS_PATH, { schema: { response: { 200: PLUGINS_SCHEMA, 401: UNAUTHORIZED_SCHEMA } } }, (req, reply) => {
        const session = req.unsignCookie(req.cookies.session)
        if (!session.valid) return reply.status(401).send(UNAUTHORIZED)
        reply.cookie('seen', '1', { path: '/', httpOnly: true })
        return pluginsReply(session.value)
      })
      break
  }
  return app.ready()
}
