/**
 * Issue #11: habits users bring from Fastify. Unknown routes and the
 * automatic 405 answer without the error handler (it is for errors thrown by
 * the app), and every registered status answers with its standard reason
 * phrase, on the status line and in the default error body.
 */
import t from 'tap'
import { postern } from '../../lib/framework/app.js'
import { STATUS_TEXT } from '../../lib/gateway/headers.js'
import { firstResponse, serve } from '../helpers/server.js'

/** An app whose error handler answers every error with a 500, as in the issue. */
function withErrorHandler() {
  const app = postern()
  const handled: unknown[] = []
  app.setErrorHandler((error, _req, reply) => {
    handled.push(error)
    reply.status(500)
    return { custom: true }
  })
  app.get('/a', () => 'a')
  app.get('/boom', () => {
    throw new Error('boom')
  })
  return { app, handled }
}

t.test('unknown routes go to the default not-found handler, not the error handler', async (t) => {
  const { app, handled } = withErrorHandler()
  const r = await app.inject({ url: '/nope' })
  t.equal(r.status, 404)
  t.same(r.json(), { statusCode: 404, error: 'Not Found', message: 'Route GET /nope not found' })
  t.same(handled, [], 'the error handler was not called')
})

t.test('unknown routes go to a not-found handler set with setNotFoundHandler, not the error handler', async (t) => {
  const { app, handled } = withErrorHandler()
  app.setNotFoundHandler((req, reply) => {
    reply.status(404)
    return { missing: req.path }
  })
  const r = await app.inject({ url: '/nope' })
  t.equal(r.status, 404)
  t.same(r.json(), { missing: '/nope' })
  t.same(handled, [])
})

t.test('the automatic 405 does not go to the error handler', async (t) => {
  const { app, handled } = withErrorHandler()
  const r = await app.inject({ method: 'DELETE', url: '/a' })
  t.equal(r.status, 405)
  t.equal(r.headers.allow, 'GET, HEAD, OPTIONS')
  t.same(r.json(), { statusCode: 405, error: 'Method Not Allowed', message: 'Method DELETE not allowed for /a' })
  t.same(handled, [])
})

t.test('errors thrown by handlers still go to the error handler', async (t) => {
  const { app, handled } = withErrorHandler()
  const r = await app.inject({ url: '/boom' })
  t.equal(r.status, 500)
  t.same(r.json(), { custom: true })
  t.equal(handled.length, 1)
})

/** Every code of the IANA HTTP status code registry but the unused 306, and 418 as Node names it. */
const REGISTERED = [
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412,
  413, 414, 415, 416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]

t.test('STATUS_TEXT has a reason phrase for every registered status', async (t) => {
  const missing = REGISTERED.filter((code) => typeof STATUS_TEXT[code] !== 'string' || STATUS_TEXT[code] === '')
  t.same(missing, [])
  t.equal(STATUS_TEXT[418], "I'm a Teapot")
  t.equal(STATUS_TEXT[413], 'Content Too Large', 'RFC 9110 names kept')
  t.equal(STATUS_TEXT[422], 'Unprocessable Content')
})

t.test('418 on a real socket: standard status line and error name', async (t) => {
  const app = postern()
  app.get('/thrown', () => {
    throw Object.assign(new Error('short and stout'), { status: 418 })
  })
  app.get('/set', (_req, reply) => {
    reply.status(418)
    return 'tea'
  })
  await app.ready()
  const served = await serve(t, app)
  const thrown = await firstResponse(served, 'GET /thrown HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(thrown.raw.toString('latin1').split('\r\n')[0], "HTTP/1.1 418 I'm a Teapot")
  t.equal(thrown.body.toString(), '{"statusCode":418,"error":"I\'m a Teapot","message":"short and stout"}')
  const set = await firstResponse(served, 'GET /set HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(set.raw.toString('latin1').split('\r\n')[0], "HTTP/1.1 418 I'm a Teapot")
  t.equal(set.body.toString(), 'tea')
  t.same(served.errors, [])
})

t.test('the not-found message shows the path as it was requested', async (t) => {
  const app = postern()
  app.get('/users/:id', (req) => req.params.id)
  const missing = await app.inject({ url: '/nope/a%2Fb' })
  t.equal(missing.status, 404)
  t.equal(missing.json<{ message: string }>().message, 'Route GET /nope/a%2Fb not found', 'the encoded slash is shown as sent')
  const found = await app.inject({ url: '/users/a%2Fb' })
  t.equal(found.body, 'a/b', 'the route still matches with the slash in its parameter')
})

t.test('app.listen() and the postern command share one documented default port', async (t) => {
  const { DEFAULT_PORT, DEFAULT_HOST } = await import('../../lib/server/index.js')
  t.equal(DEFAULT_PORT, 8888, 'the default the README and `postern --help` document')
  t.equal(DEFAULT_HOST, '127.0.0.1', 'loopback unless asked')
  const app = postern()
  app.get('/hello', () => 'hello')
  let address: { address: string; port: number }
  try {
    address = await app.listen()
  } catch (error) {
    // Another process holds the port on this machine: the default is still asserted above.
    t.equal((error as NodeJS.ErrnoException).code, 'EADDRINUSE', 'the only acceptable failure is the port being taken')
    return
  }
  t.teardown(() => app.close())
  t.same({ address: address.address, port: address.port }, { address: DEFAULT_HOST, port: DEFAULT_PORT }, 'listen() with no options uses them')
  t.equal(await (await fetch(`http://127.0.0.1:${DEFAULT_PORT}/hello`)).text(), 'hello')
})

t.test('without a logger, a failed request is still named in the error log (method and target)', async (t) => {
  const app = postern()
  app.get('/boom', () => {
    throw new Error('kaboom')
  })
  const served = await serve(t, app)
  const r = await fetch(`http://127.0.0.1:${served.port}/boom?x=1`)
  t.equal(r.status, 500)
  t.equal(served.errors.length, 1)
  t.match(served.errors[0], /^postern: request GET \/boom\?x=1 failed: Error: kaboom\n\s+at /)
})
