/**
 * Persistent connections (RFC 9112 §9.3): HTTP/1.1 stays open unless either
 * side says `Connection: close`; HTTP/1.0 closes unless the client asks for
 * keep-alive, and a 1.0 response of unknown length is close-delimited
 * because a 1.0 client cannot read chunked.
 */
import t from 'tap'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { connectionHas, header } from '../helpers/raw.js'
import { serve } from '../helpers/server.js'

const app: GatewayApp = (environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']])
  if (environ.PATH_INFO === '/stream') {
    // Length unknown until the end: the chunks come over time.
    return (async function* () {
      yield 'streamed '
      await new Promise((r) => setTimeout(r, 5))
      yield 'body'
    })()
  }
  return [`path=${environ.PATH_INFO}`]
}

t.test('HTTP/1.1 keeps the connection open by default', async (t) => {
  const s = await serve(t, app)
  const c = await s.connect()
  c.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\n')
  const r1 = await c.read()
  t.equal(r1.responses[0]?.status, 200, r1.raw)
  t.notOk(connectionHas(r1.responses[0]!, 'close'), 'no Connection: close')
  t.notOk(r1.closed)
  c.write('GET /2 HTTP/1.1\r\nHost: x\r\n\r\n')
  const r2 = await c.read()
  t.equal(r2.responses[0]?.body.toString(), 'path=/2', r2.raw)
  t.notOk(r2.closed, 'still open after the second response')
})

t.test('Connection: close from the client: response says close, server closes', async (t) => {
  const s = await serve(t, app)
  const c = await s.connect()
  c.write('GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  const r = await c.read()
  t.equal(r.responses[0]?.status, 200, r.raw)
  t.equal(r.responses[0]?.body.toString(), 'path=/bye')
  t.ok(connectionHas(r.responses[0]!, 'close'), 'Connection: close in the response')
  t.ok(await c.closed(), 'server closed the connection')
})

t.test('Connection option tokens are case-insensitive and may be listed', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange('GET / HTTP/1.1\r\nHost: x\r\nConnection: TE, Close\r\n\r\n', { waitClose: true })
  t.equal(r.responses[0]?.status, 200, r.raw)
  t.ok(connectionHas(r.responses[0]!, 'close'))
  t.ok(r.closed)
})

t.test('Connection: close with a chunked response: complete body, then close', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange('GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { waitClose: true })
  const res = r.responses[0]!
  t.equal(res.body.toString(), 'streamed body', r.raw)
  t.ok(res.complete)
  t.ok(connectionHas(res, 'close'))
  t.ok(r.closed)
})

t.test('HTTP/1.0 closes by default', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange('GET /old HTTP/1.0\r\n\r\n', { waitClose: true })
  const res = r.responses[0]!
  t.equal(res.status, 200, r.raw)
  t.equal(res.body.toString(), 'path=/old')
  t.notOk(connectionHas(res, 'keep-alive'), 'does not claim keep-alive')
  t.ok(r.closed, 'server closed after the response')
})

t.test('HTTP/1.0 with Connection: keep-alive stays open and says keep-alive', async (t) => {
  const s = await serve(t, app)
  const c = await s.connect()
  c.write('GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
  const r1 = await c.read()
  const res = r1.responses[0]!
  t.equal(res.status, 200, r1.raw)
  t.ok(connectionHas(res, 'keep-alive'), 'response says Connection: keep-alive')
  t.equal(header(res, 'content-length'), String('path=/a'.length))
  t.notOk(r1.closed)
  c.write('GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
  const r2 = await c.read()
  t.equal(r2.responses[0]?.body.toString(), 'path=/b', r2.raw)
  c.write('GET /c HTTP/1.0\r\n\r\n')
  const r3 = await c.read()
  t.equal(r3.responses[0]?.body.toString(), 'path=/c', r3.raw)
  t.ok(await c.closed(), 'a 1.0 request without keep-alive ends the connection')
})

t.test('HTTP/1.0 response of unknown length: close-delimited, never chunked', async (t) => {
  const s = await serve(t, app)
  for (const request of ['GET /stream HTTP/1.0\r\n\r\n', 'GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n']) {
    const r = await s.exchange(request, { waitClose: true })
    const res = r.responses[0]
    t.ok(res, r.raw)
    if (!res) continue
    t.equal(res.status, 200)
    t.equal(header(res, 'transfer-encoding'), undefined, 'no chunked to a 1.0 client')
    t.equal(res.framing, 'close')
    t.equal(res.body.toString(), 'streamed body')
    t.notOk(connectionHas(res, 'keep-alive'), 'cannot keep alive a close-delimited response')
    t.ok(r.closed)
  }
})

t.test('HTTP/1.0 request with a Content-Length body', async (t) => {
  const s = await serve(t, async (environ, startResponse) => {
    const body = await environ['gateway.input'].text()
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return [`got ${body}`]
  })
  const r = await s.exchange('POST /p HTTP/1.0\r\nContent-Length: 4\r\n\r\ndata', { waitClose: true })
  t.equal(r.responses[0]?.body.toString(), 'got data', r.raw)
  t.ok(r.closed)
})

t.test('the client closing its side after a request still gets the response', async (t) => {
  const s = await serve(t, app)
  const c = await s.connect()
  c.write('GET /half HTTP/1.1\r\nHost: x\r\n\r\n')
  c.end()
  const r = await c.read()
  t.equal(r.responses[0]?.body.toString(), 'path=/half', r.raw)
})

t.test('pipelined requests then a FIN while one is still being answered: the client has left', async (t) => {
  // TCP cannot tell a half-close from a close without writing, so a FIN with requests still
  // unanswered means the client left (as node:http and nginx take it): what was ready goes out,
  // the app still streaming is stopped (its body closed), nothing after it is sent, and the
  // socket is released at once instead of waiting on an app for a client that is gone.
  let closedBodies = 0
  const s = await serve(t, (environ, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    if (environ.PATH_INFO !== '/slow') return [`path=${environ.PATH_INFO}`]
    let timer: NodeJS.Timeout | undefined
    return {
      async *[Symbol.asyncIterator]() {
        yield 'first '
        await new Promise((r) => (timer = setTimeout(r, 2000)))
        yield 'never'
      },
      close() {
        clearTimeout(timer)
        closedBodies++
      },
    }
  })
  const c = await s.connect()
  c.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n')
  await new Promise((r) => setTimeout(r, 50))
  c.end()
  t.ok(await c.closed(), 'the server closes at once, without waiting for the slow app')
  const raw = c.received
  t.match(raw, /path=\/1/, 'the response that was ready before the FIN was sent')
  t.notMatch(raw, /never|path=\/3/, 'nothing is produced for a client that left')
  await new Promise((r) => setTimeout(r, 50))
  t.equal(closedBodies, 1, "the abandoned body's close() was called")
})
