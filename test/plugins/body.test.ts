import t from 'tap'
import type { Environ, GatewayApp } from '../../lib/gateway/spec.js'
import { inject } from '../../lib/gateway/inject.js'
import { BODY_KEY, QUERY_KEY, bodyParser, validation, parseQuery, requestHeaders, mediaType } from '../../plugins/body.js'
import { createRouter } from '../../plugins/router.js'
import { compose } from '../../plugins/chain.js'
import { json } from '../../plugins/json.js'

/** Answers with what the parsers left in the environ. */
const show: GatewayApp = json((environ: Environ) => ({ body: environ[BODY_KEY] ?? null, query: environ[QUERY_KEY] ?? null, params: environ['router.params'] ?? null }))

t.test('JSON bodies', async (t) => {
  const app = compose([bodyParser()], show)
  const r = await inject(app, { method: 'POST', body: '{"a":1,"b":[true]}', headers: { 'content-type': 'application/json; charset=utf-8' } })
  t.equal(r.status, 200)
  t.same(r.json(), { body: { a: 1, b: [true] }, query: null, params: null })
  const vendor = await inject(app, { method: 'POST', body: '{"x":2}', headers: { 'content-type': 'application/vnd.api+json' } })
  t.same(vendor.json<{ body: unknown }>().body, { x: 2 }, '+json types are JSON')
  const bad = await inject(app, { method: 'POST', body: '{"a":', headers: { 'content-type': 'application/json' } })
  t.equal(bad.status, 400)
  t.match(bad.body, /^Invalid JSON body/)
})

t.test('JSON bodies cannot poison prototypes', async (t) => {
  const app = compose([bodyParser()], show)
  for (const body of ['{"__proto__":{"polluted":true}}', '{"a":{"constructor":{"prototype":{"polluted":true}}}}']) {
    const r = await inject(app, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
    t.equal(r.status, 400, body)
    t.match(r.body, /forbidden prototype property/)
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('text and URL-encoded form bodies', async (t) => {
  const app = compose([bodyParser()], show)
  const text = await inject(app, { method: 'POST', body: 'héllo', headers: { 'content-type': 'text/plain;charset=utf-8' } })
  t.equal(text.json<{ body: unknown }>().body, 'héllo')
  const form = await inject(app, { method: 'POST', body: 'a=1&b=x+y&b=%C3%A9&__proto__=z', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  t.same(form.json<{ body: unknown }>().body, { a: '1', b: ['x y', 'é'], ['__proto__']: 'z' })
})

t.test('no body → undefined, whatever the type', async (t) => {
  const r = await inject(compose([bodyParser()], show), { method: 'GET' })
  t.equal(r.status, 200)
  t.same(r.json<{ body: unknown }>().body, null)
})

t.test('415 for an unsupported or missing Content-Type', async (t) => {
  const app = compose([bodyParser()], show)
  const xml = await inject(app, { method: 'POST', body: '<a/>', headers: { 'content-type': 'application/xml' } })
  t.equal(xml.status, 415)
  t.equal(xml.statusText, 'Unsupported Media Type')
  t.equal(xml.body, 'Unsupported Content-Type: application/xml')
  const none = await inject(app, { method: 'POST', body: 'x' })
  t.equal(none.status, 415)
  t.equal(none.body, 'Missing Content-Type for a request body')
})

t.test('extra parsers by media type', async (t) => {
  const app = compose([bodyParser({ parsers: { 'application/xml': (text) => ({ xml: text.length }) } })], show)
  const r = await inject(app, { method: 'POST', body: '<a/>', headers: { 'content-type': 'application/xml' } })
  t.same(r.json<{ body: unknown }>().body, { xml: 4 })
})

t.test('413 over the size limit', async (t) => {
  const app = compose([bodyParser({ limit: 8 })], show)
  const r = await inject(app, { method: 'POST', body: '"123456789"', headers: { 'content-type': 'application/json' } })
  t.equal(r.status, 413)
  t.equal(r.statusText, 'Content Too Large')
  const ok = await inject(app, { method: 'POST', body: '"123456"', headers: { 'content-type': 'application/json' } })
  t.equal(ok.status, 200)
})

t.test('validation of body, query, params and headers names the failing field', async (t) => {
  const router = createRouter()
  const check = validation({
    params: { type: 'object', properties: { id: { type: 'integer' } } },
    query: { type: 'object', properties: { limit: { type: 'integer', default: 10 } } },
    headers: { type: 'object', required: ['X-Api-Key'], properties: { 'X-Api-Key': { type: 'string', minLength: 3 } } },
    body: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } } },
  })
  router.post('/things/:id', compose([check], show))
  const good = { method: 'POST', url: '/things/5?limit=3', headers: { 'x-api-key': 'abc' }, body: { name: 'n', tags: ['a'] } }
  const ok = await inject(router, good)
  t.equal(ok.status, 200)
  t.same(ok.json(), { body: { name: 'n', tags: ['a'] }, query: { limit: 3 }, params: { id: 5 } }, 'query and params coerced to their schema types')
  const defaults = await inject(router, { ...good, url: '/things/5' })
  t.same(defaults.json<{ query: unknown }>().query, { limit: 10 }, 'defaults filled in')

  const cases: Array<[object, string]> = [
    [{ url: '/things/abc' }, 'params/id must be integer'],
    [{ url: '/things/5?limit=x' }, 'query/limit must be integer'],
    [{ headers: {} }, "headers must have required property 'x-api-key'"],
    [{ headers: { 'x-api-key': 'ab' } }, 'headers/x-api-key must NOT have fewer than 3 characters'],
    [{ body: { tags: ['a'] } }, "body must have required property 'name'"],
    [{ body: { name: 1 } }, 'body/name must be string'],
    [{ body: { name: 'n', tags: [1] } }, 'body/tags/0 must be string'],
  ]
  for (const [change, message] of cases) {
    const r = await inject(router, { ...good, ...change })
    t.equal(r.status, 400, message)
    t.equal(r.body, message)
  }
})

t.test('helpers: query, headers, media type', async (t) => {
  const q = parseQuery('a=1&a=2&b=%20c&d')
  t.same({ ...q }, { a: ['1', '2'], b: ' c', d: '' })
  t.equal(Object.getPrototypeOf(q), null)
  const environ = { CONTENT_TYPE: 'text/plain', CONTENT_LENGTH: '3', HTTP_X_FOO: 'bar', HTTP_ACCEPT: '*/*', OTHER: 'no' } as unknown as Environ
  t.same({ ...requestHeaders(environ) }, { 'content-type': 'text/plain', 'content-length': '3', 'x-foo': 'bar', accept: '*/*' })
  t.equal(mediaType(' Application/JSON ; charset=utf-8'), 'application/json')
})
