/**
 * Cookies in the framework, over a real socket: `app.use(cookies({ secret }))`
 * in one line, `req.cookies`, `reply.cookie` (signed too) and
 * `reply.clearCookie` as Fastify users write them, `req.unsignCookie` with
 * key rotation, and what happens without the middleware (cookies parse,
 * signing says how to turn it on).
 */
import t from 'tap'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import { postern } from '../../lib/framework/app.js'
import { cookies } from '../../lib/index.js'
import { cookieJar, signCookie } from '../../plugins/cookies.js'
import { serve } from '../helpers/server.js'

/** The value of the first `name=` cookie in a list of Set-Cookie headers, decoded. */
function cookieValue(setCookies: string[], name: string): string | undefined {
  const found = setCookies.find((c) => c.startsWith(`${name}=`))
  return found === undefined ? undefined : decodeURIComponent(found.slice(name.length + 1).split(';')[0]!)
}

function signedApp() {
  const app = postern()
  app.use(cookies({ secret: ['new-secret', 'old-secret'] }))
  app.post('/login', (_req, reply) => {
    reply.cookie('session', 'user-7', { signed: true, httpOnly: true, path: '/', sameSite: 'lax' }).cookie('theme', 'dark', { maxAge: 60 })
    return { ok: true }
  })
  app.get('/me', (req, reply) => {
    const session = req.unsignCookie(req.cookies.session)
    if (!session.valid) return reply.status(401).send({ error: 'not signed in' })
    if (session.renew) reply.cookie('session', session.value, { signed: true, httpOnly: true, path: '/', sameSite: 'lax' })
    return { user: session.value, theme: req.cookies.theme ?? null, renewed: session.renew }
  })
  app.post('/logout', (_req, reply) => reply.clearCookie('session', { path: '/', domain: 'example.com' }).send({ ok: true }))
  app.get('/boom', (_req, reply) => {
    reply.cookie('lost', '1')
    throw new Error('kaboom')
  })
  return app
}

t.test('one line registers it; reply.cookie sets each cookie as its own header; signed cookies round-trip', async (t) => {
  const { port, errors } = await serve(t, signedApp())
  const base = `http://127.0.0.1:${port}`

  const login = await fetch(`${base}/login`, { method: 'POST' })
  t.equal(login.status, 200)
  t.same(await login.json(), { ok: true })
  const set = login.headers.getSetCookie()
  t.equal(set.length, 2, 'two Set-Cookie headers, not folded, none repeated')
  t.match(set[0], /^session=user-7\.[A-Za-z0-9+/]+; Path=\/; HttpOnly; SameSite=Lax$/)
  t.equal(set[1], 'theme=dark; Max-Age=60; SameSite=Lax', 'SameSite=Lax unless given, as in Fastify')
  const session = cookieValue(set, 'session')!
  t.equal(session, signCookie('user-7', 'new-secret'), 'signed with the first secret')

  const me = await fetch(`${base}/me`, { headers: { cookie: `session=${encodeURIComponent(session)}; theme=dark` } })
  t.same(await me.json(), { user: 'user-7', theme: 'dark', renewed: false })
  t.same(me.headers.getSetCookie(), [])

  const old = await fetch(`${base}/me`, { headers: { cookie: `session=${encodeURIComponent(signCookie('user-8', 'old-secret'))}` } })
  t.same(await old.json(), { user: 'user-8', theme: null, renewed: true }, 'the old key still verifies, with renew')
  t.equal(cookieValue(old.headers.getSetCookie(), 'session'), signCookie('user-8', 'new-secret'), 're-signed with the new key')

  const tampered = await fetch(`${base}/me`, { headers: { cookie: `session=${encodeURIComponent(session.replace('user-7', 'admin'))}` } })
  t.equal(tampered.status, 401, 'a changed value is not signed in')
  const unsigned = await fetch(`${base}/me`, { headers: { cookie: 'session=user-7' } })
  t.equal(unsigned.status, 401)
  const none = await fetch(`${base}/me`)
  t.equal(none.status, 401, 'no cookie: not signed in, no error')

  const logout = await fetch(`${base}/logout`, { method: 'POST' })
  t.same(await logout.json(), { ok: true }, 'returning the reply sends what send() was given')
  t.same(logout.headers.getSetCookie(), ['session=; Max-Age=0; Domain=example.com; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax'], 'expired, same path and domain')
  t.same(errors, [])
})

t.test('a response replaced by an error keeps none of its cookies; automatic answers set none', async (t) => {
  const { port, errors } = await serve(t, signedApp())
  const boom = await fetch(`http://127.0.0.1:${port}/boom`)
  t.equal(boom.status, 500)
  t.same(boom.headers.getSetCookie(), [], 'the cookie set before the throw is not sent with the 500')
  t.match(errors.join(''), /kaboom/)
  const missing = await fetch(`http://127.0.0.1:${port}/nope`, { headers: { cookie: 'a=1' } })
  t.equal(missing.status, 404)
  t.same(missing.headers.getSetCookie(), [])
})

t.test('without the middleware: req.cookies parses, signing says how to turn it on', async (t) => {
  const app = postern()
  app.get('/echo', (req) => {
    const first = req.cookies
    return { ...first, same: first === req.cookies }
  })
  app.get('/unsign', (req) => req.unsignCookie(req.cookies.s))
  app.get('/sign', (_req, reply) => reply.cookie('s', 'v', { signed: true }).send('x'))
  app.get('/plain', (_req, reply) => reply.cookie('visits', '1', { path: '/' }).cookie('b', 'semi;colon', { sameSite: false }).send('ok'))
  const { port, errors } = await serve(t, app)
  const base = `http://127.0.0.1:${port}`
  const echo = await fetch(`${base}/echo`, { headers: { cookie: 'a=1; b=x%20y; a=2; broken; c=%zz' } })
  t.same(await echo.json(), { a: '1', b: 'x y', c: '%zz', same: true }, 'parsed once, first of a name wins, bad escapes kept')
  const empty = await fetch(`${base}/echo`)
  t.same(await empty.json(), { same: true })

  const plain = await fetch(`${base}/plain`)
  t.same(plain.headers.getSetCookie(), ['visits=1; Path=/; SameSite=Lax', 'b=semi%3Bcolon'], 'unsigned cookies need no middleware; a ; in a value is encoded')

  for (const path of ['/unsign', '/sign']) {
    const res = await fetch(base + path)
    t.equal(res.status, 500, `${path}: a programming error`)
  }
  const log = errors.join('')
  t.match(log, 'req.unsignCookie() needs a cookie secret: app.use(cookies({ secret }))')
  t.match(log, 'the signed cookie "s" needs a cookie secret: app.use(cookies({ secret }))')
})

t.test('bad cookie names and attributes fail in the handler that set them, never on the wire', async (t) => {
  const app = postern()
  app.get('/bad/:what', (req, reply) => {
    const what = req.params.what
    if (what === 'name') reply.cookie('a\r\nx-injected: 1', 'v')
    else if (what === 'semicolon') reply.cookie('a;b', 'v')
    else if (what === 'domain') reply.cookie('a', 'v', { domain: 'x.com\r\nx-injected: 1' })
    else if (what === 'value') reply.cookie('a', { toString: () => 'v' } as unknown as string)
    else reply.clearCookie('a', { path: '/\r\n' })
    return 'unreachable'
  })
  const { port, errors } = await serve(t, app)
  for (const what of ['name', 'semicolon', 'domain', 'value', 'clear']) {
    const res = await fetch(`http://127.0.0.1:${port}/bad/${what}`)
    t.equal(res.status, 500, what)
    t.equal(res.headers.get('x-injected'), null, `${what}: no header injected`)
    t.same(res.headers.getSetCookie(), [])
  }
  const log = errors.join('')
  t.match(log, 'TypeError: cookies: cannot set cookie "a\\r\\nx-injected: 1": cookie name is invalid')
  t.match(log, 'cannot set cookie "a;b": cookie name is invalid')
  t.match(log, 'cookie domain is invalid')
  t.match(log, 'the value of cookie "a" must be a string, got object')
  t.match(log, 'cookie path is invalid')
})

t.test('in a registered plugin: the scope middleware jar and reply.cookie together, no duplicates', async (t) => {
  const app = postern()
  app.get('/outside', (req) => ({ jar: cookieJar(req.environ) !== undefined }))
  await app.register(
    async (scope) => {
      scope.use(cookies({ secret: 'scoped' }))
      scope.addHook('onRequest', (req) => {
        cookieJar(req.environ)!.set('from-jar', '1', { path: '/' })
      })
      scope.get('/inside', (req, reply) => {
        reply.cookie('from-reply', req.unsignCookie(req.cookies.s).value ?? 'none', { signed: true })
        return { jar: cookieJar(req.environ) !== undefined }
      })
    },
    { prefix: '/api' },
  )
  const { port, errors } = await serve(t, app)
  const outside = await fetch(`http://127.0.0.1:${port}/outside`)
  t.same(await outside.json(), { jar: false }, 'the middleware wraps its scope only')
  const inside = await fetch(`http://127.0.0.1:${port}/api/inside`, { headers: { cookie: `s=${encodeURIComponent(signCookie('hello', 'scoped'))}` } })
  t.same(await inside.json(), { jar: true })
  const set = inside.headers.getSetCookie()
  t.equal(set.length, 2, 'one header per cookie')
  t.equal(cookieValue(set, 'from-reply'), signCookie('hello', 'scoped'))
  t.equal(set[1], 'from-jar=1; Path=/; SameSite=Lax', "the jar's cookies come after the reply's headers")
  t.same(errors, [])
})

t.test('the same calls give the same Set-Cookie headers as Fastify with @fastify/cookie', async (t) => {
  const options = {
    domain: 'example.com',
    path: '/admin',
    expires: new Date(Date.UTC(2030, 0, 2, 3, 4, 5)),
    maxAge: 3600,
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    partitioned: true,
    priority: 'high',
  } as const
  const fastify = Fastify()
  t.teardown(() => fastify.close())
  await fastify.register(fastifyCookie, { secret: ['new-secret', 'old-secret'] })
  fastify.get('/', (_req, reply) => {
    reply.setCookie('all', 'x y;z', options).setCookie('plain', 'v').setCookie('session', 'user-7', { signed: true, path: '/' })
    reply.clearCookie('session', { path: '/admin', domain: 'example.com' })
    return 'ok'
  })
  const theirs = (await fastify.inject('/')).headers['set-cookie']

  const app = postern()
  app.use(cookies({ secret: ['new-secret', 'old-secret'] }))
  app.get('/', (_req, reply) => {
    reply.cookie('all', 'x y;z', options).cookie('plain', 'v').cookie('session', 'user-7', { signed: true, path: '/' })
    reply.clearCookie('session', { path: '/admin', domain: 'example.com' })
    return 'ok'
  })
  const { port } = await serve(t, app)
  const ours = (await fetch(`http://127.0.0.1:${port}/`)).headers.getSetCookie()
  t.same(ours, theirs)
  t.equal(ours.length, 4)
})
