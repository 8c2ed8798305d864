/**
 * The scenarios as a postern framework app, written the way its docs show:
 * handlers return values, routes declare schemas (body validated, responses
 * serialized by fast-json-stringify). Served two ways: on postern's server
 * (postern-app.ts) and on node:http through the adapter (postern-node.ts).
 */
import { postern, type App } from '../../lib/framework/app.js'
import { ECHO_SCHEMA, HELLO_SCHEMA, JSON_BODY, TEXT_BODY, USER_SCHEMA, streamChunks, userReply, type Route } from '../scenarios.js'

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
  }
  return app.ready()
}
