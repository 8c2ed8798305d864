/**
 * Request logging, as Fastify's `logger: true`: one JSON line per request
 * on stdout (reqId, method, url, status, responseTime in ms), `req.log` for
 * the handler's own lines (they carry the same reqId), and an error logged
 * with the request it belongs to. A request's id comes from its
 * `X-Request-Id` header when that is a plausible id, else it is a UUID.
 *
 *   postern examples/logging.ts:app
 *   curl -H 'x-request-id: abc-123' http://127.0.0.1:8888/orders/7
 *
 * Without the framework, the same middleware serves any gateway app:
 * `requestLogger({ logger: true })(app)`, or `postern app.ts --access-log`.
 */
import { postern } from '../lib/framework/app.js'

export const app = postern({ logger: true })

app.get('/orders/:id', (req) => {
  req.log.info({ order: req.params.id }, 'looking up an order')
  return { id: req.params.id, requestId: req.id }
})

app.get('/fail', () => {
  throw new Error('the database is down')
})

export default app

if (import.meta.url === `file://${process.argv[1]}`) {
  const { port } = await app.listen({ port: 8888 })
  app.log.info(`listening on http://127.0.0.1:${port}`)
}
