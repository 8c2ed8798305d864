/**
 * Issue #11, defect 2: hooks run for every response the app produces, the
 * router's automatic answers included. CORS done with an `onRequest` hook
 * must reach the automatic `OPTIONS` (a browser's preflight), the 405 and
 * the 404; `onSend` and `onResponse` see them too. In a registered plugin,
 * its own hooks and middleware run for the automatic answers on its paths
 * (and not on the parent's). Real sockets, under validate().
 */
import t from 'tap'
import { postern } from '../../lib/framework/app.js'
import type { App } from '../../lib/framework/types.js'
import type { Middleware } from '../../lib/gateway/spec.js'
import { serveValidated } from '../helpers/server.js'

/** The CORS-by-hook app of the issue: an onRequest hook adds the headers, onSend and onResponse record what they saw. */
function corsByHook(): { app: App; sent: string[]; done: string[] } {
  const app = postern()
  const sent: string[] = []
  const done: string[] = []
  app.addHook('onRequest', (req, reply) => {
    const origin = req.header('origin')
    if (origin !== undefined) reply.header('access-control-allow-origin', origin).header('vary', 'Origin')
    if (req.method === 'OPTIONS') reply.header('access-control-allow-methods', 'GET, POST, DELETE')
  })
  app.addHook('onSend', (req, reply) => {
    sent.push(`${req.method} ${req.path} ${reply.statusCode}`)
  })
  app.addHook('onResponse', (req, reply) => {
    done.push(`${req.method} ${req.path} ${reply.statusCode}`)
  })
  app.get('/items', () => ({ items: [] }))
  app.post('/items', () => ({ created: true }))
  return { app, sent, done }
}

t.test('an onRequest CORS hook answers the preflight (the automatic OPTIONS)', async (t) => {
  const { app, sent, done } = corsByHook()
  const { port } = await serveValidated(t, app)
  const r = await fetch(`http://127.0.0.1:${port}/items`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
  })
  t.equal(r.status, 204)
  t.equal(r.headers.get('allow'), 'GET, POST, HEAD, OPTIONS', 'still the router’s Allow')
  t.equal(r.headers.get('access-control-allow-origin'), 'https://app.example')
  t.equal(r.headers.get('access-control-allow-methods'), 'GET, POST, DELETE')
  t.equal(r.headers.get('vary'), 'Origin')
  t.equal(await r.text(), '')
  t.same(sent, ['OPTIONS /items 204'], 'onSend ran')
  t.same(done, ['OPTIONS /items 204'], 'onResponse ran')
})

t.test('the automatic 405 and the 404 get the hook’s headers too', async (t) => {
  const { app, sent } = corsByHook()
  const { port } = await serveValidated(t, app)
  const headers = { origin: 'https://app.example' }
  const notAllowed = await fetch(`http://127.0.0.1:${port}/items`, { method: 'DELETE', headers })
  t.equal(notAllowed.status, 405)
  t.equal(notAllowed.headers.get('allow'), 'GET, POST, HEAD, OPTIONS')
  t.equal(notAllowed.headers.get('access-control-allow-origin'), 'https://app.example')
  t.same(await notAllowed.json(), { statusCode: 405, error: 'Method Not Allowed', message: 'Method DELETE not allowed for /items' })
  const missing = await fetch(`http://127.0.0.1:${port}/nothing`, { headers })
  t.equal(missing.status, 404)
  t.equal(missing.headers.get('access-control-allow-origin'), 'https://app.example')
  t.same(sent, ['DELETE /items 405', 'GET /nothing 404'])
})

t.test('a hook can answer the automatic OPTIONS itself (a preflight with its own status)', async (t) => {
  const app = postern()
  app.addHook('onRequest', (req, reply) => {
    if (req.method === 'OPTIONS' && req.header('access-control-request-method') !== undefined) {
      reply.status(200).header('access-control-allow-origin', '*').send('')
    }
  })
  app.get('/a', () => 'a')
  const { port } = await serveValidated(t, app)
  const preflight = await fetch(`http://127.0.0.1:${port}/a`, { method: 'OPTIONS', headers: { origin: 'https://x.example', 'access-control-request-method': 'GET' } })
  t.equal(preflight.status, 200)
  t.equal(preflight.headers.get('access-control-allow-origin'), '*')
  t.equal(preflight.headers.get('allow'), null, 'the hook answered: the automatic answer did not run')
  const plain = await fetch(`http://127.0.0.1:${port}/a`, { method: 'OPTIONS' })
  t.equal(plain.status, 204)
  t.equal(plain.headers.get('allow'), 'GET, HEAD, OPTIONS')
})

t.test('in a registered plugin, its hooks and middleware run for the automatic answers on its paths only', async (t) => {
  const app = postern()
  const tag =
    (value: string): Middleware =>
    (inner) =>
    (environ, startResponse) =>
      inner(environ, (status, headers, error) => startResponse(status, [...headers, ['x-middleware', value]], error))
  await app.register(
    async (api) => {
      api.use(tag('api'))
      api.addHook('onRequest', (_req, reply) => {
        reply.header('x-hook', 'api')
      })
      api.get('/things', () => [])
    },
    { prefix: '/api' },
  )
  app.get('/home', () => 'home')
  const { port } = await serveValidated(t, app)

  for (const method of ['OPTIONS', 'PUT']) {
    const inside = await fetch(`http://127.0.0.1:${port}/api/things`, { method })
    t.equal(inside.status, method === 'OPTIONS' ? 204 : 405, `${method} /api/things`)
    t.equal(inside.headers.get('x-hook'), 'api', `${method}: the plugin's hook ran`)
    t.equal(inside.headers.get('x-middleware'), 'api', `${method}: the plugin's middleware ran`)
    const outside = await fetch(`http://127.0.0.1:${port}/home`, { method })
    t.equal(outside.status, method === 'OPTIONS' ? 204 : 405, `${method} /home`)
    t.equal(outside.headers.get('x-hook'), null, `${method}: not the plugin's hook on the parent's path`)
    t.equal(outside.headers.get('x-middleware'), null)
  }
})

t.test('an explicit OPTIONS route still wins over the automatic answer', async (t) => {
  const { app } = corsByHook()
  app.options('/items', (_req, reply) => {
    reply.status(200)
    return 'custom'
  })
  const { port } = await serveValidated(t, app)
  const r = await fetch(`http://127.0.0.1:${port}/items`, { method: 'OPTIONS', headers: { origin: 'https://app.example' } })
  t.equal(r.status, 200)
  t.equal(await r.text(), 'custom')
  t.equal(r.headers.get('access-control-allow-origin'), 'https://app.example')
})
