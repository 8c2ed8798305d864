/**
 * `postern({ logger })`, Fastify's habit, over a real socket: one line per
 * request (the router's automatic answers included), `req.log` carrying the
 * request id, `req.id`, `app.log`, errors logged with their request; and
 * without a logger, `req.log` and `app.log` that write nothing and never throw.
 */
import t from 'tap'
import { postern } from '../../lib/framework/app.js'
import { RawClient, exchange } from '../helpers/raw.js'
import { serve } from '../helpers/server.js'
import { capture } from '../fixtures/log-capture.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

function appWith(logger: ReturnType<typeof capture>['logger']) {
  const app = postern({ logger })
  app.addHook('onRequest', (req) => {
    req.log.debug('not at the default level')
    req.log.info({ hook: 'onRequest' }, 'hook sees the request')
  })
  app.get('/users/:id', (req) => {
    req.log.info({ user: req.params.id }, 'looking up')
    return { id: req.params.id, reqId: req.id }
  })
  app.post('/users', (_req, reply) => reply.status(201).send({ made: true }))
  app.get('/boom', () => {
    throw new Error('kaboom')
  })
  app.get('/tail', (_req, reply) => {
    reply.type('text/plain')
    return (async function* () {
      yield 'first\n'
      await new Promise(() => {}) // never more: the client leaves
    })()
  })
  return app
}

t.test('one line per request; req.log and hooks carry reqId; req.id is that id', async (t) => {
  const log = capture()
  const app = appWith(log.logger)
  const { port, errors } = await serve(t, app)
  const res = await fetch(`http://127.0.0.1:${port}/users/7?x=1`, { headers: { 'x-request-id': 'fw-1' } })
  t.same(await res.json(), { id: '7', reqId: 'fw-1' })
  await log.until(3)
  t.same(
    log.lines.map((l) => [l.reqId, l.msg]),
    [
      ['fw-1', 'hook sees the request'],
      ['fw-1', 'looking up'],
      ['fw-1', 'request completed'],
    ],
    'debug is below the default level; every line has the id',
  )
  t.match(log.lines[1], { user: '7' })
  t.match(log.lines[2], { level: 30, req: { method: 'GET', url: '/users/7?x=1' }, res: { statusCode: 200 } })
  t.type(log.lines[2]!.responseTime, 'number')

  await (await fetch(`http://127.0.0.1:${port}/users/8`)).json()
  await log.until(6)
  const second = log.completed()[1]!
  t.match(second.reqId, UUID, 'generated when the request brings none')
  t.not(second.reqId, 'fw-1')
  t.same(errors, [])
})

t.test("the router's automatic answers are logged too: 404, 405, OPTIONS", async (t) => {
  const log = capture()
  const { port } = await serve(t, appWith(log.logger))
  t.equal((await fetch(`http://127.0.0.1:${port}/nowhere`)).status, 404)
  t.equal((await fetch(`http://127.0.0.1:${port}/users`, { method: 'DELETE' })).status, 405)
  t.equal((await fetch(`http://127.0.0.1:${port}/users`, { method: 'OPTIONS' })).status, 204)
  t.equal((await fetch(`http://127.0.0.1:${port}/users`, { method: 'POST' })).status, 201)
  await log.until(8)
  t.same(
    log.completed().map((l) => [l.req!.method, l.req!.url, l.res!.statusCode]),
    [
      ['GET', '/nowhere', 404],
      ['DELETE', '/users', 405],
      ['OPTIONS', '/users', 204],
      ['POST', '/users', 201],
    ],
  )
})

t.test('a route error is logged with method, url, reqId and the stack, not to the server', async (t) => {
  const log = capture()
  const { port, errors } = await serve(t, appWith(log.logger))
  const res = await fetch(`http://127.0.0.1:${port}/boom`, { headers: { 'x-request-id': 'fw-boom' } })
  t.equal(res.status, 500)
  t.same(await res.json(), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' }, 'the client reads nothing of it')
  await log.until(3)
  const error = log.lines.find((l) => l.level === 50)!
  t.match(error, { reqId: 'fw-boom', req: { method: 'GET', url: '/boom' } })
  t.match(error.msg, /^postern: request GET \/boom failed: Error: kaboom\n\s+at /)
  t.match(error.msg, /logger\.test\.ts/, 'the stack points at the handler')
  t.match(log.completed()[0], { reqId: 'fw-boom', res: { statusCode: 500 } })
  t.same(errors, [], 'the server’s error stream got nothing: the log has it')
})

t.test('a client that leaves a stream gives exactly one line', async (t) => {
  const log = capture()
  const { port } = await serve(t, appWith(log.logger))
  const client = await RawClient.connect(port)
  client.write('GET /tail HTTP/1.1\r\nHost: x\r\nX-Request-Id: fw-gone\r\n\r\n')
  t.ok(await client.receivedText('first'))
  client.destroy()
  await log.until(2)
  t.match(log.completed(), [{ reqId: 'fw-gone', res: { statusCode: 200 }, aborted: true }])
  await (await fetch(`http://127.0.0.1:${port}/users/1`, { headers: { 'x-request-id': 'fw-after' } })).json()
  await log.until(5)
  t.same(
    log.completed().map((l) => l.reqId),
    ['fw-gone', 'fw-after'],
  )
})

t.test('pipelined requests each get their own line with the right status', async (t) => {
  const log = capture()
  const { port } = await serve(t, appWith(log.logger))
  const r = await exchange(port, 'GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\nPOST /users HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n', {
    responses: 3,
  })
  t.same(
    r.responses.map((x) => x.status),
    [200, 404, 201],
  )
  await log.until(7)
  t.same(
    log
      .completed()
      .map((l) => [l.req!.url, l.res!.statusCode])
      .sort(),
    [
      ['/nowhere', 404],
      ['/users', 201],
      ['/users/1', 200],
    ],
  )
  t.equal(new Set(log.completed().map((l) => l.reqId)).size, 3, 'three ids')
})

t.test('requestIdHeader and genReqId are passed on; inject() is logged too', async (t) => {
  const log = capture()
  let n = 0
  const app = postern({ logger: log.logger, requestIdHeader: 'x-trace-id', genReqId: () => `req-${++n}` })
  app.get('/', (req) => req.id)
  t.equal((await app.inject({ url: '/', headers: { 'x-trace-id': 'abc' } })).body, 'abc')
  t.equal((await app.inject({ url: '/', headers: { 'x-request-id': 'ignored' } })).body, 'req-1')
  await log.until(2)
  t.same(
    log.completed().map((l) => l.reqId),
    ['abc', 'req-1'],
  )
})

t.test('app.log: the root logger; a pino instance is used as is, options make one', async (t) => {
  const log = capture()
  const app = postern({ logger: log.logger })
  t.equal(app.log, log.logger)
  app.log.info('starting')
  await log.until(1)
  t.match(log.lines[0], { msg: 'starting' })
  t.notOk('reqId' in log.lines[0]!)
  const child = postern({ logger: { level: 'warn' } })
  t.equal(child.log.level, 'warn')
  t.equal(postern({ logger: true }).log.level, 'info')
  t.throws(() => app.decorate('log', log.logger), /decorator "log" already exists/)
  const plugin = await app.register(async (scope) => {
    t.equal(scope.log, log.logger, 'a plugin scope sees the same logger')
  })
  t.ok(plugin)
})

t.test('without a logger: req.log and app.log write nothing and never throw; req.id still works', async (t) => {
  const app = postern()
  t.equal(app.log.level, 'silent')
  app.log.info('nothing')
  app.get('/', (req) => {
    req.log.info({ a: 1 }, 'nothing')
    req.log.error(new Error('nothing either'))
    const child = req.log.child({ more: true })
    child.warn('still nothing')
    return { id: req.id, again: req.id }
  })
  const { port, errors } = await serve(t, app)
  const plain = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as { id: string; again: string }
  t.match(plain.id, UUID)
  t.equal(plain.again, plain.id, 'the id is made once per request')
  const sent = (await (await fetch(`http://127.0.0.1:${port}/`, { headers: { 'x-request-id': 'given' } })).json()) as { id: string }
  t.equal(sent.id, 'given')
  const hostile = (await (await fetch(`http://127.0.0.1:${port}/`, { headers: { 'x-request-id': 'a'.repeat(500) } })).json()) as { id: string }
  t.match(hostile.id, UUID, 'an implausible id is replaced here too')
  t.same(errors, [])
})

t.test('logger: false is no logger', async (t) => {
  const app = postern({ logger: false })
  t.equal(app.log.level, 'silent')
  app.get('/', (req) => {
    req.log.info('x')
    return 'ok'
  })
  t.equal((await app.inject('/')).body, 'ok')
})

t.test('a bad logger setting is refused when the app is made', async (t) => {
  t.throws(() => postern({ logger: 'yes' as unknown as true }), { name: 'TypeError', message: /logger must be true, pino options or a pino logger, got string/ })
  t.throws(() => postern({ logger: true, requestIdHeader: 'bad header' }), { name: 'TypeError', message: /requestIdHeader must be a header name or false/ })
  t.throws(() => postern({ logger: { level: 'loud' } }), /loud/, 'pino refuses an unknown level')
})
