/**
 * The framework and its plugins over real sockets on postern's server, each
 * app wrapped in validate() so every exchange is also checked against the
 * gateway interface (any violation fails the test).
 */
import t from 'tap'
import { postern } from '../../lib/framework/app.js'
import { GatewayError, type GatewayApp } from '../../lib/gateway/spec.js'
import { validate, type GatewayViolation } from '../../lib/gateway/validate.js'
import { createRouter } from '../../plugins/router.js'
import { compose } from '../../plugins/chain.js'
import { json } from '../../plugins/json.js'
import { text } from '../../plugins/text.js'
import { bodyParser, BODY_KEY } from '../../plugins/body.js'
import { serve, type Teardown } from '../helpers/server.js'
import { header } from '../helpers/raw.js'

/** Serves `app` wrapped in validate(); violations are collected and must stay empty. */
async function serveValidated(t: Teardown, app: GatewayApp) {
  const violations: string[] = []
  const served = await serve(t, validate(app, { onViolation: (v: GatewayViolation) => void violations.push(v.message) }))
  return { ...served, base: `http://127.0.0.1:${served.port}`, violations }
}

function frameworkApp() {
  const app = postern()
  app.get('/hello', () => 'Hello, world!')
  app.get('/hello.json', () => ({ hello: 'world' }))
  app.get('/users/:id', (req) => ({ id: req.params.id }))
  app.post(
    '/items',
    {
      schema: {
        body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
        response: { 201: { type: 'object', properties: { name: { type: 'string' } } } },
      },
    },
    async (req, reply) => {
      const item = await req.json()
      reply.status(201)
      return item
    },
  )
  app.get('/stream', () =>
    (async function* () {
      yield 'one,'
      yield 'two'
    })(),
  )
  app.get('/nothing', () => undefined)
  app.get('/teapot', () => {
    throw new GatewayError(418, 'short and stout')
  })
  app.get('/crash', () => {
    throw new Error('internal detail')
  })
  return app
}

t.test('framework app over a real socket', async (t) => {
  const app = frameworkApp()
  const responses: number[] = []
  app.addHook('onResponse', (_req, reply) => void responses.push(reply.statusCode))
  await app.ready()
  const { base, exchange, errors, violations } = await serveValidated(t, app)

  const hello = await fetch(`${base}/hello`)
  t.equal(hello.status, 200)
  t.equal(hello.headers.get('content-type'), 'text/plain; charset=utf-8')
  t.equal(hello.headers.get('content-length'), '13')
  t.equal(await hello.text(), 'Hello, world!')

  const j = await fetch(`${base}/hello.json`)
  t.equal(j.headers.get('content-type'), 'application/json; charset=utf-8')
  t.same(await j.json(), { hello: 'world' })

  t.same(await (await fetch(`${base}/users/a%20b`)).json(), { id: 'a b' })

  const created = await fetch(`${base}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'pen', price: 3 }) })
  t.equal(created.status, 201)
  t.equal(await created.text(), '{"name":"pen"}')

  const invalid = await fetch(`${base}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":1}' })
  t.equal(invalid.status, 400)
  t.same(await invalid.json(), { statusCode: 400, error: 'Bad Request', message: 'body/name must be string' })

  const poisoned = await fetch(`${base}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"x","__proto__":{"admin":true}}' })
  t.equal(poisoned.status, 400)

  const unsupported = await fetch(`${base}/items`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<x/>' })
  t.equal(unsupported.status, 415)

  const stream = await fetch(`${base}/stream`)
  t.equal(stream.headers.get('transfer-encoding'), 'chunked')
  t.equal(await stream.text(), 'one,two')

  const nothing = await fetch(`${base}/nothing`)
  t.equal(nothing.status, 204)
  t.equal(await nothing.text(), '')

  const teapot = await fetch(`${base}/teapot`)
  t.equal(teapot.status, 418)
  t.same(await teapot.json(), { statusCode: 418, error: "I'm a Teapot", message: 'short and stout' })

  const crash = await fetch(`${base}/crash`)
  t.equal(crash.status, 500)
  const crashBody = await crash.text()
  t.notMatch(crashBody, /internal detail/)
  t.match(errors.join('\n'), /internal detail/, 'the error went to gateway.errors')

  const missing = await fetch(`${base}/missing`)
  t.equal(missing.status, 404)
  t.same(await missing.json(), { statusCode: 404, error: 'Not Found', message: 'Route GET /missing not found' })

  const wrongMethod = await fetch(`${base}/hello`, { method: 'DELETE' })
  t.equal(wrongMethod.status, 405)
  t.equal(wrongMethod.headers.get('allow'), 'GET, HEAD, OPTIONS')
  await wrongMethod.text()

  // Raw bytes: HEAD has the GET route's headers and no body; OPTIONS answers 204 + Allow.
  const head = await exchange('HEAD /hello.json HTTP/1.1\r\nHost: x\r\n\r\n', { methods: ['HEAD'] })
  const headRes = head.responses[0]!
  t.equal(headRes.status, 200)
  t.equal(header(headRes, 'content-type'), 'application/json; charset=utf-8')
  t.equal(headRes.body.length, 0)
  const options = await exchange('OPTIONS /users/1 HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(options.responses[0]!.status, 204)
  t.equal(header(options.responses[0]!, 'allow'), 'GET, HEAD, OPTIONS')

  // Pipelined: two requests in one write, answered in order.
  const piped = await exchange('GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /users/9 HTTP/1.1\r\nHost: x\r\n\r\n', { responses: 2 })
  t.equal(piped.responses[0]!.body.toString(), 'Hello, world!')
  t.equal(piped.responses[0]!.framing, 'length', 'a sync array body gets a Content-Length')
  t.equal(piped.responses[1]!.body.toString(), '{"id":"9"}')
  t.ok(responses.length >= 15, 'onResponse ran for the responses')
  t.same(violations, [], 'no gateway violations')
})

t.test('plugins, prefixes and middleware over a real socket', async (t) => {
  const app = postern()
  app.use((inner) => (environ, startResponse) => inner(environ, (s, h, e) => startResponse(s, [...h, ['x-root', '1']], e)))
  await app.register(
    async function api(scope) {
      scope.addHook('preHandler', (req, reply) => {
        if (req.header('x-key') !== 'k') reply.status(401).send({ error: 'key' })
      })
      scope.get('/things/:id', (req) => ({ thing: req.params.id }))
    },
    { prefix: '/api' },
  )
  app.get('/open', () => 'open')
  const { base, violations } = await serveValidated(t, app)
  const denied = await fetch(`${base}/api/things/1`)
  t.equal(denied.status, 401)
  t.equal(denied.headers.get('x-root'), '1')
  t.same(await denied.json(), { error: 'key' })
  const ok = await fetch(`${base}/api/things/1`, { headers: { 'x-key': 'k' } })
  t.same(await ok.json(), { thing: '1' })
  const open = await fetch(`${base}/open`)
  t.equal(await open.text(), 'open', "the api's hook stays in its scope")
  t.same(violations, [], 'no gateway violations')
})

t.test('router + json/text + body parser in a bare gateway stack', async (t) => {
  const router = createRouter()
  router.get(
    '/hello',
    text(() => 'hi'),
  )
  router.get(
    '/users/:id',
    json((environ) => ({ id: (environ['router.params'] as Record<string, string>).id })),
  )
  router.post(
    '/echo',
    compose(
      [bodyParser({ limit: 64 })],
      json((environ) => ({ got: environ[BODY_KEY] })),
    ),
  )
  const { base, violations } = await serveValidated(t, router)
  t.equal(await (await fetch(`${base}/hello`)).text(), 'hi')
  t.same(await (await fetch(`${base}/users/5`)).json(), { id: '5' })
  const echo = await fetch(`${base}/echo`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&a=2' })
  t.same(await echo.json(), { got: { a: ['1', '2'] } })
  const tooBig = await fetch(`${base}/echo`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(100) })
  t.equal(tooBig.status, 413)
  await tooBig.text()
  const missing = await fetch(`${base}/nope`)
  t.equal(missing.status, 404)
  t.equal(await missing.text(), 'Not Found')
  t.same(violations, [], 'no gateway violations')
})
