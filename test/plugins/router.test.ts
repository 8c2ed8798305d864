import t from 'tap'
import type { Environ, GatewayApp } from '../../lib/gateway/spec.js'
import { inject } from '../../lib/gateway/inject.js'
import { postern } from '../../lib/framework/app.js'
import { ALLOW_KEY, createRouter, PARAMS_KEY, ROUTE_KEY, type RouteInfo } from '../../plugins/router.js'

/** An app that answers with what the router put in the environ. */
const echo =
  (name: string): GatewayApp =>
  (environ: Environ, startResponse) => {
    startResponse('200 OK', [['content-type', 'application/json']])
    const route = environ[ROUTE_KEY] as RouteInfo
    return [JSON.stringify({ name, params: environ[PARAMS_KEY], method: route.method, path: route.path, store: route.store ?? null })]
  }

t.test('dispatches on method and path, with params in the environ', async (t) => {
  const router = createRouter()
  router.get('/users/:id', echo('get-user'), { store: { tag: 1 } })
  router.post('/users', echo('create-user'))
  router.get('/users/:id/posts/:post', echo('post'))
  const r1 = await inject(router, { url: '/users/42' })
  t.equal(r1.status, 200)
  t.same(r1.json(), { name: 'get-user', params: { id: '42' }, method: 'GET', path: '/users/:id', store: { tag: 1 } })
  const r2 = await inject(router, { method: 'POST', url: '/users' })
  t.same(r2.json(), { name: 'create-user', params: {}, method: 'POST', path: '/users', store: null })
  const r3 = await inject(router, { url: '/users/7/posts/hello%20world' })
  t.same(r3.json<{ params: unknown }>().params, { id: '7', post: 'hello world' }, 'params are percent-decoded once')
})

t.test('a literal % or ? in the decoded path is matched as is', async (t) => {
  const router = createRouter()
  router.get('/files/:name', echo('file'))
  const r = await inject(router, { url: '/files/100%25%3F' })
  t.equal(r.status, 200)
  t.same((r.json() as { params: unknown }).params, { name: '100%?' })
})

t.test('wildcards and regexp params', async (t) => {
  const router = createRouter()
  router.get('/static/*', echo('static'))
  router.get('/items/:id(^\\d+)', echo('numeric'))
  router.get('/items/:slug', echo('slug'))
  t.same((await inject(router, { url: '/static/css/site.css' })).json(), { name: 'static', params: { '*': 'css/site.css' }, method: 'GET', path: '/static/*', store: null })
  t.equal((await inject(router, { url: '/items/123' })).json<{ name: string }>().name, 'numeric')
  t.equal((await inject(router, { url: '/items/abc' })).json<{ name: string }>().name, 'slug')
})

t.test('host constraints', async (t) => {
  const router = createRouter()
  router.get('/', echo('api'), { constraints: { host: 'api.example.com' } })
  router.get('/', echo('www'))
  t.equal((await inject(router, { url: '/', headers: { host: 'api.example.com' } })).json<{ name: string }>().name, 'api')
  t.equal((await inject(router, { url: '/', headers: { host: 'www.example.com' } })).json<{ name: string }>().name, 'www')
})

t.test('404 for an unknown path', async (t) => {
  const router = createRouter()
  router.get('/a', echo('a'))
  const r = await inject(router, { url: '/b' })
  t.equal(r.status, 404)
  t.equal(r.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(r.body, 'Not Found')
  t.equal(r.headers.allow, undefined)
})

t.test('custom not-found app', async (t) => {
  const router = createRouter({
    notFound: (_e, startResponse) => {
      startResponse('404 Not Found', [['content-type', 'text/html']])
      return ['<h1>nope</h1>']
    },
  })
  const r = await inject(router, { url: '/x' })
  t.equal(r.status, 404)
  t.equal(r.body, '<h1>nope</h1>')
})

t.test('405 with Allow for a path routed under other methods; unknown methods too', async (t) => {
  const router = createRouter()
  router.get('/a', echo('a'))
  router.put('/a', echo('a'))
  router.delete('/b', echo('b'))
  const r = await inject(router, { method: 'POST', url: '/a' })
  t.equal(r.status, 405)
  t.equal(r.headers.allow, 'GET, PUT, HEAD, OPTIONS')
  t.equal(r.body, 'Method Not Allowed')
  const weird = await inject(router, { method: 'BREW', url: '/a' })
  t.equal(weird.status, 405)
  t.equal(weird.headers.allow, 'GET, PUT, HEAD, OPTIONS')
  t.equal((await inject(router, { method: 'GET', url: '/b' })).headers.allow, 'DELETE, OPTIONS')
})

t.test('custom 405 app gets the allowed methods in the environ', async (t) => {
  const router = createRouter({
    methodNotAllowed: (environ, startResponse) => {
      startResponse('405 Method Not Allowed', [['allow', (environ[ALLOW_KEY] as string[]).join(',')]])
      return [`use ${(environ[ALLOW_KEY] as string[])[0]}`]
    },
  })
  router.post('/a', echo('a'))
  const r = await inject(router, { url: '/a' })
  t.equal(r.status, 405)
  t.equal(r.headers.allow, 'POST,OPTIONS')
  t.equal(r.body, 'use POST')
})

t.test('automatic HEAD for GET routes, explicit HEAD wins', async (t) => {
  const router = createRouter()
  router.get('/a', echo('get-a'))
  router.get('/b', echo('get-b'))
  router.head('/b', (_e, startResponse) => {
    startResponse('200 OK', [['x-head', 'yes']])
    return []
  })
  const a = await inject(router, { method: 'HEAD', url: '/a' })
  t.equal(a.status, 200)
  t.equal(a.headers['content-type'], 'application/json')
  t.equal(a.body, '', 'no body for HEAD')
  const b = await inject(router, { method: 'HEAD', url: '/b' })
  t.equal(b.headers['x-head'], 'yes')
})

t.test('OPTIONS answers 204 with Allow unless a route defines it', async (t) => {
  const router = createRouter()
  router.get('/a', echo('a'))
  router.post('/a', echo('a'))
  router.options('/b', (_e, startResponse) => {
    startResponse('200 OK', [['content-type', 'text/plain']])
    return ['custom']
  })
  router.get('/b', echo('b'))
  const a = await inject(router, { method: 'OPTIONS', url: '/a' })
  t.equal(a.status, 204)
  t.equal(a.headers.allow, 'GET, POST, HEAD, OPTIONS')
  t.equal(a.body, '')
  const b = await inject(router, { method: 'OPTIONS', url: '/b' })
  t.equal(b.status, 200)
  t.equal(b.body, 'custom')
  t.equal((await inject(router, { method: 'OPTIONS', url: '/none' })).status, 404)
})

t.test('all() routes every method', async (t) => {
  const router = createRouter()
  router.all('/any', echo('any'))
  for (const method of ['GET', 'POST', 'DELETE', 'PATCH']) {
    const r = await inject(router, { method, url: '/any' })
    t.equal(r.status, 200, method)
    t.equal(r.json<{ method: string }>().method, method)
  }
})

t.test('routes on PATH_INFO, below where it is mounted', async (t) => {
  const router = createRouter()
  router.get('/', echo('root'))
  router.get('/x', echo('x'))
  const mounted = await inject(router, { url: '/api', environ: { SCRIPT_NAME: '/api', PATH_INFO: '' } })
  t.equal(mounted.json<{ name: string }>().name, 'root', "an empty PATH_INFO is '/'")
  const x = await inject(router, { url: '/api/x', environ: { SCRIPT_NAME: '/api', PATH_INFO: '/x' } })
  t.equal(x.json<{ name: string }>().name, 'x')
})

t.test('find() and allowed() for callers that route themselves', async (t) => {
  const router = createRouter<string>()
  router.get('/u/:id', echo('u'), { store: 'user' })
  const found = router.find('GET', '/u/9')
  t.ok(found)
  t.same(found?.params, { id: '9' })
  t.equal(found?.route.store, 'user')
  t.equal(router.find('HEAD', '/u/9')?.route.method, 'GET')
  t.equal(router.find('POST', '/u/9'), null)
  t.same(router.allowed('/u/9'), ['GET', 'HEAD', 'OPTIONS'])
  t.same(router.allowed('/zzz'), [])
})

t.test('trailing slash option', async (t) => {
  const strict = createRouter()
  strict.get('/a', echo('a'))
  t.equal((await inject(strict, { url: '/a/' })).status, 404)
  const loose = createRouter({ ignoreTrailingSlash: true })
  loose.get('/a', echo('a'))
  t.equal((await inject(loose, { url: '/a/' })).status, 200)
})

t.test('an encoded slash stays in its parameter: routes on the raw path, decodes each parameter once (issue #11)', async (t) => {
  const router = createRouter()
  router.get('/users/:id', echo('user'))
  router.get('/static/*', echo('static'))
  router.get('/a/b', echo('ab'))
  router.get('/files/a b', echo('spaced'))
  const params = async (url: string) => (await inject(router, { url })).json<{ params: unknown }>().params
  t.same(await params('/users/a%2Fb'), { id: 'a/b' }, '%2F is part of the parameter, not a separator')
  t.same(await params('/users/a%2fb'), { id: 'a/b' }, 'lower-case hex too')
  t.same(await params('/users/caf%C3%A9'), { id: 'café' }, 'UTF-8 escapes decoded')
  t.same(await params('/users/a%252F'), { id: 'a%2F' }, 'decoded exactly once')
  t.same(await params('/users/100%25%3F'), { id: '100%?' })
  t.same(await params('/static/x%2Fy%20z'), { '*': 'x/y z' }, 'wildcards are decoded the same way')
  // As in Fastify (find-my-way decodes the path before matching, reserved
  // characters excepted): an escape of an unreserved character matches the
  // route written with the character, but `%2F` is never a `/` of a route.
  t.equal((await inject(router, { url: '/files/a%20b' })).json<{ name: string }>().name, 'spaced')
  t.equal((await inject(router, { url: '/a%2Fb' })).status, 404, '/a%2Fb is not /a/b')
  t.equal((await inject(router, { url: '/a/b' })).status, 200)
  const found = router.find('GET', '/users/a%2Fb')
  t.same(found?.params, { id: 'a%2Fb' }, 'find() still takes a decoded path: its % is literal')
})

t.test('the raw path below the mount; a rewritten PATH_INFO is routed as it is', async (t) => {
  const router = createRouter()
  router.get('/users/:id', echo('user'))
  const id = async (url: string, environ: Record<string, unknown>) => {
    const r = await inject(router, { url, environ })
    return r.status === 200 ? r.json<{ params: { id: string } }>().params.id : r.status
  }
  t.equal(await id('/api/users/a%2Fb', { SCRIPT_NAME: '/api', PATH_INFO: '/users/a/b' }), 'a/b')
  t.equal(await id('/my%20api/users/a%2Fb', { SCRIPT_NAME: '/my api', PATH_INFO: '/users/a/b' }), 'a/b', 'an escaped mount point is stripped in its raw form')
  t.equal(await id('/a%2Fb/users/c%2Fd', { SCRIPT_NAME: '/a/b', PATH_INFO: '/users/c/d' }), 'c/d', 'a mount point that held %2F')
  t.equal(await id('http://example.com/api/users/a%2Fb?x=%2F', { SCRIPT_NAME: '/api', PATH_INFO: '/users/a/b' }), 'a/b', 'absolute-form target')
  t.equal(await id('/api%2Fusers/x', { SCRIPT_NAME: '/api', PATH_INFO: '/users/x' }), 'x', 'no raw split at the mount: PATH_INFO as before')
  t.equal(await id('/old/a%2Fb', { PATH_INFO: '/users/z' }), 'z', 'middleware rewrote PATH_INFO: it is routed')
  t.equal(await id('/old/a%2Fb', { PATH_INFO: '/users/100%' }), '100%', "a rewritten PATH_INFO's % is literal")
  t.equal(await id('/users/a%23b', {}), 'a#b')
  t.equal(await id('/users/a#b', { PATH_INFO: '/users/a#b' }), 'a#b', 'a raw # (not sent by clients) is not a delimiter')
})

t.test('through the framework: req.params.id holds the encoded slash (issue #11)', async (t) => {
  const app = postern()
  app.get('/users/:id', (req) => req.params.id)
  app.get('/files/a b', () => 'spaced')
  t.equal((await app.inject({ url: '/users/a%2Fb' })).body, 'a/b')
  t.equal((await app.inject({ url: '/users/caf%C3%A9' })).body, 'café')
  t.equal((await app.inject({ url: '/users/a%252F' })).body, 'a%2F')
  t.equal((await app.inject({ url: '/files/a%20b' })).body, 'spaced', 'as in Fastify: %20 matches the route written with a space')
})
