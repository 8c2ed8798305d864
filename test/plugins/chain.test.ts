import t from 'tap'
import type { Body, GatewayApp, Middleware } from '../../lib/gateway/spec.js'
import { inject } from '../../lib/gateway/inject.js'
import { chain, compose, mapBody } from '../../plugins/chain.js'

const hello: GatewayApp = (_environ, startResponse) => {
  startResponse('200 OK', [['content-type', 'text/plain']])
  return ['hello']
}

t.test('onion order: first is outermost on the way in and the way out', async (t) => {
  const seen: string[] = []
  const tag =
    (name: string): Middleware =>
    (app) =>
    (environ, startResponse) => {
      seen.push(`${name} in`)
      const result = app(environ, (status, headers, error) => {
        seen.push(`${name} out`)
        return startResponse(status, headers, error)
      })
      return result
    }
  const app = chain(tag('a'), tag('b'), tag('c'))(hello)
  const r = await inject(app)
  t.equal(r.body, 'hello')
  t.same(seen, ['a in', 'b in', 'c in', 'c out', 'b out', 'a out'])
  t.equal(compose([], hello), hello, 'no middleware: the app itself')
})

t.test('middleware can answer before the inner app runs', async (t) => {
  let innerCalled = false
  const guard: Middleware = (app) => (environ, startResponse) => {
    if (environ.HTTP_AUTHORIZATION !== 'Bearer ok') {
      startResponse('401 Unauthorized', [['www-authenticate', 'Bearer']])
      return ['no']
    }
    return app(environ, startResponse)
  }
  const app = compose([guard], (e, s) => {
    innerCalled = true
    return hello(e, s)
  })
  const denied = await inject(app)
  t.equal(denied.status, 401)
  t.equal(denied.headers['www-authenticate'], 'Bearer')
  t.equal(innerCalled, false)
  const allowed = await inject(app, { headers: { authorization: 'Bearer ok' } })
  t.equal(allowed.status, 200)
  t.equal(allowed.body, 'hello')
})

t.test('middleware can add headers by wrapping startResponse', async (t) => {
  const poweredBy: Middleware = (app) => (environ, startResponse) =>
    app(environ, (status, headers, error) => startResponse(status, [...headers, ['x-powered-by', 'postern']], error))
  const r = await inject(chain(poweredBy)(hello))
  t.equal(r.headers['x-powered-by'], 'postern')
  t.equal(r.headers['content-type'], 'text/plain')
})

t.test('mapBody transforms the body on the way out, keeping arrays arrays', async (t) => {
  const upper: Middleware = (app) => (environ, startResponse) => mapBody(app(environ, startResponse), (chunk) => (typeof chunk === 'string' ? chunk.toUpperCase() : chunk))
  const app = chain(upper)(hello)
  const result = app({} as never, () => () => {}) as Body
  t.ok(Array.isArray(result), 'a sync array body stays a sync array')
  t.same([...(result as string[])], ['HELLO'])
  t.equal((await inject(app)).body, 'HELLO')

  let closed = 0
  const streaming: GatewayApp = (_e, startResponse) => {
    startResponse('200 OK', [])
    return {
      async *[Symbol.asyncIterator]() {
        yield 'a'
        yield 'b'
      },
      close: () => void closed++,
    }
  }
  const r = await inject(chain(upper)(streaming))
  t.equal(r.body, 'AB')
  t.equal(closed, 1, 'close() reaches the inner body once')

  const asyncApp: GatewayApp = async (e, s) => hello(e, s)
  t.equal((await inject(chain(upper)(asyncApp))).body, 'HELLO', 'a promised body is mapped too')
})
