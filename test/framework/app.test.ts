import t from 'tap'
import { postern, type App, type ParamsOf, Request, Reply } from '../../lib/framework/app.js'
import { GatewayError, type Body, type Environ, type Middleware } from '../../lib/gateway/spec.js'
import { injectEnviron as buildEnviron } from '../../lib/gateway/inject.js'

/** Calls the app directly, as a server would, and returns what it gave back synchronously. */
function call(app: App, method: string, url: string) {
  const log: string[] = []
  let started: [string, unknown] | undefined
  const environ = buildEnviron({ method, url }, { write: (m) => void log.push(m), flush() {} })
  const result = app(environ, (status, headers) => {
    started = [status, headers]
    return () => {}
  })
  return { result, started, log }
}

t.test('the spec example', async (t) => {
  const app = postern()
  app.get('/hello', () => 'Hello, world!')
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
  const hello = await app.inject({ url: '/hello' })
  t.equal(hello.status, 200)
  t.equal(hello.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(hello.body, 'Hello, world!')
  const user = await app.inject('/users/42')
  t.equal(user.headers['content-type'], 'application/json; charset=utf-8')
  t.same(user.json(), { id: '42' })
  const created = await app.inject({ method: 'POST', url: '/items', body: { name: 'x', extra: true } })
  t.equal(created.status, 201)
  t.equal(created.body, '{"name":"x"}', 'the 201 schema serializes')
  const invalid = await app.inject({ method: 'POST', url: '/items', body: { name: 3 } })
  t.equal(invalid.status, 400)
  t.same(invalid.json(), { statusCode: 400, error: 'Bad Request', message: 'body/name must be string' })
})

t.test('a sync handler runs synchronously and returns a one-element array', async (t) => {
  const app = postern()
  app.get('/hello.json', () => ({ hello: 'world' }))
  app.get('/text', () => 'hi')
  const json = call(app, 'GET', '/hello.json')
  t.ok(Array.isArray(json.result), 'not a promise')
  t.same(json.result, ['{"hello":"world"}'])
  t.same(json.started, ['200 OK', [['content-type', 'application/json; charset=utf-8']]])
  t.same(call(app, 'GET', '/text').result, ['hi'])
  const hooked = postern()
  hooked.addHook('onRequest', (_req, reply) => void reply.header('x-sync', '1'))
  hooked.addHook('preHandler', () => {})
  hooked.get('/', () => 'sync')
  const withHooks = call(hooked, 'GET', '/')
  t.same(withHooks.result, ['sync'], 'sync hooks keep the path synchronous')
  t.same(withHooks.started, [
    '200 OK',
    [
      ['x-sync', '1'],
      ['content-type', 'text/plain; charset=utf-8'],
    ],
  ])
  const async = postern()
  async.get('/', async () => 'later')
  t.ok(call(async, 'GET', '/').result instanceof Promise, 'an async handler gives a promise')
})

t.test('every verb, all() and route()', async (t) => {
  const app = postern()
  for (const verb of ['get', 'post', 'put', 'patch', 'delete', 'options'] as const) app[verb]('/v', (req) => `${verb}:${req.method}`)
  app.head('/h', (_req, reply) => void reply.header('x-head', '1'))
  app.all('/any', (req) => req.method)
  app.route({ method: ['GET', 'POST'], url: '/r/:x', handler: (req) => req.params.x })
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) t.equal((await app.inject({ method, url: '/v' })).body, `${method.toLowerCase()}:${method}`)
  t.equal((await app.inject({ method: 'HEAD', url: '/h' })).headers['x-head'], '1')
  t.equal((await app.inject({ method: 'SEARCH', url: '/any' })).body, 'SEARCH')
  t.equal((await app.inject({ method: 'POST', url: '/r/7' })).body, '7')
  const head = await app.inject({ method: 'HEAD', url: '/v' })
  t.equal(head.status, 200, 'HEAD served by the GET route')
  t.equal(head.body, '')
  const r = await app.inject({ method: 'DELETE', url: '/r/1' })
  t.equal(r.status, 405)
  t.equal(r.headers.allow, 'GET, POST, HEAD, OPTIONS')
  t.same(r.json(), { statusCode: 405, error: 'Method Not Allowed', message: 'Method DELETE not allowed for /r/1' })
  const options = await app.inject({ method: 'OPTIONS', url: '/r/1' })
  t.equal(options.status, 204)
  t.equal(options.headers.allow, 'GET, POST, HEAD, OPTIONS')
  t.match(app.printRoutes(), /GET,POST \/r\/:x/)
})

t.test('req is a lazy view over the environ', async (t) => {
  const app = postern()
  app.post('/echo/:a', async (req) => ({
    method: req.method,
    path: req.path,
    url: req.url,
    params: req.params,
    query: req.query,
    ua: req.header('User-Agent'),
    type: req.header('content-type'),
    headers: req.headers,
    route: req.route?.path,
    body: await req.text(),
    again: await req.text(),
    scheme: req.environ['gateway.url_scheme'],
  }))
  app.post('/bytes', async (req) => (await req.bytes()).length)
  app.post('/form', async (req) => req.form())
  const r = await app.inject({ method: 'POST', url: '/echo/x%20y?q=1&q=2&z=%C3%A9', headers: { 'user-agent': 'tap', 'content-type': 'text/plain' }, body: 'payload' })
  t.same(r.json(), {
    method: 'POST',
    path: '/echo/x y',
    url: '/echo/x%20y?q=1&q=2&z=%C3%A9',
    params: { a: 'x y' },
    query: { q: ['1', '2'], z: 'é' },
    ua: 'tap',
    type: 'text/plain',
    headers: { 'content-type': 'text/plain', 'content-length': '7', host: 'localhost', 'user-agent': 'tap' },
    route: '/echo/:a',
    body: 'payload',
    again: 'payload',
    scheme: 'http',
  })
  t.equal((await app.inject({ method: 'POST', url: '/bytes', body: 'abc' })).body, '3')
  t.same((await app.inject({ method: 'POST', url: '/form', body: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).json(), { a: '1' })
})

t.test('req.json() is prototype-poisoning safe and bounded by bodyLimit', async (t) => {
  const app = postern({ bodyLimit: 32 })
  app.post('/j', async (req) => req.json())
  app.post('/big', { bodyLimit: 4 }, async (req) => req.text())
  const poisoned = await app.inject({ method: 'POST', url: '/j', body: '{"__proto__":{"x":1}}', headers: { 'content-type': 'application/json' } })
  t.equal(poisoned.status, 400)
  t.match(poisoned.json<{ message: string }>().message, /forbidden prototype property/)
  t.equal((await app.inject({ method: 'POST', url: '/j', body: '"0123456789012345678901234567890123456789"' })).status, 413, 'app-wide limit')
  t.equal((await app.inject({ method: 'POST', url: '/big', body: 'hello' })).status, 413, 'route limit')
})

t.test('reply: status, headers, type, redirect; bad headers fail the request', async (t) => {
  const app = postern()
  app.get('/h', (_req, reply) => {
    reply.status(202).header('x-a', '1').header('set-cookie', 'a=1').header('set-cookie', 'b=2').header('x-n', 5)
    return { ok: true }
  })
  app.get('/type', (_req, reply) => {
    reply.type('text/html; charset=utf-8')
    return '<b>hi</b>'
  })
  app.get('/go', (_req, reply) => void reply.redirect('/there', 301))
  app.get('/bad', (_req, reply) => {
    reply.header('x-evil', 'a\r\nset-cookie: owned=1')
    return 'no'
  })
  app.get('/hop', (_req, reply) => {
    reply.header('Connection', 'close')
    return 'no'
  })
  app.get('/status', (_req, reply) => {
    reply.status(1000)
  })
  const h = await app.inject('/h')
  t.equal(h.status, 202)
  t.same(h.rawHeaders, [
    ['x-a', '1'],
    ['set-cookie', 'a=1'],
    ['set-cookie', 'b=2'],
    ['x-n', '5'],
    ['content-type', 'application/json; charset=utf-8'],
  ])
  const type = await app.inject('/type')
  t.same(type.rawHeaders, [['content-type', 'text/html; charset=utf-8']], 'our Content-Type is not added when one was set')
  const go = await app.inject('/go')
  t.equal(go.status, 301)
  t.equal(go.headers.location, '/there')
  for (const url of ['/bad', '/hop', '/status']) {
    const r = await app.inject(url)
    t.equal(r.status, 500, url)
    t.notMatch(r.body, /owned|Connection|1000/)
    t.notOk(r.headers['x-evil'])
  }
})

t.test('undefined → 204; a promise of undefined too', async (t) => {
  const app = postern()
  app.delete('/x', () => undefined)
  app.put('/y', async () => {})
  for (const [method, url] of [
    ['DELETE', '/x'],
    ['PUT', '/y'],
  ] as const) {
    const r = await app.inject({ method, url })
    t.equal(r.status, 204)
    t.same(r.rawHeaders, [])
  }
})

t.test('middleware: onion order, sees 404s at the root, per route', async (t) => {
  const seen: string[] = []
  const tag =
    (name: string): Middleware =>
    (inner) =>
    (environ, startResponse) => {
      seen.push(name)
      return inner(environ, (status, headers, error) => startResponse(status, [...headers, ['x-mw', name]], error))
    }
  const app = postern()
  app.use(tag('a'), tag('b'))
  app.use(tag('c'))
  app.get('/', () => 'root')
  app.get('/only', { middleware: [tag('route')] }, () => 'only')
  const r = await app.inject('/')
  t.same(seen, ['a', 'b', 'c'])
  t.same(
    r.rawHeaders.filter(([n]) => n === 'x-mw').map(([, v]) => v),
    ['c', 'b', 'a'],
    'innermost adds first',
  )
  seen.length = 0
  await app.inject('/only')
  t.same(seen, ['a', 'b', 'c', 'route'])
  seen.length = 0
  const missing = await app.inject('/missing')
  t.equal(missing.status, 404)
  t.same(seen, ['a', 'b', 'c'], 'root middleware wraps the not-found answer too')
})

t.test('register: prefix, order, encapsulation', async (t) => {
  // decorate() returns the app typed with the decoration, so the plugin's scope sees `version` too.
  const app = postern().decorate('version', '1.0')
  const order: string[] = []
  app.addHook('onRequest', (req) => void order.push(`root:${req.path}`))
  await app.register(
    async function users(scope, opts) {
      t.equal(scope.prefix, '/api')
      t.equal(opts.greeting, 'hi')
      t.equal(scope.version, '1.0', 'a child sees the parent decorators')
      scope.decorate('secret', 42)
      scope.decorateRequest('user', 'ann')
      scope.use((inner) => (e, s) => inner(e, (st, h, err) => s(st, [...h, ['x-scope', 'users']], err)))
      scope.addHook('onRequest', (req) => void order.push(`users:${req.path}`))
      scope.get('/', () => 'api root')
      scope.get('/me', (req) => ({ user: (req as Request & { user: string }).user, greeting: opts.greeting }))
      await scope.register(
        async (inner) => {
          inner.get('/deep', () => inner.prefix)
        },
        { prefix: 'v2/' },
      )
    },
    { prefix: '/api', greeting: 'hi' },
  )
  app.get('/outside', (req) => ({ user: (req as Request & { user?: string }).user ?? null }))
  // @ts-expect-error a child's decorator is not on the parent's type either
  t.equal(app.secret, undefined, "a child's decorators stay in it")
  t.equal(app.hasDecorator('secret'), false)
  const me = await app.inject('/api/me')
  t.same(me.json(), { user: 'ann', greeting: 'hi' })
  t.equal(me.headers['x-scope'], 'users')
  t.equal((await app.inject('/api')).body, 'api root')
  t.equal((await app.inject('/api/')).body, 'api root')
  t.equal((await app.inject('/api/v2/deep')).body, '/api/v2')
  const outside = await app.inject('/outside')
  t.same(outside.json(), { user: null }, "request decorators don't leak out")
  t.equal(outside.headers['x-scope'], undefined, "middleware doesn't leak out")
  t.same(order, ['root:/api/me', 'users:/api/me', 'root:/api', 'users:/api', 'root:/api/', 'users:/api/', 'root:/api/v2/deep', 'users:/api/v2/deep', 'root:/outside'])
})

t.test('plugins load in order, awaited or not', async (t) => {
  const app = postern()
  const loaded: string[] = []
  const slow = async function slow() {
    await new Promise((resolve) => setTimeout(resolve, 20))
    loaded.push('slow')
  }
  const fast = function fast() {
    loaded.push('fast')
  }
  void app.register(slow)
  void app.register(fast)
  await app.ready()
  t.same(loaded, ['slow', 'fast'])
})

t.test('start-up errors name the plugin that failed', async (t) => {
  const app = postern()
  await t.rejects(
    app.register(async function database() {
      throw new Error('connection refused')
    }),
    { name: 'PluginError', plugin: 'database', message: 'postern: plugin "database" failed to load: connection refused' },
  )
  await t.rejects(
    app.register(async function outer(scope) {
      await scope.register(function inner(s) {
        s.get('/bad', { schema: { response: { 200: { type: 'nonsense' } } } }, () => 1)
      })
    }),
    { plugin: 'inner', message: /plugin "inner" failed to load/ },
  )
  app.get('/still', () => 'up')
  t.equal((await app.inject('/still')).body, 'up', 'the app keeps working')
})

t.test('duplicate or malformed routes fail when added, naming the route', async (t) => {
  const app = postern()
  app.get('/a', () => 'a')
  t.throws(() => app.get('/a', () => 'again'), { message: /^postern: cannot add route GET \/a: / })
  t.throws(() => app.get('/b/:x?/c', () => 'b'), { message: /cannot add route GET \/b\/:x\?\/c/ })
  t.throws(() => app.get('nope', () => 'x'), { message: /must start with '\/'/ })
  app.post('/a', () => 'post is fine')
  t.equal((await app.inject('/a')).body, 'a', 'the app still serves')
  t.equal((await app.inject({ method: 'POST', url: '/a' })).body, 'post is fine')
})

t.test('hooks: onRequest, preHandler, onSend, onResponse, onError', async (t) => {
  const app = postern()
  const calls: string[] = []
  let timing = -1
  app.addHook('onRequest', (req) => void calls.push(`onRequest ${req.path}`))
  app.addHook('preHandler', async () => void calls.push('preHandler'))
  app.addHook('onSend', (_req, reply, payload) => {
    calls.push('onSend')
    reply.header('x-len', String(typeof payload === 'string' ? payload.length : -1))
    return typeof payload === 'string' ? payload.replace('world', 'there') : payload
  })
  app.addHook('onResponse', (_req, reply) => {
    calls.push(`onResponse ${reply.statusCode}`)
    timing = reply.elapsedTime
  })
  app.addHook('onError', (_req, _reply, error) => void calls.push(`onError ${(error as Error).message}`))
  app.get('/hi', () => {
    calls.push('handler')
    return 'hello world'
  })
  app.get('/fail', () => {
    throw new GatewayError(418, 'teapot')
  })
  const r = await app.inject('/hi')
  t.equal(r.body, 'hello there', 'onSend replaced the payload')
  t.equal(r.headers['x-len'], '11')
  t.same(calls, ['onRequest /hi', 'preHandler', 'handler', 'onSend', 'onResponse 200'])
  t.ok(timing >= 0, 'onResponse sees the elapsed time')
  calls.length = 0
  const f = await app.inject('/fail')
  t.equal(f.status, 418)
  t.same(calls, ['onRequest /fail', 'preHandler', 'onError teapot', 'onSend', 'onResponse 418'])
})

t.test('onResponse runs after the body is closed (after the last byte)', async (t) => {
  const app = postern()
  const events: string[] = []
  app.addHook('onResponse', () => void events.push('onResponse'))
  app.get('/stream', () =>
    (async function* () {
      events.push('first chunk')
      yield 'a'
      events.push('last chunk')
      yield 'b'
    })(),
  )
  const r = await app.inject('/stream')
  t.equal(r.body, 'ab')
  t.same(events, ['first chunk', 'last chunk', 'onResponse'])
  const { result } = call(app, 'GET', '/stream')
  // a stream is primed (its first chunk pulled) before the response starts, so the body comes as a promise
  t.type(((await result) as Body).close, 'function')
})

t.test('a hook can answer early with reply.send', async (t) => {
  const app = postern()
  let handlerRan = false
  app.addHook('onRequest', (req, reply) => {
    if (req.header('authorization') === undefined) reply.status(401).send({ error: 'login' })
  })
  app.get('/', () => {
    handlerRan = true
    return 'secret'
  })
  const r = await app.inject('/')
  t.equal(r.status, 401)
  t.same(r.json(), { error: 'login' })
  t.equal(handlerRan, false)
  t.equal((await app.inject({ url: '/', headers: { authorization: 'x' } })).body, 'secret')
})

t.test('route-level hooks', async (t) => {
  const app = postern()
  app.get('/', { preHandler: (_req, reply) => void reply.header('x-pre', '1'), onSend: () => 'replaced' }, () => 'original')
  const r = await app.inject('/')
  t.equal(r.headers['x-pre'], '1')
  t.equal(r.body, 'replaced')
})

t.test('errors: status errors answer with it; others are 500 without the message', async (t) => {
  const app = postern()
  app.get('/gw', () => {
    throw new GatewayError(409, 'already there')
  })
  app.get('/code', async () => {
    throw Object.assign(new Error('slow down'), { statusCode: 429 })
  })
  app.get('/hidden', () => {
    throw new GatewayError(503, 'db at 10.0.0.1 down')
  })
  app.get('/plain', () => {
    throw new Error('secret internals')
  })
  app.get('/weird', () => {
    throw Object.assign(new Error('not a status'), { status: 200 })
  })
  t.same((await app.inject('/gw')).json(), { statusCode: 409, error: 'Conflict', message: 'already there' })
  t.same((await app.inject('/code')).json(), { statusCode: 429, error: 'Too Many Requests', message: 'slow down' })
  const hidden = await app.inject('/hidden')
  t.equal(hidden.status, 503)
  t.same(hidden.json(), { statusCode: 503, error: 'Service Unavailable', message: 'Service Unavailable' })
  const plain = await app.inject('/plain')
  t.equal(plain.status, 500)
  t.same(plain.json(), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' })
  t.match(plain.errors.join('\n'), /secret internals/, 'the 500 is reported to gateway.errors')
  t.equal((await app.inject('/weird')).status, 500)
})

t.test('custom error handler per scope; one that throws falls back to the default', async (t) => {
  const app = postern()
  app.setErrorHandler((error, _req, reply) => {
    reply.header('x-handled', 'root')
    return `root handled ${(error as Error).message} with ${reply.statusCode}`
  })
  app.get('/a', () => {
    throw new GatewayError(400, 'bad a')
  })
  await app.register(async (scope) => {
    scope.setErrorHandler(async (_error, _req, reply) => {
      reply.status(422)
      return { scoped: true }
    })
    scope.get('/b', () => {
      throw new Error('b')
    })
  })
  await app.register(async (scope) => {
    scope.setErrorHandler(() => {
      throw new Error('handler broke')
    })
    scope.get('/c', () => {
      throw new GatewayError(404, 'no c')
    })
  })
  const a = await app.inject('/a')
  t.equal(a.status, 400)
  t.equal(a.body, 'root handled bad a with 400')
  t.equal(a.headers['x-handled'], 'root')
  const b = await app.inject('/b')
  t.equal(b.status, 422)
  t.same(b.json(), { scoped: true })
  const c = await app.inject('/c')
  t.equal(c.status, 500)
  t.same(c.json(), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' })
})

t.test('not-found handler per scope (by prefix); default is a JSON 404', async (t) => {
  const app = postern()
  app.get('/x', () => 'x')
  await app.register(
    async (scope) => {
      scope.setNotFoundHandler((req, reply) => {
        reply.status(404)
        return { api: true, path: req.path }
      })
      scope.get('/y', () => 'y')
    },
    { prefix: '/api' },
  )
  const root = await app.inject('/nothing')
  t.equal(root.status, 404)
  t.same(root.json(), { statusCode: 404, error: 'Not Found', message: 'Route GET /nothing not found' })
  const api = await app.inject('/api/nothing')
  t.equal(api.status, 404)
  t.same(api.json(), { api: true, path: '/api/nothing' })
  t.equal((await app.inject('/apix')).json<{ message: string }>().message, 'Route GET /apix not found', 'prefix match is by path segment')
})

t.test('schemas: query, params and headers are validated and coerced', async (t) => {
  const app = postern()
  app.get(
    '/items/:id',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } },
        query: { type: 'object', properties: { full: { type: 'boolean', default: false } } },
        headers: { type: 'object', required: ['x-tenant'], properties: { 'x-tenant': { type: 'string' } } },
        response: { 200: { type: 'object', properties: { id: { type: 'integer' }, full: { type: 'boolean' }, tenant: { type: 'string' } } } },
      },
    },
    (req) => ({ id: req.params.id, full: req.query.full, tenant: req.header('x-tenant'), dropped: 'yes' }),
  )
  const ok = await app.inject({ url: '/items/3?full=true', headers: { 'x-tenant': 't1' } })
  t.equal(ok.body, '{"id":3,"full":true,"tenant":"t1"}')
  const bad = await app.inject({ url: '/items/0', headers: { 'x-tenant': 't1' } })
  t.equal(bad.status, 400)
  t.equal(bad.json<{ message: string }>().message, 'params/id must be >= 1')
  t.equal((await app.inject('/items/3')).json<{ message: string }>().message, "headers must have required property 'x-tenant'")
})

t.test('a response format (HTML) added in a scope', async (t) => {
  class Html {
    constructor(readonly source: string) {}
  }
  const app = postern()
  await app.register(async (scope) => {
    scope.addResponseFormat({ name: 'html', accepts: (v) => v instanceof Html, serialize: (v) => ({ type: 'text/html; charset=utf-8', payload: (v as Html).source }) })
    scope.get('/page', () => new Html('<h1>hi</h1>'))
  })
  app.get('/outside', () => new Html('<h1>x</h1>'))
  const page = await app.inject('/page')
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(page.body, '<h1>hi</h1>')
  const outside = await app.inject('/outside')
  t.equal(outside.headers['content-type'], 'application/json; charset=utf-8', 'the format stays in its scope')
  t.equal(outside.body, '{"source":"<h1>x</h1>"}')
})

t.test('addResponsePlugin, the old name of addResponseFormat, still works (deprecated)', async (t) => {
  const app = postern()
  app.addResponsePlugin({ name: 'upper', accepts: (v) => typeof v === 'string', serialize: (v) => ({ type: 'text/x-upper', payload: (v as string).toUpperCase() }) })
  app.get('/', () => 'hi')
  const r = await app.inject('/')
  t.equal(r.headers['content-type'], 'text/x-upper')
  t.equal(r.body, 'HI')
})

t.test('routes added after the first request are served', async (t) => {
  const app = postern()
  app.get('/a', () => 'a')
  t.equal((await app.inject('/a')).body, 'a')
  app.get('/b', () => 'b')
  t.equal((await app.inject('/b')).body, 'b')
  const environ: Environ = buildEnviron({ url: '/b' }, { write() {}, flush() {} })
  t.same(
    app(environ, () => () => {}),
    ['b'],
  )
})

t.test('the request and reply classes are exported for decorators', async (t) => {
  t.type(Request, 'function')
  t.type(Reply, 'function')
})

t.test('listen() serves on postern’s server; close() stops it and runs onClose', async (t) => {
  const app = postern()
  const closed: string[] = []
  app.addHook('onClose', () => void closed.push('first'))
  app.addHook('onClose', async () => void closed.push('second'))
  app.get('/hello', () => ({ hello: 'world' }))
  const { port, address } = await app.listen({ port: 0, host: '127.0.0.1' })
  t.equal(address, '127.0.0.1')
  const res = await fetch(`http://127.0.0.1:${port}/hello`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'application/json; charset=utf-8')
  t.equal(res.headers.get('content-length'), '17')
  t.same(await res.json(), { hello: 'world' })
  await t.rejects(app.listen({ port: 0 }), /already listening/)
  await app.close()
  t.same(closed, ['second', 'first'], 'onClose hooks run, last added first')
  await t.rejects(fetch(`http://127.0.0.1:${port}/hello`), 'no longer listening')
})

// Compile-time checks: params are typed from the path.
const typed = postern()
typed.get('/users/:id/posts/:postId', (req) => {
  const id: string = req.params.id
  const post: string = req.params.postId
  // @ts-expect-error not a param of this path
  void req.params.nope
  return id + post
})
typed.get('/files/*', (req) => req.params['*'])
typed.get('/range/:from-:to', (req) => req.params.from + req.params.to)
typed.get('/n/:id(^\\d+)', (req) => req.params.id)
typed.post<'/things', { name: string }>('/things', { schema: { body: { type: 'object' } } }, (req) => req.body.name)
const p: ParamsOf<'/a/:b/:c?'> = { b: 'x' }
void p
