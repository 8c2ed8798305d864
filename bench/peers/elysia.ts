/**
 * Elysia on Bun as its docs show: `app.listen`, TypeBox schemas (`t`) for
 * the body and the responses, so Elysia validates the body and serializes
 * the answer from the schema (its Exact Mirror normalizer), and a generator
 * handler for the stream.
 */
import { Elysia, t } from 'elysia'
import { JSON_BODY, TEXT_BODY, streamChunks, userReply } from '../scenarios.js'
import type { Serve } from '../peer.js'
import { fetchRuntime } from './fetch-host.js'

const HELLO = t.Object({ hello: t.String() }, { additionalProperties: false })
const USER = t.Object({ id: t.String(), fields: t.Array(t.String()) }, { additionalProperties: false })
/** bench/scenarios.ts ECHO_SCHEMA in TypeBox. */
const ECHO = t.Object(
  {
    id: t.Integer(),
    name: t.String({ maxLength: 200 }),
    email: t.String({ maxLength: 200 }),
    active: t.Boolean(),
    score: t.Number(),
    tags: t.Array(t.String(), { maxItems: 50 }),
    address: t.Object({ street: t.String(), city: t.String(), zip: t.String(), country: t.String() }, { additionalProperties: false }),
    items: t.Array(t.Object({ sku: t.String(), qty: t.Integer(), price: t.Number() }, { additionalProperties: false }), { maxItems: 100 }),
  },
  { additionalProperties: false },
)

export const serve: Serve = async (route, options) => {
  if (fetchRuntime() !== 'bun') throw new Error('Elysia is benchmarked on Bun, the runtime it is written for')
  const app = new Elysia()
  switch (route) {
    case 'text':
      app.get('/hello', () => TEXT_BODY)
      break
    case 'json':
      app.get('/hello', () => ({ ...JSON_BODY }), { response: { 200: HELLO } })
      break
    case 'user':
      app.get('/users/:id', ({ params, query }) => userReply(params.id, query.fields), {
        params: t.Object({ id: t.String() }),
        query: t.Object({ fields: t.Optional(t.String()) }),
        response: { 200: USER },
      })
      break
    case 'echo':
      app.post('/echo', ({ body }) => body, { body: ECHO, response: { 200: ECHO } })
      break
    case 'stream':
      app.get('/stream', function* () {
        yield* streamChunks()
      })
      break
    case 'plugins':
      throw new Error('the Elysia peer does not serve scenario 8')
  }
  const idle = options.keepAliveTimeout === undefined ? {} : { idleTimeout: Math.min(255, Math.max(1, Math.ceil(options.keepAliveTimeout / 1000))) }
  app.listen({ port: options.port, hostname: options.host, ...idle })
  // Typed by @types/bun, which is not installed for Node's typecheck.
  const port: unknown = app.server?.port
  if (typeof port !== 'number') throw new Error('Elysia did not report its port')
  return { port, close: async () => void (await app.stop(true)) }
}
