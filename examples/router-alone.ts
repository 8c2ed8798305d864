/**
 * The router and the JSON/text plugins on their own, in a bare gateway stack
 * with no framework: each part is a gateway app or middleware.
 * Serve it with `postern examples/router-alone.ts:app`.
 */
import type { Middleware } from '../lib/gateway/spec.js'
import { createRouter, PARAMS_KEY, type Params } from '../plugins/router.js'
import { chain } from '../plugins/chain.js'
import { json } from '../plugins/json.js'
import { text } from '../plugins/text.js'

const router = createRouter()
router.get(
  '/hello',
  text(() => 'Hello, world!'),
)
router.get(
  '/hello.json',
  json(() => ({ hello: 'world' })),
)
router.get(
  '/users/:id',
  json((environ) => ({ id: (environ[PARAMS_KEY] as Params).id }), {
    response: { 200: { type: 'object', properties: { id: { type: 'string' } } } },
  }),
)

/** Adds a header to every response by wrapping startResponse. */
const poweredBy: Middleware = (app) => (environ, startResponse) => app(environ, (status, headers, error) => startResponse(status, [...headers, ['x-powered-by', 'postern']], error))

export const app = chain(poweredBy)(router)
export default app
