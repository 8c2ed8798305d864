/**
 * cookies() and the cookie helpers on real sockets, with no framework, on
 * postern's server and on node:http: request cookies parsed (hostile
 * headers never crash), every Set-Cookie attribute as it goes on the wire,
 * one Set-Cookie header per cookie, signed cookies and key rotation, and
 * refusals (bad names, late cookies, bad secrets) that say what was wrong.
 */
import t from 'tap'
import fastifyCookie from '@fastify/cookie'
import { COOKIES_KEY, cookieJar, cookies, parseCookies, serializeClearCookie, serializeCookie, signCookie, unsignCookie, type CookieJar } from '../../plugins/cookies.js'
import type { Environ, GatewayApp } from '../../lib/gateway/spec.js'
import { validate } from '../../lib/gateway/validate.js'
import { headerCount } from '../helpers/raw.js'
import { SERVERS, listen, rawRequest } from '../fixtures/proxy-client.js'

const EXPIRES = new Date(Date.UTC(2030, 0, 2, 3, 4, 5))

function jarOf(environ: Environ): CookieJar {
  const jar = cookieJar(environ)
  if (jar === undefined) throw new Error('no jar')
  return jar
}

function sendJson(startResponse: Parameters<GatewayApp>[1], value: unknown, status = '200 OK'): string[] {
  startResponse(status, [['content-type', 'application/json']])
  return [JSON.stringify(value)]
}

/** The app under the middleware: one path per behaviour. */
const app: GatewayApp = (environ, startResponse) => {
  const jar = jarOf(environ)
  const query = new URLSearchParams(environ.QUERY_STRING)
  switch (environ.PATH_INFO) {
    case '/echo':
      return sendJson(startResponse, { ...jar.cookies })
    case '/attributes':
      jar.set('plain', 'v')
      jar.set('all', 'x y;z', {
        domain: 'example.com',
        path: '/admin',
        expires: EXPIRES,
        maxAge: 3600,
        httpOnly: true,
        secure: true,
        sameSite: 'lax',
        partitioned: true,
        priority: 'high',
      })
      jar.set('strict', '1', { sameSite: true })
      jar.set('no-same-site', '1', { sameSite: false })
      jar.set('none', '1', { sameSite: 'none', secure: true, priority: 'low' })
      startResponse('200 OK', [
        ['content-type', 'text/plain'],
        ['set-cookie', 'app=own'],
      ])
      return ['set']
    case '/sign':
      jar.set('session', query.get('v') ?? 'user-7', { signed: true, httpOnly: true, path: '/' })
      startResponse('204 No Content', [])
      return []
    case '/check': {
      const result = jar.unsign(jar.cookies.session)
      if (result.valid && result.renew) jar.set('session', result.value, { signed: true, httpOnly: true, path: '/' })
      return sendJson(startResponse, result)
    }
    case '/clear':
      jar.clear('session', { path: '/admin', domain: 'example.com' })
      startResponse('204 No Content', [])
      return []
    case '/bad-set': {
      const problems: string[] = []
      const attempts: Array<[string, unknown, object?]> = [
        ['a;b', 'v'],
        ['a\r\nX-Injected: 1', 'v'],
        ['a b', 'v'],
        ['', 'v'],
        ['ok', 42],
        ['ok', 'v', { domain: 'evil.com\r\nX-Injected: 1' }],
        ['ok', 'v', { path: '/;HttpOnly' }],
        ['ok', 'v', { maxAge: 1.5 }],
        ['ok', 'v', { expires: 'tomorrow' }],
        ['ok', 'v', { sameSite: 'sometimes' }],
        ['ok', 'v', { encode: () => 'x\r\ny' }],
      ]
      for (const [name, value, options] of attempts) {
        try {
          jar.set(name, value as string, options)
          problems.push(`accepted ${JSON.stringify(name)}`)
        } catch (error) {
          problems.push(`${(error as Error).name}: ${(error as Error).message}`)
        }
      }
      return sendJson(startResponse, problems)
    }
    case '/late': {
      startResponse('200 OK', [['content-type', 'text/plain']])
      try {
        jar.set('late', '1')
        return ['accepted']
      } catch (error) {
        return [(error as Error).message]
      }
    }
    default:
      return sendJson(startResponse, 'not found', '404 Not Found')
  }
}

// Under validate(): the middleware and its startResponse wrapper keep the interface's rules.
const secured = validate(cookies({ secret: ['new-secret', 'old-secret'] })(app))

for (const kind of SERVERS) {
  t.test(`${kind}: request cookies are parsed, decoded, first of a name wins`, async (t) => {
    const { port, errors } = await listen(t, kind, secured)
    const res = await fetch(`http://127.0.0.1:${port}/echo`, { headers: { cookie: 'a=1; b=hello%20world; a=2; c="quoted"; d=' } })
    t.same(await res.json(), { a: '1', b: 'hello world', c: '"quoted"', d: '' })
    const none = await fetch(`http://127.0.0.1:${port}/echo`)
    t.same(await none.json(), {}, 'no Cookie header: no cookies')
    // Two Cookie header fields reach the app joined with "; " (RFC 9110 §5.3, RFC 6265 §5.4).
    const two = await rawRequest({ port, head: `GET /echo HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\nCookie: b=2` })
    t.same(JSON.parse(two.body.toString()), { a: '1', b: '2' })
    t.same(errors, [])
  })

  t.test(`${kind}: hostile Cookie headers are parsed as far as they go, never a crash`, async (t) => {
    const { port, errors } = await listen(t, kind, secured)
    // Expected as entries: a `__proto__` cookie must be an own key of the jar's object (a prototype set instead would not be copied by the echo).
    const cases: Array<[cookie: string, expected: Array<[string, string]>]> = [
      ['novalue', []],
      ['novalue; a=1', [['a', '1']]],
      [
        '=; ==; a==1',
        [
          ['', ''],
          ['a', '=1'],
        ],
      ],
      [
        'a=%zz; b=%E0%A4%A',
        [
          ['a', '%zz'],
          ['b', '%E0%A4%A'],
        ],
      ],
      ['a=%ff', [['a', '%ff']]],
      [';;;;', []],
      [
        '__proto__=x; constructor=y; toString=z',
        [
          ['__proto__', 'x'],
          ['constructor', 'y'],
          ['toString', 'z'],
        ],
      ],
      [
        '  a  =  spaced  ;b=\t2\t',
        [
          ['a', 'spaced'],
          ['b', '2'],
        ],
      ],
      ['a=1, b=2', [['a', '1, b=2']]],
      // Bytes above 0x7F (obs-text) reach the app as Latin-1 characters, as every header does.
      ['a=\u00e9t\u00e9', [['a', '\u00e9t\u00e9']]],
    ]
    for (const [cookie, expected] of cases) {
      const res = await rawRequest({ port, head: `GET /echo HTTP/1.1\r\nHost: x\r\nCookie: ${cookie}` })
      t.equal(res.status, 200, `Cookie: ${JSON.stringify(cookie)} answered`)
      const parsed = JSON.parse(res.body.toString()) as Record<string, string>
      t.same(Object.entries(parsed), expected, `Cookie: ${JSON.stringify(cookie)}`)
    }
    // A big header: 1,200 cookies in about 14 KB (under the servers' 16 KiB head limit).
    const many = Array.from({ length: 1200 }, (_, i) => `k${i}=v${i}`).join('; ')
    const big = await fetch(`http://127.0.0.1:${port}/echo`, { headers: { cookie: many } })
    const all = (await big.json()) as Record<string, string>
    t.equal(Object.keys(all).length, 1200, 'every cookie of a big header')
    t.equal(all.k1199, 'v1199')
    t.same(errors, [])
  })

  t.test(`${kind}: every Set-Cookie attribute on the wire (SameSite=Lax unless given), one header per cookie after the app's own`, async (t) => {
    const { port, errors } = await listen(t, kind, secured)
    const res = await rawRequest({ port, head: 'GET /attributes HTTP/1.1\r\nHost: x' })
    t.equal(res.status, 200)
    t.equal(headerCount(res, 'set-cookie'), 6, 'six separate Set-Cookie fields, never folded into one')
    const values = res.headers.filter(([n]) => n.toLowerCase() === 'set-cookie').map(([, v]) => v)
    t.same(values, [
      'app=own',
      'plain=v; SameSite=Lax',
      'all=x%20y%3Bz; Max-Age=3600; Domain=example.com; Path=/admin; Expires=Wed, 02 Jan 2030 03:04:05 GMT; HttpOnly; Secure; Partitioned; Priority=High; SameSite=Lax',
      'strict=1; SameSite=Strict',
      'no-same-site=1',
      'none=1; Secure; Priority=Low; SameSite=None',
    ])
    const fetched = await fetch(`http://127.0.0.1:${port}/attributes`)
    t.same(fetched.headers.getSetCookie(), values, 'fetch sees the same six cookies')
    // The encoded value comes back decoded.
    const back = await fetch(`http://127.0.0.1:${port}/echo`, { headers: { cookie: 'all=x%20y%3Bz' } })
    t.same(await back.json(), { all: 'x y;z' })
    t.same(errors, [])
  })

  t.test(`${kind}: signed cookies round-trip; an old key verifies with renew; tampering is invalid`, async (t) => {
    const { port, errors } = await listen(t, kind, secured)
    const base = `http://127.0.0.1:${port}`
    const signedRes = await fetch(`${base}/sign?v=user-7`)
    const [setCookie] = signedRes.headers.getSetCookie()
    t.match(setCookie, /^session=user-7\.[A-Za-z0-9+/]+; Path=\/; HttpOnly; SameSite=Lax$/, 'value.signature, the signature encoded for the header')
    const sent = decodeURIComponent(setCookie!.slice('session='.length, setCookie!.indexOf(';')))
    t.equal(sent, signCookie('user-7', 'new-secret'), 'signed with the first secret')
    t.equal(fastifyCookie.unsign(sent, 'new-secret').value, 'user-7', '@fastify/cookie verifies it with the same secret')

    const check = async (cookie: string) => {
      const res = await fetch(`${base}/check`, { headers: { cookie } })
      return { body: await res.json(), setCookie: res.headers.getSetCookie() }
    }
    const current = await check(setCookie!.split(';')[0]!)
    t.same(current.body, { valid: true, renew: false, value: 'user-7' })
    t.same(current.setCookie, [], 'nothing to renew')

    const old = await check(`session=${encodeURIComponent(signCookie('user-8', 'old-secret'))}`)
    t.same(old.body, { valid: true, renew: true, value: 'user-8' }, 'the old secret still verifies, and says renew')
    t.equal(old.setCookie.length, 1, 'the app re-signs it')
    const renewed = decodeURIComponent(old.setCookie[0]!.slice('session='.length, old.setCookie[0]!.indexOf(';')))
    t.equal(renewed, signCookie('user-8', 'new-secret'), 'with the new secret')

    const invalid = { valid: false, renew: false, value: null }
    t.same((await check(`session=${encodeURIComponent(sent.replace('user-7', 'user-1'))}`)).body, invalid, 'a changed value fails')
    t.same((await check(`session=${encodeURIComponent(`${sent.slice(0, -1)}A`)}`)).body, invalid, 'a changed signature fails')
    t.same((await check(`session=${encodeURIComponent(signCookie('user-9', 'other'))}`)).body, invalid, 'another secret fails')
    t.same((await check('session=user-7')).body, invalid, 'an unsigned value fails')
    t.same((await check('other=1')).body, invalid, 'a missing cookie is invalid, not an error')
    t.same(errors, [])
  })

  t.test(`${kind}: clear sets an expired, empty cookie with the same path and domain`, async (t) => {
    const { port, errors } = await listen(t, kind, secured)
    const res = await fetch(`http://127.0.0.1:${port}/clear`)
    t.same(res.headers.getSetCookie(), ['session=; Max-Age=0; Domain=example.com; Path=/admin; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax'])
    t.same(errors, [])
  })

  t.test(`${kind}: invalid names, values and attributes are refused with a TypeError saying which`, async (t) => {
    const { port, errors } = await listen(t, kind, secured)
    const res = await fetch(`http://127.0.0.1:${port}/bad-set`)
    t.same(res.headers.getSetCookie(), [], 'nothing refused was queued')
    const problems = (await res.json()) as string[]
    t.equal(problems.length, 11)
    for (const p of problems) t.match(p, /^TypeError: cookies: /, p)
    t.match(problems[0], 'cannot set cookie "a;b": cookie name is invalid')
    t.match(problems[1], 'cannot set cookie "a\\r\\nX-Injected: 1": cookie name is invalid: a\\r\\nX-Injected: 1', 'CR/LF shown escaped')
    t.match(problems[2], 'cookie name is invalid')
    t.match(problems[3], 'cannot set cookie "": cookie name is invalid')
    t.match(problems[4], 'the value of cookie "ok" must be a string, got number')
    t.match(problems[5], 'cookie domain is invalid')
    t.match(problems[6], 'cookie path is invalid')
    t.match(problems[7], 'cookie maxAge is invalid: 1.5')
    t.match(problems[8], '`expires` of cookie "ok" must be a Date')
    t.match(problems[9], 'cookie sameSite is invalid: sometimes')
    t.match(problems[10], 'cookie value is invalid')
    t.same(errors, [])
  })

  t.test(`${kind}: a cookie set after the response started is refused, not silently lost`, async (t) => {
    const { port } = await listen(t, kind, secured)
    const res = await fetch(`http://127.0.0.1:${port}/late`)
    t.equal(await res.text(), 'cookies: cookie "late" was set after the response started; set cookies before returning the body')
    t.same(res.headers.getSetCookie(), [])
  })

  t.test(`${kind}: a bare app with the plain helpers, no middleware`, async (t) => {
    const bare: GatewayApp = (environ, startResponse) => {
      const seen = parseCookies(environ)
      const visits = Number(seen.visits ?? '0') + 1
      startResponse('200 OK', [
        ['content-type', 'text/plain'],
        ['set-cookie', serializeCookie('visits', String(visits), { path: '/', sameSite: 'lax' })],
        ['set-cookie', serializeClearCookie('old', { path: '/' })],
      ])
      return [`visit ${visits}; jar: ${environ[COOKIES_KEY] === undefined ? 'none' : 'some'}`]
    }
    const { port, errors } = await listen(t, kind, bare)
    const first = await fetch(`http://127.0.0.1:${port}/`)
    t.equal(await first.text(), 'visit 1; jar: none')
    t.same(first.headers.getSetCookie(), ['visits=1; Path=/; SameSite=Lax', 'old=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT'])
    const second = await fetch(`http://127.0.0.1:${port}/`, { headers: { cookie: 'visits=1' } })
    t.equal(await second.text(), 'visit 2; jar: none')
    t.same(errors, [])
  })
}

t.test('signing without a secret says how to give one', async (t) => {
  const plain = cookies()((environ, startResponse) => {
    const jar = jarOf(environ)
    startResponse('200 OK', [['content-type', 'text/plain']])
    const out: string[] = []
    for (const attempt of [() => jar.set('s', 'v', { signed: true }), () => jar.unsign('v.sig')]) {
      try {
        attempt()
        out.push('accepted')
      } catch (error) {
        out.push((error as Error).message)
      }
    }
    return [`${jar.signing}\n${out.join('\n')}`]
  })
  const { port, errors } = await listen(t, 'postern', plain)
  const res = await fetch(`http://127.0.0.1:${port}/`)
  t.equal(
    await res.text(),
    'false\ncookies: cannot sign a cookie without a secret: use cookies({ secret })\ncookies: cannot check a signed cookie without a secret: use cookies({ secret })',
  )
  t.same(res.headers.getSetCookie(), [])
  t.same(errors, [])
})

t.test('a custom decode is used for the jar', async (t) => {
  const upper = cookies({ parse: { decode: (v) => (v === 'skip' ? undefined : v.toUpperCase()) } })((environ, startResponse) =>
    sendJson(startResponse, Object.fromEntries(Object.entries(jarOf(environ).cookies).filter(([, v]) => v !== undefined))),
  )
  const { port } = await listen(t, 'postern', upper)
  const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { cookie: 'a=skip; b=x; a=later' } })
  t.same(await res.json(), { a: 'LATER', b: 'X' }, 'a skipped value lets a later cookie of that name win')
})

t.test('bad secrets and options are refused when the middleware is made', async (t) => {
  const bad: unknown[] = ['', [], [''], ['ok', 7], 42, { key: 'x' }, null]
  for (const secret of bad) {
    t.throws(() => cookies({ secret: secret as string }), TypeError, `secret ${JSON.stringify(secret)}`)
  }
  t.throws(() => cookies({ secret: [] }), { message: 'cookies: `secret` must be a non-empty string or a non-empty array of them (the first signs, all verify)' })
  t.throws(() => cookies({ secret: ['ok', ''] }), { message: 'cookies: secret #1 must be a non-empty string, got an empty string' })
  t.throws(() => cookies({ secret: ['ok', 7] as unknown as string[] }), { message: 'cookies: secret #1 must be a non-empty string, got number' })
  t.throws(() => cookies({ parse: { decode: 'no' as unknown as () => string } }), { message: 'cookies: `parse.decode` must be a function' })
  t.throws(() => signCookie('v', []), TypeError)
  t.throws(() => unsignCookie('v', ''), TypeError)
  t.throws(() => signCookie(7 as unknown as string, 's'), { message: 'cookies: a signed value must be a string, got number' })
})

t.test('the plain sign/unsign functions rotate keys like the jar', async (t) => {
  const signed = signCookie('v', ['k2', 'k1'])
  t.equal(signed, fastifyCookie.sign('v', 'k2'), 'same signature as @fastify/cookie')
  t.same(unsignCookie(signed, ['k2', 'k1']), { valid: true, renew: false, value: 'v' })
  t.same(unsignCookie(fastifyCookie.sign('v', 'k1'), ['k2', 'k1']), { valid: true, renew: true, value: 'v' })
  t.same(unsignCookie('v.a.b', 'k1'), { valid: false, renew: false, value: null })
  t.same(unsignCookie('a.b.c', 'k1'), { valid: false, renew: false, value: null })
  t.same(unsignCookie(undefined, 'k1'), { valid: false, renew: false, value: null })
  t.equal(unsignCookie(signCookie('a.b', 'k'), 'k').value, 'a.b', 'a value with dots round-trips')
})
