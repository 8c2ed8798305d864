/**
 * examples/logging.ts served by the real `postern` command: its
 * `logger: true` lines come out on stdout as JSON, the handler's `req.log`
 * line and the request's line share the id the client sent, and a failing
 * route is logged with its request and stack while the client reads a plain 500.
 */
import t from 'tap'
import { serveLogged } from '../fixtures/log-process.js'

t.test('examples/logging.ts: JSON lines on stdout with the request id', async (t) => {
  const s = await serveLogged(t, ['examples/logging.ts:app', '--port', '0'])
  const res = await fetch(`${s.url}/orders/7`, { headers: { 'x-request-id': 'abc-123' } })
  t.same(await res.json(), { id: '7', requestId: 'abc-123' })
  const own = await s.line((l) => l.msg === 'looking up an order', "the handler's line")
  t.match(own, { reqId: 'abc-123', order: '7', level: 30 })
  const done = await s.line((l) => l.msg === 'request completed', "the request's line")
  t.match(done, { reqId: 'abc-123', req: { method: 'GET', url: '/orders/7' }, res: { statusCode: 200 } })

  const failed = await fetch(`${s.url}/fail`, { headers: { 'x-request-id': 'oops-1' } })
  t.equal(failed.status, 500)
  t.same(await failed.json(), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' })
  const error = await s.line((l) => l.level === 50, 'the error line')
  t.match(error, { reqId: 'oops-1', req: { method: 'GET', url: '/fail' } })
  t.match(error.msg, /Error: the database is down\n\s+at .*examples\/logging\.ts/)
  t.equal(s.stderr(), '', 'nothing on stderr: the error is in the log')
})
