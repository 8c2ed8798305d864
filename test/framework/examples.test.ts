/** The framework examples do what their doc comments say. */
import t from 'tap'
import { inject } from '../../lib/gateway/inject.js'
import * as hello from '../../examples/framework-hello.js'
import * as prefix from '../../examples/plugin-prefix.js'
import * as schemas from '../../examples/schemas.js'
import * as routerAlone from '../../examples/router-alone.js'

t.test('framework-hello', async (t) => {
  t.equal(hello.default, hello.app)
  t.equal((await hello.app.inject('/hello')).body, 'Hello, world!')
  t.equal((await hello.app.inject('/hello.json')).body, '{"hello":"world"}')
  t.same((await hello.app.inject('/users/7')).json(), { id: '7' })
})

t.test('plugin-prefix', async (t) => {
  const { app } = prefix
  t.equal(prefix.default, app)
  t.equal((await app.inject('/')).body, 'public home page')
  t.equal((await app.inject('/api/users/1')).status, 401)
  t.same((await app.inject({ url: '/api/users/1', headers: { 'x-api-key': 'secret' } })).json(), { name: 'Ada' })
  t.same((await app.inject({ url: '/api/users', headers: { 'x-api-key': 'secret' } })).json(), ['1', '2'])
  t.equal((await app.inject({ url: '/api/users/9', headers: { 'x-api-key': 'secret' } })).status, 404)
})

t.test('schemas', async (t) => {
  const { app } = schemas
  const created = await app.inject({ method: 'POST', url: '/items', body: { name: 'pen', price: 2 } })
  t.equal(created.status, 201)
  t.equal(created.headers.location, '/items/1')
  t.same(created.json(), { id: 1, name: 'pen', price: 2 })
  const bad = await app.inject({ method: 'POST', url: '/items', body: { name: 'pen', price: -1 } })
  t.equal(bad.status, 400)
  t.equal(bad.json<{ message: string }>().message, 'body/price must be >= 0')
  t.same((await app.inject('/items?limit=1')).json(), [{ id: 1, name: 'pen', price: 2 }])
  t.equal((await app.inject('/items?limit=0')).json<{ message: string }>().message, 'query/limit must be >= 1')
  t.equal((await app.inject('/items/x')).json<{ message: string }>().message, 'params/id must be integer')
  t.equal((await app.inject('/items/1')).json<{ name: string }>().name, 'pen')
})

t.test('router-alone', async (t) => {
  const { app } = routerAlone
  const r = await inject(app, { url: '/users/5' })
  t.same(r.json(), { id: '5' })
  t.equal(r.headers['x-powered-by'], 'postern')
  t.equal((await inject(app, { url: '/hello' })).body, 'Hello, world!')
  t.equal((await inject(app, { url: '/hello.json' })).body, '{"hello":"world"}')
})
