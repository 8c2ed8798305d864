import t from 'tap'
import { GatewayError, type GatewayApp } from '../../lib/gateway/spec.js'
import { inject } from '../../lib/gateway/inject.js'
import { json, compileSerializers, JSON_TYPE, defaultFormats, defaultPlugins, jsonFormat, jsonPlugin } from '../../plugins/json.js'
import { text, isStream, bytesFormat, bytesPlugin, streamFormat, streamPlugin, textFormat, textFormats, textPlugin, textPlugins } from '../../plugins/text.js'
import { responder, type ResponseFormat } from '../../plugins/response.js'
import { compose } from '../../plugins/chain.js'

t.test('strings → text/plain; charset=utf-8, one-element array body', async (t) => {
  const app = text(() => 'Hello, world!')
  let started: unknown[] = []
  const body = app({} as never, (status, headers) => {
    started = [status, headers]
    return () => {}
  })
  t.same(body, ['Hello, world!'], 'synchronous [string] body')
  t.same(started, ['200 OK', [['content-type', 'text/plain; charset=utf-8']]])
  const r = await inject(app)
  t.equal(r.body, 'Hello, world!')
})

t.test('objects → JSON.stringify without a schema', async (t) => {
  const app = json(() => ({ hello: 'world', n: [1, 2] }))
  const body = app({} as never, () => () => {})
  t.same(body, ['{"hello":"world","n":[1,2]}'])
  const r = await inject(app)
  t.equal(r.status, 200)
  t.equal(r.headers['content-type'], 'application/json; charset=utf-8')
  t.same(r.json(), { hello: 'world', n: [1, 2] })
  t.equal((await inject(json(() => null))).body, 'null')
  t.equal((await inject(json(() => 0))).body, '0')
  t.equal((await inject(json(() => false))).body, 'false')
})

t.test('a response schema serializes with fast-json-stringify, per status', async (t) => {
  const app = json(
    (_e, reply) => {
      const missing = _e.QUERY_STRING === 'missing'
      if (missing) {
        reply.status = 404
        return { message: 'gone', secret: 'x' }
      }
      return { id: 7, name: 'a', password: 'hunter2' }
    },
    {
      response: {
        200: { type: 'object', properties: { id: { type: 'integer' }, name: { type: 'string' } } },
        '4xx': { type: 'object', properties: { message: { type: 'string' } } },
      },
    },
  )
  const ok = await inject(app)
  t.equal(ok.body, '{"id":7,"name":"a"}', 'only declared properties are sent')
  const missing = await inject(app, { url: '/?missing' })
  t.equal(missing.status, 404)
  t.equal(missing.body, '{"message":"gone"}', 'the 4xx schema applies')
})

t.test('compileSerializers: exact, range and default keys; bad keys refused', async (t) => {
  const pick = compileSerializers({
    201: { type: 'object', properties: { a: { type: 'string' } } },
    '5xx': { type: 'object', properties: { b: { type: 'string' } } },
    default: { type: 'object', properties: { c: { type: 'string' } } },
  })
  t.equal(pick(201)?.({ a: 'x', z: 1 }), '{"a":"x"}')
  t.equal(pick(503)?.({ b: 'y', z: 1 }), '{"b":"y"}')
  t.equal(pick(200)?.({ c: 'z', z: 1 }), '{"c":"z"}')
  t.equal(compileSerializers(undefined)(200), undefined)
  t.throws(() => compileSerializers({ ok: {} }), /not a status code/)
})

t.test('bytes → application/octet-stream', async (t) => {
  const r = await inject(json(() => new Uint8Array([104, 105])))
  t.equal(r.headers['content-type'], 'application/octet-stream')
  t.equal(r.body, 'hi')
})

t.test('async iterables stream; the handler may set the type', async (t) => {
  const app = json((_e, reply) => {
    reply.headers = [['content-type', 'text/event-stream']]
    return (async function* () {
      yield 'data: 1\n\n'
      yield new TextEncoder().encode('data: 2\n\n')
    })()
  })
  let body: unknown
  const r = await inject(compose([(inner) => (e, s) => (body = inner(e, s))], app))
  t.equal(r.headers['content-type'], 'text/event-stream', 'a Content-Type set by the handler is kept')
  t.equal(r.body, 'data: 1\n\ndata: 2\n\n')
  t.notOk(Array.isArray(body), 'a stream is not buffered')
  t.ok(isStream((async function* () {})()))
  t.notOk(isStream([1]))
  t.notOk(isStream('s'))
  t.notOk(isStream(new Map()))
})

t.test('undefined → 204 with no body and no Content-Type', async (t) => {
  const r = await inject(json(() => undefined))
  t.equal(r.status, 204)
  t.equal(r.body, '')
  t.same(r.rawHeaders, [])
})

t.test('promises resolve to the value', async (t) => {
  const r = await inject(json(async () => ({ later: true })))
  t.same(r.json(), { later: true })
})

t.test('errors with a status answer with it; others are left to the server', async (t) => {
  const r = await inject(
    json(() => {
      throw new GatewayError(409, 'taken')
    }),
  )
  t.equal(r.status, 409)
  t.equal(r.body, 'taken')
  const hidden = await inject(
    json(async () => {
      throw Object.assign(new Error('db password is x'), { statusCode: 503 })
    }),
  )
  t.equal(hidden.status, 503)
  t.equal(hidden.body, 'Service Unavailable', '5xx messages are not shown')
  const plain = await inject(
    json(() => {
      throw new Error('boom')
    }),
  )
  t.equal(plain.status, 500, 'the server answers 500')
  t.notMatch(plain.body, /boom/)
})

t.test('another response format through the same mechanism (HTML)', async (t) => {
  class Html {
    constructor(readonly source: string) {}
  }
  const html: ResponseFormat = {
    name: 'html',
    accepts: (value) => value instanceof Html,
    serialize: (value) => ({ type: 'text/html; charset=utf-8', payload: (value as Html).source }),
  }
  const app: GatewayApp = responder((environ) => (environ.QUERY_STRING === 'json' ? { x: 1 } : new Html('<p>hi</p>')), [html, ...defaultFormats])
  const r = await inject(app)
  t.equal(r.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(r.body, '<p>hi</p>')
  const j = await inject(app, { url: '/?json' })
  t.equal(j.headers['content-type'], JSON_TYPE)
})

t.test('the old "plugin" names of the response formats still work (deprecated)', async (t) => {
  t.equal(defaultPlugins, defaultFormats)
  t.equal(jsonPlugin, jsonFormat)
  t.equal(textPlugins, textFormats)
  t.equal(textPlugin, textFormat)
  t.equal(bytesPlugin, bytesFormat)
  t.equal(streamPlugin, streamFormat)
})
