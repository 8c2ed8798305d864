/**
 * Response framing is the server's job (RFC 9112 §6): Content-Length when the
 * length is known up front, chunked on HTTP/1.1 otherwise, no body for HEAD,
 * 204 and 304, and Date/Server on every response. Each response is followed
 * by another request on the same connection, so a stray body byte shows up
 * as a broken second response.
 */
import t from 'tap'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { header, headerCount } from '../helpers/raw.js'
import { serve } from '../helpers/server.js'

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`
const HEAD = (path: string) => `HEAD ${path} HTTP/1.1\r\nHost: x\r\n\r\n`

/** One app with a route per body shape. */
const shapes: GatewayApp = (environ, startResponse) => {
  const path = environ.PATH_INFO
  const type: [string, string] = ['Content-Type', 'text/plain']
  switch (path) {
    case '/one':
      startResponse('200 OK', [type])
      return ['hello']
    case '/many':
      startResponse('200 OK', [type])
      return ['he', 'll', 'o']
    case '/empty':
      startResponse('200 OK', [type])
      return []
    case '/utf8':
      startResponse('200 OK', [type])
      return ['héllo ✓']
    case '/bytes':
      startResponse('200 OK', [['Content-Type', 'application/octet-stream']])
      return [new Uint8Array([0, 1, 2, 255])]
    case '/gen':
      startResponse('200 OK', [type])
      return (function* () {
        yield 'a'
        yield 'bc'
        yield 'def'
      })()
    case '/stream':
      // Length unknown until the end: the chunks come over time.
      startResponse('200 OK', [type])
      return (async function* () {
        yield 'a'
        await new Promise((r) => setTimeout(r, 5))
        yield 'bc'
        await new Promise((r) => setTimeout(r, 5))
        yield 'def'
      })()
    case '/gen-empty-chunks':
      startResponse('200 OK', [type])
      return (async function* () {
        yield 'a'
        await new Promise((r) => setTimeout(r, 5))
        yield ''
        yield new Uint8Array(0)
        await new Promise((r) => setTimeout(r, 5))
        yield 'b'
      })()
    case '/async-gen':
      startResponse('200 OK', [type])
      return (async function* () {
        yield 'x'
        await new Promise((r) => setTimeout(r, 5))
        yield 'y'
      })()
    case '/gen-with-length':
      startResponse('200 OK', [type, ['Content-Length', '6']])
      return (function* () {
        yield 'abc'
        yield 'def'
      })()
    case '/write': {
      const write = startResponse('200 OK', [type])
      write('first ')
      return ['second']
    }
    case '/204':
      startResponse('204 No Content', [])
      return ['must not be sent']
    case '/304':
      startResponse('304 Not Modified', [['ETag', '"v1"']])
      return ['must not be sent']
    case '/async-app':
      return Promise.resolve().then(() => {
        startResponse('200 OK', [type])
        return ['from a promise']
      })
    case '/set-cookies':
      startResponse('200 OK', [type, ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']])
      return ['ok']
    default:
      startResponse('404 Not Found', [type])
      return ['not found']
  }
}

t.test('array body with one chunk: Content-Length, no chunked', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/one') + GET('/end'), { responses: 2 })
  const res = r.responses[0]!
  t.equal(res.status, 200, r.raw)
  t.equal(header(res, 'content-length'), '5')
  t.equal(header(res, 'transfer-encoding'), undefined)
  t.equal(res.body.toString(), 'hello')
  t.equal(r.responses[1]?.status, 404, 'next response parses cleanly')
})

t.test('array body with several chunks: Content-Length of their sum', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/many'))
  const res = r.responses[0]!
  t.equal(header(res, 'content-length'), '5', r.raw)
  t.equal(header(res, 'transfer-encoding'), undefined)
  t.equal(res.body.toString(), 'hello')
})

t.test('empty array body: Content-Length: 0', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/empty') + GET('/end'), { responses: 2 })
  t.equal(header(r.responses[0]!, 'content-length'), '0', r.raw)
  t.equal(r.responses[0]!.body.length, 0)
  t.equal(r.responses[1]?.status, 404)
})

t.test('string chunks are UTF-8 and Content-Length counts bytes', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/utf8'))
  const res = r.responses[0]!
  t.equal(header(res, 'content-length'), String(Buffer.byteLength('héllo ✓')), r.raw)
  t.equal(res.body.toString('utf8'), 'héllo ✓')
})

t.test('Uint8Array chunks are sent as is', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/bytes'))
  t.same([...r.responses[0]!.body], [0, 1, 2, 255], r.raw)
})

t.test('streamed body of unknown length on HTTP/1.1: chunked', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/stream') + GET('/end'), { responses: 2 })
  const res = r.responses[0]!
  t.equal(res.status, 200, r.raw)
  t.equal(header(res, 'transfer-encoding'), 'chunked')
  t.equal(header(res, 'content-length'), undefined)
  t.equal(res.framing, 'chunked')
  t.equal(res.body.toString(), 'abcdef')
  t.ok(res.complete)
  t.equal(r.responses[1]?.status, 404)
})

t.test('sync generator body: complete and framed (the server may gather it for Content-Length)', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/gen') + GET('/end'), { responses: 2 })
  const res = r.responses[0]!
  t.equal(res.status, 200, r.raw)
  t.ok(res.framing === 'chunked' || res.framing === 'length', `framed: ${res.framing}`)
  t.equal(res.body.toString(), 'abcdef')
  t.equal(r.responses[1]?.status, 404)
})

t.test('empty chunks from the body do not end a chunked response early', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/gen-empty-chunks') + GET('/end'), { responses: 2 })
  t.equal(r.responses[0]?.body.toString(), 'ab', r.raw)
  t.equal(r.responses[1]?.status, 404, 'second response intact')
})

t.test('async generator body', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/async-gen'))
  t.equal(r.responses[0]?.body.toString(), 'xy', r.raw)
})

t.test('app-set Content-Length with a generator: sent as is, not chunked', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/gen-with-length') + GET('/end'), { responses: 2 })
  const res = r.responses[0]!
  t.equal(header(res, 'content-length'), '6', r.raw)
  t.equal(headerCount(res, 'content-length'), 1)
  t.equal(header(res, 'transfer-encoding'), undefined)
  t.equal(res.body.toString(), 'abcdef')
  t.equal(r.responses[1]?.status, 404)
})

t.test('write() chunks come before the returned body', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/write'))
  t.equal(r.responses[0]?.body.toString(), 'first second', r.raw)
})

t.test('promise of a body', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/async-app'))
  t.equal(r.responses[0]?.body.toString(), 'from a promise', r.raw)
})

t.test('repeated response headers are sent repeatedly', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/set-cookies'))
  const res = r.responses[0]!
  t.same(
    res.headers.filter(([n]) => n.toLowerCase() === 'set-cookie').map(([, v]) => v),
    ['a=1', 'b=2'],
    r.raw,
  )
})

t.test('HEAD gets the headers GET would get and no body', async (t) => {
  const s = await serve(t, shapes)
  const get = await s.exchange(GET('/one'))
  const r = await s.exchange(HEAD('/one') + GET('/end'), { responses: 2 })
  const head = r.responses[0]!
  t.equal(head.status, 200, r.raw)
  t.equal(header(head, 'content-length'), header(get.responses[0]!, 'content-length'), 'same Content-Length as GET')
  t.equal(header(head, 'content-type'), 'text/plain')
  t.equal(head.body.length, 0)
  t.equal(r.responses[1]?.status, 404, 'no body bytes leaked before the next response')
})

t.test('HEAD of a streamed body: no body bytes, connection still usable', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(HEAD('/stream') + GET('/end'), { responses: 2 })
  t.equal(r.responses[0]?.status, 200, r.raw)
  t.equal(r.responses[0]?.body.length, 0)
  t.equal(r.responses[1]?.status, 404)
})

t.test('204: no body, no Content-Length, no Transfer-Encoding', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/204') + GET('/end'), { responses: 2 })
  const res = r.responses[0]!
  t.equal(res.status, 204, r.raw)
  t.equal(header(res, 'content-length'), undefined, 'RFC 9110 §8.6')
  t.equal(header(res, 'transfer-encoding'), undefined, 'RFC 9112 §6.1')
  t.notMatch(r.raw, /must not be sent/)
  t.equal(r.responses[1]?.status, 404)
})

t.test('304: no body', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/304') + GET('/end'), { responses: 2 })
  const res = r.responses[0]!
  t.equal(res.status, 304, r.raw)
  t.equal(header(res, 'etag'), '"v1"')
  t.equal(header(res, 'transfer-encoding'), undefined)
  t.notMatch(r.raw, /must not be sent/)
  t.equal(r.responses[1]?.status, 404)
})

t.test('Date (IMF-fixdate) and Server headers are present', async (t) => {
  const s = await serve(t, shapes)
  const r = await s.exchange(GET('/one'))
  const res = r.responses[0]!
  const date = header(res, 'date')
  t.match(date, /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/, r.raw)
  t.ok(Math.abs(Date.parse(date ?? '') - Date.now()) < 60_000, 'Date is now')
  t.equal(headerCount(res, 'date'), 1)
  t.equal(header(res, 'server'), 'postern')
})

t.test('serverHeader option: custom value, or false for none', async (t) => {
  const custom = await serve(t, shapes, { serverHeader: 'edge/1' })
  const r1 = await custom.exchange(GET('/one'))
  t.equal(header(r1.responses[0]!, 'server'), 'edge/1', r1.raw)
  const none = await serve(t, shapes, { serverHeader: false })
  const r2 = await none.exchange(GET('/one'))
  t.equal(header(r2.responses[0]!, 'server'), undefined, r2.raw)
  t.ok(header(r2.responses[0]!, 'date'), 'Date still sent')
})

t.test('app-set Date and Server are not sent twice', async (t) => {
  const s = await serve(t, (_environ, startResponse) => {
    startResponse('200 OK', [
      ['Date', 'Thu, 01 Jan 2015 00:00:00 GMT'],
      ['Server', 'app/2'],
    ])
    return ['x']
  })
  const r = await s.exchange(GET('/'))
  const res = r.responses[0]!
  t.equal(headerCount(res, 'date'), 1, `one Date (RFC 9110 §5.3: not a list field): ${r.raw}`)
  t.equal(headerCount(res, 'server'), 1, 'one Server')
})

t.test('204 with an app-set Content-Length: 0 still has no Content-Length', async (t) => {
  const s = await serve(t, (_environ, startResponse) => {
    startResponse('204 No Content', [['Content-Length', '0']])
    return []
  })
  const r = await s.exchange(GET('/') + GET('/'), { responses: 2 })
  t.equal(r.responses[0]?.status, 204, r.raw)
  t.equal(header(r.responses[0]!, 'content-length'), undefined, 'RFC 9110 §8.6: MUST NOT send Content-Length in a 204')
  t.equal(r.responses[1]?.status, 204)
})

t.test('header values with obs-text are sent as Latin-1 bytes', async (t) => {
  const s = await serve(t, (_environ, startResponse) => {
    startResponse('200 OK', [['X-Name', 'café']])
    return ['x']
  })
  const c = await s.connect()
  c.write(GET('/'))
  const r = await c.read()
  t.equal(r.responses[0]?.status, 200, r.raw)
  t.ok(c.received.includes('X-Name: caf\xe9\r\n'), 'é sent as the single byte 0xE9')
})

t.test('a 500-class status from the app is sent as given, with its body', async (t) => {
  const s = await serve(t, (_environ, startResponse) => {
    startResponse('503 Service Unavailable', [['Retry-After', '5']])
    return ['later']
  })
  const r = await s.exchange(GET('/'))
  t.equal(r.responses[0]?.status, 503, r.raw)
  t.equal(r.responses[0]?.reason, 'Service Unavailable')
  t.equal(header(r.responses[0]!, 'retry-after'), '5')
  t.equal(r.responses[0]?.body.toString(), 'later')
})

t.test('a custom or empty reason phrase is sent as given', async (t) => {
  const s = await serve(t, (environ, startResponse) => {
    startResponse(environ.PATH_INFO === '/empty' ? '299 ' : '299 Custom Thing', [])
    return ['x']
  })
  const r = await s.exchange(GET('/custom') + GET('/empty'), { responses: 2 })
  t.match(r.raw, /^HTTP\/1\.1 299 Custom Thing\r\n/)
  t.equal(r.responses[1]?.status, 299)
  t.equal(r.responses[1]?.reason, '')
})

t.test('HEAD answered with the GET Content-Length and an empty body: sent as given', async (t) => {
  const s = await serve(t, (environ, startResponse) => {
    startResponse('200 OK', [
      ['Content-Type', 'text/plain'],
      ['Content-Length', '1234'],
    ])
    return environ.REQUEST_METHOD === 'HEAD' ? [] : ['x'.repeat(1234)]
  })
  const r = await s.exchange(HEAD('/') + GET('/'), { responses: 2 })
  t.equal(r.responses[0]?.status, 200, `RFC 9110 §9.3.2: ${JSON.stringify(r.raw.slice(0, 300))}`)
  t.equal(header(r.responses[0]!, 'content-length'), '1234')
  t.equal(r.responses[1]?.body.length, 1234)
})

t.test('304 with the representation Content-Length and an empty body: not an error', async (t) => {
  const s = await serve(t, (_environ, startResponse) => {
    startResponse('304 Not Modified', [
      ['ETag', '"v"'],
      ['Content-Length', '1234'],
    ])
    return []
  })
  const r = await s.exchange(GET('/') + GET('/'), { responses: 2 })
  t.equal(r.responses[0]?.status, 304, JSON.stringify(r.raw.slice(0, 300)))
  t.equal(r.responses[1]?.status, 304)
})
