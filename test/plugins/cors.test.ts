/**
 * cors() on real sockets: on the bare server with no framework (postern's
 * server and node:http), and in the framework with `app.use(cors())`.
 * Preflights are answered without the app or route running, actual
 * requests reach the app and get the headers, a disallowed origin gets no
 * `Access-Control-Allow-*` header, `Vary: Origin` joins the app's own Vary.
 */
import t from 'tap'
import { cors, type CorsOptions } from '../../plugins/cors.js'
import { postern } from '../../lib/framework/app.js'
import type { Environ, GatewayApp } from '../../lib/gateway/spec.js'
import { header, headerCount, type RawResponse } from '../helpers/raw.js'
import { SERVERS, listen, rawRequest } from '../fixtures/proxy-client.js'

/** The app behind the middleware: counts the requests that reached it and echoes method and path. */
function countingApp(extraHeaders: Array<[string, string]> = []) {
  const reached: string[] = []
  const app: GatewayApp = (environ, startResponse) => {
    reached.push(`${environ.REQUEST_METHOD} ${environ.PATH_INFO}`)
    startResponse('200 OK', [['Content-Type', 'text/plain'], ...extraHeaders])
    return [`app ${environ.REQUEST_METHOD} ${environ.PATH_INFO}`]
  }
  return { app, reached }
}

/** One raw request with the given extra header lines. */
function request(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const lines = Object.entries(headers).map(([name, value]) => `\r\n${name}: ${value}`)
  return rawRequest({ port, head: `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}${lines.join('')}` })
}

function preflight(port: number, origin: string, method = 'PUT', path = '/things', requestHeaders?: string): Promise<RawResponse> {
  const headers: Record<string, string> = { Origin: origin, 'Access-Control-Request-Method': method }
  if (requestHeaders !== undefined) headers['Access-Control-Request-Headers'] = requestHeaders
  return request(port, 'OPTIONS', path, headers)
}

/** The Access-Control-* headers of a response, lower-cased names, for whole-set comparisons. */
function acHeaders(res: RawResponse): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of res.headers) if (name.toLowerCase().startsWith('access-control-')) out[name.toLowerCase()] = value
  return out
}

for (const kind of SERVERS) {
  t.test(`${kind}: the default (any origin) answers "*" and leaves requests without Origin untouched`, async (t) => {
    const { app, reached } = countingApp()
    const { port, errors } = await listen(t, kind, cors()(app))

    const actual = await request(port, 'GET', '/things', { Origin: 'https://site.example' })
    t.equal(actual.status, 200)
    t.equal(actual.body.toString(), 'app GET /things')
    t.same(acHeaders(actual), { 'access-control-allow-origin': '*' })
    t.equal(header(actual, 'vary'), undefined, 'the answer is the same for every origin: no Vary')

    const plain = await request(port, 'GET', '/things')
    t.same(acHeaders(plain), {}, 'no Origin: no CORS header')
    t.equal(header(plain, 'vary'), undefined)

    const pre = await preflight(port, 'https://site.example', 'PUT', '/things', 'content-type, x-token')
    t.equal(pre.status, 204)
    t.equal(pre.body.length, 0)
    t.equal(header(pre, 'content-length'), undefined, 'a 204 carries no Content-Length')
    t.same(acHeaders(pre), {
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'GET,HEAD,PUT,PATCH,POST,DELETE',
      'access-control-allow-headers': 'content-type, x-token',
    })
    t.equal(header(pre, 'vary'), 'Access-Control-Request-Headers', 'the reflected headers make the answer vary on the question')
    t.same(reached, ['GET /things', 'GET /things'], 'the preflight never reached the app')
    t.same(errors, [])
  })

  t.test(`${kind}: each kind of origin option allows what it names and nothing else`, async (t) => {
    const cases: Array<{ name: string; origin: CorsOptions['origin']; allowed: string[]; refused: string[] }> = [
      { name: 'one origin', origin: 'https://app.example', allowed: ['https://app.example'], refused: ['https://evil.example', 'http://app.example', 'https://app.example:8443'] },
      { name: 'one origin written with a slash and capitals', origin: 'HTTPS://App.Example/', allowed: ['https://app.example'], refused: ['https://app.example.evil'] },
      { name: 'a list', origin: ['https://a.example', 'http://localhost:5173'], allowed: ['https://a.example', 'http://localhost:5173'], refused: ['http://localhost:5174'] },
      { name: 'a RegExp', origin: /^https:\/\/[a-z]+\.example\.com$/, allowed: ['https://shop.example.com'], refused: ['https://example.com', 'https://shop.example.com.evil'] },
      { name: 'a global RegExp (no lastIndex state)', origin: /^https:\/\/g\.example$/g, allowed: ['https://g.example', 'https://g.example'], refused: ['https://h.example'] },
      {
        name: 'a list of strings and RegExps',
        origin: ['https://a.example', /\.b\.example$/],
        allowed: ['https://a.example', 'https://x.b.example'],
        refused: ['https://b.example'],
      },
      { name: 'a function', origin: (origin: string) => origin.endsWith('.trusted.example'), allowed: ['https://x.trusted.example'], refused: ['https://trusted.example.evil'] },
      {
        name: 'an async function',
        origin: async (origin: string) => origin === 'https://late.example',
        allowed: ['https://late.example'],
        refused: ['https://early.example'],
      },
      { name: 'true (reflect any)', origin: true, allowed: ['https://any.example', 'null'], refused: [] },
    ]
    for (const c of cases) {
      const { app, reached } = countingApp()
      const { port, errors } = await listen(t, kind, cors({ origin: c.origin })(app))
      for (const origin of c.allowed) {
        const res = await request(port, 'GET', '/x', { Origin: origin })
        t.equal(header(res, 'access-control-allow-origin'), origin, `${c.name}: ${origin} allowed, answered with itself`)
        t.equal(header(res, 'vary'), 'Origin', `${c.name}: Vary: Origin`)
        const pre = await preflight(port, origin)
        t.equal(pre.status, 204)
        t.equal(header(pre, 'access-control-allow-origin'), origin, `${c.name}: ${origin}'s preflight allowed`)
        t.equal(header(pre, 'access-control-allow-methods'), 'GET,HEAD,PUT,PATCH,POST,DELETE')
      }
      for (const origin of c.refused) {
        const res = await request(port, 'GET', '/x', { Origin: origin })
        t.equal(res.status, 200, `${c.name}: ${origin} still reaches the app (the browser keeps the answer from the page)`)
        t.same(acHeaders(res), {}, `${c.name}: ${origin} gets no Access-Control-* header`)
        t.equal(header(res, 'vary'), 'Origin', `${c.name}: the refusal varies by origin too`)
        const pre = await preflight(port, origin, 'DELETE')
        t.equal(pre.status, 204, `${c.name}: ${origin}'s preflight is answered`)
        t.same(acHeaders(pre), {}, `${c.name}: ${origin}'s preflight allows nothing`)
        t.match(header(pre, 'vary') ?? '', /^Origin\b/)
      }
      const plain = await request(port, 'GET', '/x')
      t.same(acHeaders(plain), {})
      t.equal(header(plain, 'vary'), 'Origin', `${c.name}: a response without Origin says it varies by Origin (so no cache reuses it for a CORS request)`)
      t.notOk(
        reached.some((r) => r.startsWith('OPTIONS')),
        `${c.name}: no preflight reached the app`,
      )
      t.same(errors, [])
    }
  })

  t.test(`${kind}: credentials never go with "*": origin: true echoes the origin, and the methods and headers asked for are answered`, async (t) => {
    const { app } = countingApp()
    const options: CorsOptions = { credentials: true, methods: '*', allowedHeaders: '*', exposedHeaders: ['X-Total', 'ETag'] }
    // The default origin '*' with credentials would let any site read a logged-in user's answers: refused at start-up.
    t.throws(() => cors(options), { name: 'TypeError', message: /`credentials: true` with `origin: "\*"`/ })
    const { port, errors } = await listen(t, kind, cors({ ...options, origin: true })(app))
    const res = await request(port, 'GET', '/me', { Origin: 'https://app.example', Cookie: 'sid=1' })
    t.same(acHeaders(res), {
      'access-control-allow-origin': 'https://app.example',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'X-Total, ETag',
    })
    t.equal(header(res, 'vary'), 'Origin', 'reflecting the origin makes the answer vary')

    const pre = await preflight(port, 'https://app.example', 'PURGE', '/me', 'x-custom, content-type')
    t.same(acHeaders(pre), {
      'access-control-allow-origin': 'https://app.example',
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'PURGE',
      'access-control-allow-headers': 'x-custom, content-type',
    })
    t.equal(header(pre, 'vary'), 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers')
    t.same(errors, [])
  })

  t.test(`${kind}: with credentials, an origin function that answers "*" refuses the origin instead of echoing it`, async (t) => {
    const { app, reached } = countingApp()
    const star = () => '*'
    const withCredentials = await listen(t, kind, cors({ origin: star, credentials: true })(app))
    for (const origin of ['https://evil.example', 'null']) {
      const res = await request(withCredentials.port, 'GET', '/me', { Origin: origin, Cookie: 'sid=1' })
      t.equal(res.status, 200, `${origin}: the app still answers (the browser keeps it from the page)`)
      t.same(acHeaders(res), {}, `${origin}: no Access-Control-* header, so no page can read a logged-in answer`)
      t.equal(header(res, 'vary'), 'Origin')
      const pre = await preflight(withCredentials.port, origin, 'DELETE', '/me')
      t.equal(pre.status, 204)
      t.same(acHeaders(pre), {}, `${origin}: its preflight allows nothing`)
    }
    const asyncStar = await listen(t, kind, cors({ origin: async () => '*', credentials: true })(app))
    const late = await request(asyncStar.port, 'GET', '/me', { Origin: 'https://evil.example' })
    t.same(acHeaders(late), {}, 'the same for an async function')

    const without = await listen(t, kind, cors({ origin: star })(app))
    const open = await request(without.port, 'GET', '/me', { Origin: 'https://any.example' })
    t.same(acHeaders(open), { 'access-control-allow-origin': '*' }, 'without credentials "*" is sent as it is')
    t.same(reached, ['GET /me', 'GET /me', 'GET /me', 'GET /me'])
    t.same([...withCredentials.errors, ...asyncStar.errors, ...without.errors], [])
  })

  t.test(`${kind}: configured methods, headers, max-age and status of the preflight answer`, async (t) => {
    const { app, reached } = countingApp()
    const options: CorsOptions = {
      origin: 'https://app.example',
      methods: ['GET', 'POST'],
      allowedHeaders: 'Content-Type,Authorization',
      maxAge: 600,
      optionsSuccessStatus: 200,
    }
    const { port, errors } = await listen(t, kind, cors(options)(app))
    const pre = await preflight(port, 'https://app.example', 'POST', '/login', 'authorization')
    t.equal(pre.status, 200)
    t.equal(header(pre, 'content-length'), '0', 'a 200 preflight answer is framed with an empty body (old clients wait for one)')
    t.same(acHeaders(pre), {
      'access-control-allow-origin': 'https://app.example',
      'access-control-allow-methods': 'GET,POST',
      'access-control-allow-headers': 'Content-Type, Authorization',
      'access-control-max-age': '600',
    })
    t.equal(header(pre, 'vary'), 'Origin', 'nothing reflected: only the origin varies')
    t.same(reached, [])
    t.same(errors, [])
  })

  t.test(`${kind}: the app's own Vary and CORS headers are kept, never doubled`, async (t) => {
    const { app } = countingApp([
      ['Vary', 'Accept-Language'],
      ['Access-Control-Expose-Headers', 'X-Mine'],
    ])
    const { port, errors } = await listen(t, kind, cors({ origin: ['https://app.example'], exposedHeaders: 'X-Theirs' })(app))
    const res = await request(port, 'GET', '/', { Origin: 'https://app.example' })
    t.equal(header(res, 'vary'), 'Accept-Language, Origin', 'Origin appended to the app\u2019s Vary')
    t.equal(headerCount(res, 'vary'), 1)
    t.equal(header(res, 'access-control-expose-headers'), 'X-Mine', 'the app\u2019s own header wins')
    t.equal(headerCount(res, 'access-control-expose-headers'), 1)
    const plain = await request(port, 'GET', '/')
    t.equal(header(plain, 'vary'), 'Accept-Language, Origin')

    const { app: starApp } = countingApp([['Vary', '*']])
    const star = await listen(t, kind, cors({ origin: true })(starApp))
    const res2 = await request(star.port, 'GET', '/', { Origin: 'https://app.example' })
    t.equal(header(res2, 'vary'), '*', 'Vary: * already covers Origin')

    const { app: ownApp } = countingApp([
      ['access-control-allow-origin', 'https://fixed.example'],
      ['vary', 'origin'],
    ])
    const own = await listen(t, kind, cors({ origin: true })(ownApp))
    const res3 = await request(own.port, 'GET', '/', { Origin: 'https://app.example' })
    t.equal(header(res3, 'access-control-allow-origin'), 'https://fixed.example')
    t.equal(headerCount(res3, 'access-control-allow-origin'), 1)
    t.equal(header(res3, 'vary'), 'origin', 'a Vary that lists origin in any case is left alone')
    t.same([...errors, ...star.errors, ...own.errors], [])
  })

  t.test(`${kind}: the same constant header list shared by every response is never changed`, async (t) => {
    const shared: Array<[string, string]> = [['Content-Type', 'text/plain']]
    Object.freeze(shared[0])
    const app: GatewayApp = (_environ, startResponse) => {
      startResponse('200 OK', Object.freeze(shared) as Array<[string, string]>)
      return ['ok']
    }
    const { port, errors } = await listen(t, kind, cors({ origin: /example$/ })(app))
    for (let i = 0; i < 3; i++) {
      const res = await request(port, 'GET', '/', { Origin: 'https://a.example' })
      t.equal(headerCount(res, 'access-control-allow-origin'), 1)
      t.equal(headerCount(res, 'vary'), 1)
    }
    t.same(shared, [['Content-Type', 'text/plain']])
    t.same(errors, [])
  })

  t.test(`${kind}: preflight: false passes preflights to the app; strictPreflight refuses OPTIONS with Origin but no method`, async (t) => {
    const { app, reached } = countingApp()
    const passing = await listen(t, kind, cors({ origin: 'https://app.example', preflight: false })(app))
    const res = await preflight(passing.port, 'https://app.example')
    t.equal(res.status, 200)
    t.equal(res.body.toString(), 'app OPTIONS /things', 'the app answered the preflight')
    t.equal(header(res, 'access-control-allow-origin'), 'https://app.example', 'with the CORS headers of any request')
    t.equal(header(res, 'access-control-allow-methods'), undefined)

    const strict = await listen(t, kind, cors({ strictPreflight: true })(app))
    const bad = await request(strict.port, 'OPTIONS', '/things', { Origin: 'https://app.example' })
    t.equal(bad.status, 400)
    t.match(bad.body.toString(), /Access-Control-Request-Method/, 'the message says what is missing')
    const noOrigin = await request(strict.port, 'OPTIONS', '/things')
    t.equal(noOrigin.status, 200, 'an OPTIONS without Origin is no CORS request: it reaches the app')

    const lenient = await listen(t, kind, cors()(app))
    const actualOptions = await request(lenient.port, 'OPTIONS', '/things', { Origin: 'https://app.example' })
    t.equal(actualOptions.status, 200, 'by default an OPTIONS with Origin and no method is an actual request')
    t.equal(header(actualOptions, 'access-control-allow-origin'), '*')
    t.same(reached, ['OPTIONS /things', 'OPTIONS /things', 'OPTIONS /things'])
    t.same([...passing.errors, ...strict.errors, ...lenient.errors], [])
  })

  t.test(`${kind}: odd Origin headers and a failing origin function never crash the server`, async (t) => {
    const { app } = countingApp()
    let calls = 0
    const thrower = (origin: string, environ: Environ) => {
      calls++
      if (origin === 'https://boom.example') throw new Error('origin check failed')
      if (origin === 'https://reject.example') return Promise.reject(new Error('lookup failed'))
      if (origin === 'https://wrong.example') return 42 as unknown as boolean
      return environ.PATH_INFO === '/open'
    }
    const { port, errors } = await listen(t, kind, cors({ origin: thrower })(app))
    const boom = await request(port, 'GET', '/open', { Origin: 'https://boom.example' })
    t.equal(boom.status, 500)
    const rejected = await request(port, 'GET', '/open', { Origin: 'https://reject.example' })
    t.equal(rejected.status, 500)
    const wrong = await request(port, 'GET', '/open', { Origin: 'https://wrong.example' })
    t.equal(wrong.status, 500)
    t.equal(errors.length, 3, 'each failure is logged')
    t.match(errors.join('\n'), /origin check failed[\s\S]*lookup failed[\s\S]*must return true, false or an origin string, got number/)

    const open = await request(port, 'GET', '/open', { Origin: 'https://ok.example' })
    t.equal(header(open, 'access-control-allow-origin'), 'https://ok.example', 'the function sees the environ')
    const closed = await request(port, 'GET', '/closed', { Origin: 'https://ok.example' })
    t.equal(header(closed, 'access-control-allow-origin'), undefined)

    const listed = await listen(t, kind, cors({ origin: ['https://a.example'] })(app))
    for (const origin of ['null', 'https://a.example, https://a.example', 'x'.repeat(4000), 'https://a.example/', '*', 'https://a.example.evil']) {
      const res = await request(listed.port, 'GET', '/', { Origin: origin })
      t.equal(res.status, 200, `Origin ${JSON.stringify(origin.slice(0, 40))} is answered`)
      t.same(acHeaders(res), {}, `Origin ${JSON.stringify(origin.slice(0, 40))} is not allowed`)
    }
    t.ok(calls >= 5)
    t.same(listed.errors, [])
  })
}

t.test('options are checked when cors() is called, with messages that say what is wrong', async (t) => {
  t.throws(() => cors({ origin: 'https://app.example/api' }), /origin "https:\/\/app\.example\/api" has a path or query; an origin is scheme:\/\/host\[:port\]/)
  t.throws(() => cors({ origin: 'app.example' }), /origin "app\.example" has no scheme/)
  t.throws(() => cors({ origin: 'https://user:pw@app.example' }), /holds credentials/)
  t.throws(() => cors({ origin: ['https://a.example', '*'] }), /"\*" in an `origin` list would allow every origin/)
  t.throws(() => cors({ origin: [] }), /`origin` list is empty; to turn CORS off use `origin: false`/)
  t.throws(() => cors({ origin: 42 as unknown as string }), /`origin` must be true, false, "\*", an origin, a RegExp/)
  t.throws(() => cors({ origin: ['https://a.example', 7 as unknown as string] }), /got number/)
  t.throws(() => cors({ methods: ['GET', 'P UT'] }), /"P UT" in `methods` is not a valid method/)
  t.throws(() => cors({ methods: [] }), /`methods` is empty/)
  t.throws(() => cors({ methods: 'GET,*' }), /"\*" in `methods` must stand alone/)
  t.throws(() => cors({ allowedHeaders: ['x-ok', 'bad header'] }), /"bad header" in `allowedHeaders` is not a valid header name/)
  t.throws(() => cors({ exposedHeaders: '*', credentials: true, origin: true }), /exposes nothing with credentials/)
  for (const options of [{ credentials: true }, { credentials: true, origin: '*' }] as CorsOptions[]) {
    t.throws(
      () => cors(options),
      { name: 'TypeError', message: /`credentials: true` with `origin: "\*"` would let every website read.*list the allowed origins.*RegExp.*function.*`origin: true`/ },
      `${JSON.stringify(options)} is refused with what to write instead`,
    )
  }
  t.doesNotThrow(() => cors({ credentials: true, origin: true }), 'origin: true echoes any origin, knowingly')
  t.doesNotThrow(() => cors({ credentials: true, origin: false }), 'CORS off: credentials do nothing')
  t.throws(() => cors({ maxAge: -1 }), /`maxAge` must be a whole number of seconds/)
  t.throws(() => cors({ maxAge: 1.5 }), /`maxAge` must be a whole number of seconds/)
  t.throws(() => cors({ optionsSuccessStatus: 404 }), /`optionsSuccessStatus` must be a 2xx status, got 404/)
  t.throws(() => cors({ credentials: 'yes' as unknown as boolean }), /`credentials` must be true or false/)
  t.throws(() => cors({ orgin: '*' } as CorsOptions), /unknown option "orgin"; known options are origin, credentials/)
  t.throws(() => cors(null as unknown as CorsOptions), /options must be an object/)
  t.doesNotThrow(() => cors({ origin: ['null', 'chrome-extension://abcdef', 'http://[::1]:3000', /x/] }))
  t.doesNotThrow(() => cors({ exposedHeaders: '*' }), '"*" is fine without credentials')

  const off = cors({ origin: false })
  const app: GatewayApp = (_e, s) => {
    s('200 OK', [])
    return []
  }
  t.equal(off(app), app, 'origin: false leaves the app as it is')
})

// ── In the framework ────────────────────────────────────────────────────────

t.test('framework: app.use(cors()) answers preflights before routing, even for a route that only has GET', async (t) => {
  const app = postern()
  const ran: string[] = []
  app.use(cors({ origin: ['https://app.example'], credentials: true, exposedHeaders: ['X-Count'] }))
  app.get('/items', (_req, reply) => {
    ran.push('GET /items')
    reply.header('x-count', '2')
    return [{ id: 1 }, { id: 2 }]
  })
  app.get('/greeting', (_req, reply) => {
    ran.push('GET /greeting')
    reply.header('vary', 'Accept-Language')
    return 'hello'
  })
  const { port } = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())

  const pre = await preflight(port, 'https://app.example', 'DELETE', '/items', 'content-type')
  t.equal(pre.status, 204, 'answered, not 405 (the route has only GET)')
  t.same(acHeaders(pre), {
    'access-control-allow-origin': 'https://app.example',
    'access-control-allow-credentials': 'true',
    'access-control-allow-methods': 'GET,HEAD,PUT,PATCH,POST,DELETE',
    'access-control-allow-headers': 'content-type',
  })
  const unknown = await preflight(port, 'https://app.example', 'POST', '/no/such/route')
  t.equal(unknown.status, 204, 'a preflight never reaches the router')
  const refused = await preflight(port, 'https://evil.example', 'DELETE', '/items')
  t.equal(refused.status, 204)
  t.same(acHeaders(refused), {}, 'a refused origin\u2019s preflight allows nothing')
  t.same(ran, [], 'no route ran for a preflight')

  const res = await fetch(`http://127.0.0.1:${port}/items`, { headers: { Origin: 'https://app.example' } })
  t.equal(res.status, 200)
  t.same(await res.json(), [{ id: 1 }, { id: 2 }])
  t.equal(res.headers.get('access-control-allow-origin'), 'https://app.example')
  t.equal(res.headers.get('access-control-allow-credentials'), 'true')
  t.equal(res.headers.get('access-control-expose-headers'), 'X-Count')
  t.equal(res.headers.get('vary'), 'Origin')

  const greeting = await fetch(`http://127.0.0.1:${port}/greeting`, { headers: { Origin: 'https://app.example' } })
  t.equal(await greeting.text(), 'hello')
  t.equal(greeting.headers.get('vary'), 'Accept-Language, Origin', 'Origin joins the route\u2019s own Vary')

  const missing = await fetch(`http://127.0.0.1:${port}/nope`, { headers: { Origin: 'https://app.example' } })
  t.equal(missing.status, 404)
  t.equal(missing.headers.get('access-control-allow-origin'), 'https://app.example', 'the automatic 404 carries CORS headers: the page can read it')
  await missing.arrayBuffer()

  const notAllowed = await fetch(`http://127.0.0.1:${port}/items`, { method: 'DELETE', headers: { Origin: 'https://app.example' } })
  t.equal(notAllowed.status, 405, 'an actual DELETE still gets the router\u2019s 405')
  t.equal(notAllowed.headers.get('access-control-allow-origin'), 'https://app.example')
  await notAllowed.arrayBuffer()

  const evil = await fetch(`http://127.0.0.1:${port}/items`, { headers: { Origin: 'https://evil.example' } })
  t.equal(evil.headers.get('access-control-allow-origin'), null)
  t.equal(evil.headers.get('access-control-allow-credentials'), null)
  await evil.arrayBuffer()
  t.same(ran, ['GET /items', 'GET /greeting', 'GET /items'])
})

t.test('framework: an async origin function and a registered route under a prefix', async (t) => {
  const app = postern()
  const allowedTenants = new Set(['https://tenant-a.example'])
  app.use(cors({ origin: async (origin) => allowedTenants.has(origin), maxAge: 60 }))
  await app.register(
    async (api) => {
      api.post('/orders', () => ({ created: true }))
    },
    { prefix: '/api' },
  )
  const { port } = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const pre = await preflight(port, 'https://tenant-a.example', 'POST', '/api/orders', 'content-type')
  t.equal(header(pre, 'access-control-allow-origin'), 'https://tenant-a.example')
  t.equal(header(pre, 'access-control-max-age'), '60')
  const res = await fetch(`http://127.0.0.1:${port}/api/orders`, {
    method: 'POST',
    headers: { Origin: 'https://tenant-a.example', 'content-type': 'application/json' },
    body: '{}',
  })
  t.same(await res.json(), { created: true })
  t.equal(res.headers.get('access-control-allow-origin'), 'https://tenant-a.example')
  const other = await preflight(port, 'https://tenant-b.example', 'POST', '/api/orders')
  t.same(acHeaders(other), {})
})

t.test('under validate(), neither the app nor the middleware breaks a rule of the interface', async (t) => {
  const { validate } = await import('../../lib/gateway/validate.js')
  const violations: string[] = []
  const { app } = countingApp([['Vary', 'Accept-Language']])
  const inner = validate(app, { onViolation: (v) => void violations.push(`app: ${v.message}`) })
  for (const options of [{}, { origin: ['https://a.example'], credentials: true }, { origin: async () => true }] as CorsOptions[]) {
    const checked = validate(cors(options)(inner), { onViolation: (v) => void violations.push(`cors: ${v.message}`) })
    const { port, errors } = await listen(t, 'postern', checked)
    await request(port, 'GET', '/', { Origin: 'https://a.example' })
    await request(port, 'GET', '/')
    await preflight(port, 'https://a.example', 'PUT', '/', 'x-a')
    await preflight(port, 'https://b.example')
    t.same(errors, [])
  }
  t.same(violations, [])
})
