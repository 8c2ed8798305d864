/**
 * The server answers a plain GET, over raw bytes and through a real client
 * (global fetch), and builds the environ the gateway spec promises: CGI
 * variables, HTTP_* headers, decoded PATH_INFO, raw QUERY_STRING/REQUEST_URI.
 */
import t from 'tap'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { header } from '../helpers/raw.js'
import { serve, echoEnviron, json, textApp } from '../helpers/server.js'

t.test('GET over raw bytes: 200 with the app body, Content-Length framed', async (t) => {
  const s = await serve(t, textApp('hello world'))
  const r = await s.exchange('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
  t.equal(r.responses.length, 1, r.raw)
  const res = r.responses[0]!
  t.equal(res.version, 'HTTP/1.1')
  t.equal(res.status, 200)
  t.equal(res.reason, 'OK')
  t.equal(header(res, 'content-type'), 'text/plain')
  t.equal(header(res, 'content-length'), '11')
  t.equal(res.body.toString(), 'hello world')
})

t.test('GET through global fetch', async (t) => {
  const s = await serve(t, textApp('hi from postern'))
  const res = await fetch(`http://127.0.0.1:${s.port}/hello`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/plain')
  t.equal(await res.text(), 'hi from postern')
})

t.test('POST through global fetch: the app reads the body', async (t) => {
  const s = await serve(t, async (environ, startResponse) => {
    const body = await environ['gateway.input'].text()
    startResponse('201 Created', [['Content-Type', 'text/plain']])
    return [`${environ.REQUEST_METHOD} ${environ.CONTENT_TYPE} ${body}`]
  })
  const res = await fetch(`http://127.0.0.1:${s.port}/items`, { method: 'POST', headers: { 'content-type': 'text/x-test' }, body: 'payload' })
  t.equal(res.status, 201)
  t.equal(await res.text(), 'POST text/x-test payload')
})

t.test('environ: CGI variables, decoded PATH_INFO, raw QUERY_STRING and REQUEST_URI', async (t) => {
  const s = await serve(t, echoEnviron)
  const r = await s.exchange('GET /a%20b/caf%C3%A9?x=1&y=%20z HTTP/1.1\r\n' + 'Host: example.test:8080\r\n' + 'User-Agent: raw-test/1.0\r\n' + '\r\n')
  const res = r.responses[0]
  t.ok(res, r.raw)
  if (!res) return
  t.equal(res.status, 200)
  const env = json(res.body)
  t.equal(env.REQUEST_METHOD, 'GET')
  t.equal(env.SCRIPT_NAME, '')
  t.equal(env.PATH_INFO, '/a b/café')
  t.equal(env.QUERY_STRING, 'x=1&y=%20z')
  t.equal(env.REQUEST_URI, '/a%20b/caf%C3%A9?x=1&y=%20z')
  t.equal(env.SERVER_PROTOCOL, 'HTTP/1.1')
  t.equal(env.SERVER_PORT, String(s.port))
  t.equal(env.REMOTE_ADDR, '127.0.0.1')
  t.match(env.REMOTE_PORT, /^\d+$/)
  t.type(env.SERVER_NAME, 'string')
  t.equal(env.HTTP_HOST, 'example.test:8080')
  t.equal(env.HTTP_USER_AGENT, 'raw-test/1.0')
  t.equal(env.CONTENT_TYPE, '')
  t.equal(env.CONTENT_LENGTH, '')
  t.equal(env['input.length'], 0, 'no body: input.length is 0')
  t.equal(env['gateway.url_scheme'], 'http')
  t.same(env['gateway.version'], [1, 0])
})

t.test('environ: no query gives empty QUERY_STRING; bare "?" too', async (t) => {
  const s = await serve(t, echoEnviron)
  for (const [target, path, query] of [
    ['/plain', '/plain', ''],
    ['/q?', '/q', ''],
    ['/', '/', ''],
  ] as const) {
    const r = await s.exchange(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`)
    const env = json(r.responses[0]?.body ?? Buffer.from('{}'))
    t.equal(env.PATH_INFO, path, `${target} PATH_INFO`)
    t.equal(env.QUERY_STRING, query, `${target} QUERY_STRING`)
    t.equal(env.REQUEST_URI, target, `${target} REQUEST_URI`)
  }
})

t.test('environ: headers become HTTP_*, repeated ones joined, Content-* as CGI keys, "_" names dropped', async (t) => {
  const s = await serve(t, echoEnviron)
  const r = await s.exchange(
    'POST /h HTTP/1.1\r\n' +
      'Host: localhost\r\n' +
      'X-Multi: one\r\n' +
      'Accept: text/html\r\n' +
      'X-Multi: two\r\n' +
      'Cookie: a=1\r\n' +
      'Cookie: b=2\r\n' +
      'X-Padded:    spaced value \t \r\n' +
      'X-Empty:\r\n' +
      'My_Header: smuggled\r\n' +
      'My-Header: kept\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      'Content-Length: 3\r\n' +
      '\r\n' +
      'abc',
  )
  const res = r.responses[0]
  t.ok(res, r.raw)
  if (!res) return
  t.equal(res.status, 200)
  const env = json(res.body)
  t.equal(env.HTTP_X_MULTI, 'one, two')
  t.equal(env.HTTP_COOKIE, 'a=1; b=2')
  t.equal(env.HTTP_ACCEPT, 'text/html')
  t.equal(env.HTTP_X_PADDED, 'spaced value', 'leading and trailing OWS removed')
  t.equal(env.HTTP_X_EMPTY, '', 'empty field value kept as empty string')
  t.equal(env.HTTP_MY_HEADER, 'kept', 'the "_" header is dropped, not merged with My-Header')
  t.equal(env.CONTENT_TYPE, 'text/plain; charset=utf-8')
  t.equal(env.CONTENT_LENGTH, '3')
  t.equal(env['input.length'], 3)
  t.notOk('HTTP_CONTENT_TYPE' in env, 'no HTTP_CONTENT_TYPE')
  t.notOk('HTTP_CONTENT_LENGTH' in env, 'no HTTP_CONTENT_LENGTH')
  t.equal(env.REQUEST_METHOD, 'POST')
})

t.test('environ: header names are case-insensitive', async (t) => {
  const s = await serve(t, echoEnviron)
  const r = await s.exchange('GET / HTTP/1.1\r\nhOsT: localhost\r\nx-lower: 1\r\nX-LOWER: 2\r\n\r\n')
  const env = json(r.responses[0]?.body ?? Buffer.from('{}'))
  t.equal(env.HTTP_HOST, 'localhost')
  t.equal(env.HTTP_X_LOWER, '1, 2')
})

t.test('environ: absolute-form target gives PATH_INFO from it and Host from its authority', async (t) => {
  const s = await serve(t, echoEnviron)
  const r = await s.exchange('GET http://example.com/x?y HTTP/1.1\r\nHost: other.test\r\n\r\n')
  const res = r.responses[0]
  t.ok(res, r.raw)
  if (!res) return
  t.equal(res.status, 200)
  const env = json(res.body)
  t.equal(env.PATH_INFO, '/x')
  t.equal(env.QUERY_STRING, 'y')
  t.equal(env.REQUEST_URI, 'http://example.com/x?y')
  t.equal(env.HTTP_HOST, 'example.com', 'RFC 9112 §3.2.2: the target authority replaces Host')
})

t.test('environ: HTTP/1.0 request', async (t) => {
  const s = await serve(t, echoEnviron)
  const r = await s.exchange('GET /old HTTP/1.0\r\n\r\n', { waitClose: true })
  const res = r.responses[0]
  t.ok(res, r.raw)
  if (!res) return
  t.equal(res.status, 200)
  const env = json(res.body)
  t.equal(env.SERVER_PROTOCOL, 'HTTP/1.0')
  t.equal(env.PATH_INFO, '/old')
})

t.test('methods are passed through as sent', async (t) => {
  const s = await serve(t, echoEnviron)
  for (const method of ['GET', 'DELETE', 'OPTIONS', 'PATCH', 'PROPFIND', 'X-CUSTOM']) {
    const r = await s.exchange(`${method} /m HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`)
    t.equal(r.responses[0]?.status, 200, method)
    t.equal(json(r.responses[0]?.body ?? Buffer.from('{}')).REQUEST_METHOD, method)
  }
})

t.test('OPTIONS * (asterisk-form) is accepted', async (t) => {
  const s = await serve(t, echoEnviron)
  const r = await s.exchange('OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(r.responses[0]?.status, 200, r.raw)
  const env = json(r.responses[0]?.body ?? Buffer.from('{}'))
  t.equal(env.REQUEST_METHOD, 'OPTIONS')
  t.equal(env.REQUEST_URI, '*')
})

t.test('environ: obs-text in a header value arrives as Latin-1', async (t) => {
  const s = await serve(t, echoEnviron)
  const r = await s.exchange('GET / HTTP/1.1\r\nHost: x\r\nX-Name: caf\xe9\r\n\r\n')
  t.equal(r.responses[0]?.status, 200, r.raw)
  t.equal(json(r.responses[0]?.body ?? Buffer.from('{}')).HTTP_X_NAME, 'café')
})

t.test('absolute-form with a port keeps it in HTTP_HOST', async (t) => {
  const s = await serve(t, echoEnviron)
  const r = await s.exchange('GET http://example.com:8080/p HTTP/1.1\r\nHost: example.com:8080\r\n\r\n')
  const env = json(r.responses[0]?.body ?? Buffer.from('{}'))
  t.equal(env.HTTP_HOST, 'example.com:8080', r.raw)
  t.equal(env.PATH_INFO, '/p')
})

t.test('two connections sending byte by byte at the same time do not mix', async (t) => {
  const s = await serve(t, async (environ, startResponse) => {
    const body = await environ['gateway.input'].text()
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return [`${environ.PATH_INFO} ${environ.HTTP_X_WHO} ${body}`]
  })
  const req = (who: string) =>
    `POST /${who} HTTP/1.1\r\nHost: x\r\nX-Who: ${who}\r\nContent-Length: 5\r\n\r\n${who.slice(0, 5).padEnd(5, '.')}GET /again-${who} HTTP/1.1\r\nHost: x\r\nX-Who: ${who}\r\n\r\n`
  const [a, b] = await Promise.all([s.exchange(req('alpha'), { splits: 1, responses: 2 }), s.exchange(req('bravo'), { splits: 1, responses: 2 })])
  t.same(
    a.responses.map((x) => x.body.toString()),
    ['/alpha alpha alpha', '/again-alpha alpha '],
    a.raw,
  )
  t.same(
    b.responses.map((x) => x.body.toString()),
    ['/bravo bravo bravo', '/again-bravo bravo '],
    b.raw,
  )
})

t.test('an empty Host is allowed (RFC 9110 §7.2)', async (t) => {
  const s = await serve(t, echoEnviron)
  const r = await s.exchange('GET / HTTP/1.1\r\nHost:\r\n\r\n')
  t.equal(r.responses[0]?.status, 200, r.raw)
  t.equal(json(r.responses[0]?.body ?? Buffer.from('{}')).HTTP_HOST, '')
})

t.test('environ: gateway flags and gateway.errors', async (t) => {
  const app: GatewayApp = (environ, startResponse) => {
    environ['gateway.errors'].write('app says hello-log')
    environ['gateway.errors'].flush()
    startResponse('200 OK', [['Content-Type', 'application/json']])
    return [
      JSON.stringify({
        multithread: environ['gateway.multithread'],
        multiprocess: environ['gateway.multiprocess'],
        run_once: environ['gateway.run_once'],
      }),
    ]
  }
  const single = await serve(t, app)
  const r1 = await single.exchange('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.same(json(r1.responses[0]?.body ?? Buffer.from('{}')), { multithread: false, multiprocess: false, run_once: false }, r1.raw)
  t.match(single.errors.join('\n'), /hello-log/, 'gateway.errors goes to the server error stream')
  const multi = await serve(t, app, { multiprocess: true })
  const r2 = await multi.exchange('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(json(r2.responses[0]?.body ?? Buffer.from('{}')).multiprocess, true, 'multiprocess option')
})
