/**
 * requestLogger() on real sockets, on postern's server and on node:http,
 * with no framework: one JSON line per request (method, url, status,
 * duration, reqId), the id from X-Request-Id when it is a plausible one and
 * generated otherwise, the request's child logger and error stream for the
 * app, exactly one line for a client that leaves mid-stream, and one line
 * per pipelined request. A WebSocket request is one line at the upgrade
 * (101, the time to it), on postern's server and node:http.
 */
import t from 'tap'
import { once } from 'node:events'
import { WebSocket } from 'ws'
import type { Environ, GatewayApp, Middleware } from '../../lib/gateway/spec.js'
import { GatewayError } from '../../lib/gateway/spec.js'
import { reportError } from '../../lib/gateway/errors.js'
import { validate } from '../../lib/gateway/validate.js'
import type { GatewayViolation } from '../../lib/gateway/rules.js'
import { LOG_KEY, MAX_REQUEST_ID_LENGTH, REQUEST_ID_KEY, type Logger, isUsableRequestId, requestLogger } from '../../plugins/logger.js'
import { RawClient, exchange, header } from '../helpers/raw.js'
import { SERVERS, listen, rawRequest } from '../fixtures/proxy-client.js'
import { capture } from '../fixtures/log-capture.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** Answers by path: `/missing` 404, `/made` 201, `/stream` a sync generator, else 200 with the id the app saw. */
const app: GatewayApp = (environ, startResponse) => {
  const path = environ.PATH_INFO
  if (path === '/missing') {
    startResponse('404 Not Found', [['Content-Type', 'text/plain']])
    return ['no such thing']
  }
  if (path === '/made') {
    startResponse('201 Created', [['Content-Type', 'text/plain']])
    return ['made']
  }
  if (path === '/stream') {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return (function* () {
      yield 'a'
      yield 'b'
    })()
  }
  ;(environ[LOG_KEY] as Logger).info({ step: 'inside' }, 'the app speaks')
  startResponse('200 OK', [['Content-Type', 'text/plain']])
  return [`id ${String(environ[REQUEST_ID_KEY])}`]
}

/** In front of the logger, as a lenient server or adapter might: puts `?id=` (percent-decoded) into X-Request-Id. */
const idFromQuery: Middleware = (inner) => (environ, startResponse) => {
  const id = new URLSearchParams(environ.QUERY_STRING).get('id')
  if (id !== null) environ.HTTP_X_REQUEST_ID = id
  return inner(environ, startResponse)
}

for (const kind of SERVERS) {
  t.test(`${kind}: one line per request, with method, url, status, duration and reqId`, async (t) => {
    const log = capture()
    const { port, errors } = await listen(t, kind, requestLogger({ logger: log.logger })(app))
    const before = performance.now()
    const res = await fetch(`http://127.0.0.1:${port}/hello?x=1`)
    const body = await res.text()
    const elapsed = performance.now() - before
    t.equal(res.status, 200)
    await log.until(2)
    const [inside, line] = log.lines
    t.equal(log.lines.length, 2, 'the app’s line and the request’s line, nothing more')
    t.equal(line!.msg, 'request completed')
    t.equal(line!.level, 30, 'info')
    t.match(line!.reqId, UUID, 'a generated id is a UUID')
    t.equal(body, `id ${line!.reqId}`, 'the app sees the same id in the environ')
    t.match(line!.req, { method: 'GET', url: '/hello?x=1', host: `127.0.0.1:${port}`, remoteAddress: '127.0.0.1' })
    t.type(line!.req!.remotePort, 'number')
    t.same(line!.res, { statusCode: 200 })
    t.type(line!.responseTime, 'number')
    t.ok(line!.responseTime! >= 0 && line!.responseTime! <= elapsed, `responseTime ${line!.responseTime} ms within the ${elapsed} ms the client waited`)
    t.notOk('aborted' in line!, 'a response sent whole is not aborted')
    t.notOk('err' in line!)
    t.equal(inside!.msg, 'the app speaks')
    t.equal(inside!.reqId, line!.reqId, 'the child logger carries reqId')
    t.equal(inside!['step'], 'inside')
    t.same(errors, [])
  })

  t.test(`${kind}: a slow response's duration covers the wait`, async (t) => {
    const log = capture()
    const slow: GatewayApp = async (_environ, startResponse) => {
      await new Promise((resolve) => setTimeout(resolve, 60))
      startResponse('200 OK', [['Content-Type', 'text/plain']])
      return ['late']
    }
    const { port } = await listen(t, kind, requestLogger({ logger: log.logger })(slow))
    t.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'late')
    const [line] = await log.until(1)
    t.ok(line!.responseTime! >= 50, `responseTime ${line!.responseTime} ms includes the app's 60 ms wait`)
  })

  t.test(`${kind}: the id from X-Request-Id is used, and echoed when asked`, async (t) => {
    const log = capture()
    const { port } = await listen(t, kind, requestLogger({ logger: log.logger, responseIdHeader: true })(app))
    const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { 'X-Request-Id': 'upstream-42.a_b:c' } })
    t.equal(await res.text(), 'id upstream-42.a_b:c')
    t.equal(res.headers.get('x-request-id'), 'upstream-42.a_b:c', 'echoed back')
    await log.until(2)
    t.equal(log.completed()[0]!.reqId, 'upstream-42.a_b:c')

    const generated = await fetch(`http://127.0.0.1:${port}/made`)
    await generated.text()
    t.match(generated.headers.get('x-request-id'), UUID, 'a generated id is echoed too')
    await log.until(3)
    t.equal(log.completed()[1]!.reqId, generated.headers.get('x-request-id'))
  })

  t.test(`${kind}: a hostile request id is replaced, never logged or echoed`, async (t) => {
    const log = capture()
    const { port, errors } = await listen(t, kind, idFromQuery(requestLogger({ logger: log.logger, responseIdHeader: 'Request-Id' })(app)))
    const hostile = ['a\r\nb', 'x\r\n{"level":60,"msg":"forged"}', 'a\u0000b', 'a b', 'tab\there', 'del\u007f', 'caf\u00e9', 'emoji\u{1f600}', '']
    for (const id of hostile) {
      const res = await fetch(`http://127.0.0.1:${port}/?id=${encodeURIComponent(id)}`)
      const body = await res.text()
      t.match(body, new RegExp(`^id ${UUID.source.slice(1, -1)}$`), `${JSON.stringify(id.slice(0, 40))} replaced by a generated id`)
      t.match(res.headers.get('request-id'), UUID, 'the echoed id is the generated one')
    }
    // Over the wire as sent: 10 KB, obs-text (Latin-1 bytes) and a repeated header.
    const wire = [`X-Request-Id: ${'k'.repeat(10 * 1024)}`, 'X-Request-Id: caf\u00e9', 'X-Request-Id: one\r\nX-Request-Id: two']
    for (const field of wire) {
      const res = await rawRequest({ port, head: `GET / HTTP/1.1\r\nHost: x\r\n${field}` })
      t.equal(res.status, 200)
      t.match(res.body.toString(), new RegExp(`^id ${UUID.source.slice(1, -1)}$`), `${JSON.stringify(field.slice(0, 30))} replaced`)
    }
    const longest = 'L'.repeat(MAX_REQUEST_ID_LENGTH)
    t.equal(await (await fetch(`http://127.0.0.1:${port}/?id=${longest}`)).text(), `id ${longest}`, `${MAX_REQUEST_ID_LENGTH} visible characters are kept`)
    await log.until(2 * (hostile.length + wire.length + 1))
    const ids = log.completed().map((l) => l.reqId)
    t.equal(ids.length, hostile.length + wire.length + 1)
    for (const id of ids.slice(0, -1)) t.match(id, UUID)
    t.notOk(
      log.lines.some((l) => l.level === 60 || l.msg === 'forged'),
      'a CR/LF in an id forged no line (the url is logged as sent, percent-encoded)',
    )
    t.notOk(JSON.stringify(log.lines).includes('kkkkkkkk'), 'nothing of the 10 KB id reached the log')
    t.same(errors, [])
  })

  t.test(`${kind}: generated ids are unique; requestIdHeader false ignores the header; genReqId picks the scheme`, async (t) => {
    const log = capture()
    const { port } = await listen(t, kind, requestLogger({ logger: log.logger, requestIdHeader: false })(app))
    for (let i = 0; i < 20; i++) await (await fetch(`http://127.0.0.1:${port}/made`, { headers: { 'x-request-id': 'same' } })).text()
    await log.until(20)
    const ids = log.completed().map((l) => l.reqId)
    t.equal(new Set(ids).size, 20, 'twenty requests, twenty ids')
    for (const id of ids) t.match(id, UUID, 'the header is not trusted')

    let n = 0
    const counted = capture()
    const { port: port2 } = await listen(t, kind, requestLogger({ logger: counted.logger, requestIdHeader: 'X-Trace', genReqId: () => `req-${++n}` })(app))
    await (await fetch(`http://127.0.0.1:${port2}/made`)).text()
    await (await fetch(`http://127.0.0.1:${port2}/made`, { headers: { 'x-trace': 'from-trace' } })).text()
    await (await fetch(`http://127.0.0.1:${port2}/made`, { headers: { 'x-request-id': 'not-this-one' } })).text()
    await counted.until(3)
    t.same(
      counted.completed().map((l) => l.reqId),
      ['req-1', 'from-trace', 'req-2'],
    )
  })

  t.test(`${kind}: gateway.errors goes to the request's logger with method, url, reqId and the stack`, async (t) => {
    const log = capture()
    const reporting: GatewayApp = (environ, startResponse) => {
      reportError(environ['gateway.errors'], 'request failed', new Error('kaboom'))
      startResponse('500 Internal Server Error', [['Content-Type', 'text/plain']])
      return ['sorry']
    }
    const { port, errors } = await listen(t, kind, requestLogger({ logger: log.logger })(reporting))
    const res = await fetch(`http://127.0.0.1:${port}/orders/7?x=1`, { method: 'POST', headers: { 'x-request-id': 'r-7' } })
    t.equal(res.status, 500)
    await res.text()
    await log.until(2)
    const [error, line] = log.lines
    t.equal(error!.level, 50, 'error level')
    t.equal(error!.reqId, 'r-7')
    t.same(error!.req, { method: 'POST', url: '/orders/7?x=1' })
    t.match(error!.msg, /^postern: request failed: Error: kaboom\n\s+at /, 'the message with its stack')
    t.notOk(error!.msg!.endsWith('\n'), 'no trailing newline inside the JSON line')
    t.same(line!.res, { statusCode: 500 })
    t.same(errors, [], "the server's own error stream got nothing: the log has it")
  })

  t.test(`${kind}: an app that throws: its status, err with the stack, exactly one line`, async (t) => {
    const log = capture()
    const throwing: GatewayApp = (environ) => {
      if (environ.PATH_INFO === '/gone') throw new GatewayError(404, 'no such order')
      if (environ.PATH_INFO === '/async') return Promise.reject(new Error('async kaboom'))
      throw new Error('kaboom')
    }
    const { port } = await listen(t, kind, requestLogger({ logger: log.logger })(throwing))
    t.equal((await fetch(`http://127.0.0.1:${port}/sync`)).status, 500)
    t.equal((await fetch(`http://127.0.0.1:${port}/async`, { method: 'DELETE' })).status, 500)
    t.equal((await fetch(`http://127.0.0.1:${port}/gone`)).status, 404)
    await log.until(3)
    const [sync, rejected, gone] = log.completed()
    t.match(sync, { req: { method: 'GET', url: '/sync' }, res: { statusCode: 500 }, err: { type: 'Error', message: 'kaboom' } })
    t.match(sync!.err!.stack, /^Error: kaboom\n\s+at /)
    t.match(rejected, { req: { method: 'DELETE', url: '/async' }, res: { statusCode: 500 }, err: { message: 'async kaboom' } })
    t.match(gone, { res: { statusCode: 404 }, err: { message: 'no such order' } })
    t.equal(log.lines.length, 3)
  })

  t.test(`${kind}: a body that fails mid-stream is logged once, with the status sent and the error`, async (t) => {
    const log = capture()
    const failing: GatewayApp = (environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']])
      if (environ.PATH_INFO === '/') return ['ok']
      return (async function* () {
        yield 'first part'
        throw new Error('disk gone')
      })()
    }
    const { port } = await listen(t, kind, requestLogger({ logger: log.logger })(failing))
    const client = await RawClient.connect(port)
    t.teardown(() => client.destroy())
    client.write('GET /file HTTP/1.1\r\nHost: x\r\n\r\n')
    t.ok(await client.closed(), 'the server cut the response')
    await log.until(1)
    const [line] = log.completed()
    t.match(line, { res: { statusCode: 200 }, err: { message: 'disk gone' } })
    // Another request proves no second line came for the first.
    await (await fetch(`http://127.0.0.1:${port}/`)).text()
    await log.until(2)
    t.equal(log.completed().length, 2)
  })

  t.test(`${kind}: a client that leaves mid-stream gives exactly one line, and close() reaches the app once`, async (t) => {
    const log = capture()
    let closes = 0
    let release: () => void = () => {}
    const endless: GatewayApp = (environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']])
      if (environ.PATH_INFO !== '/tail') return ['ok']
      let sent = false
      return {
        [Symbol.asyncIterator]: () => ({
          next: async () => {
            if (!sent) {
              sent = true
              return { done: false, value: 'first chunk\n' }
            }
            // Waits until the body is closed: the client left.
            await new Promise<void>((resolve) => (release = resolve))
            return { done: true, value: undefined }
          },
        }),
        close() {
          closes++
          release()
        },
      }
    }
    const { port } = await listen(t, kind, requestLogger({ logger: log.logger })(endless))
    const client = await RawClient.connect(port)
    client.write('GET /tail HTTP/1.1\r\nHost: x\r\nX-Request-Id: leaver\r\n\r\n')
    t.ok(await client.receivedText('first chunk'), 'the first chunk arrived')
    client.destroy()
    await log.until(1)
    t.match(log.completed()[0], { reqId: 'leaver', req: { url: '/tail' }, res: { statusCode: 200 }, aborted: true })
    t.equal(await (await fetch(`http://127.0.0.1:${port}/next`, { headers: { 'x-request-id': 'next' } })).text(), 'ok')
    await log.until(2)
    t.same(
      log.completed().map((l) => l.reqId),
      ['leaver', 'next'],
      'one line for the request that was left, then the next one',
    )
    t.equal(closes, 1, "the streaming body's close() was called exactly once")
  })

  t.test(`${kind}: pipelined requests each get their own line with the right status`, async (t) => {
    const log = capture()
    const { port } = await listen(t, kind, requestLogger({ logger: log.logger })(app))
    const get = (path: string, id: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${id}\r\n\r\n`
    const r = await exchange(port, get('/made', 'p1') + get('/missing', 'p2') + get('/stream', 'p3') + get('/', 'p4'), { responses: 4 })
    t.same(
      r.responses.map((x) => x.status),
      [201, 404, 200, 200],
    )
    await log.until(5)
    const byId = Object.fromEntries(log.completed().map((l) => [l.reqId, l]))
    t.same(Object.keys(byId).sort(), ['p1', 'p2', 'p3', 'p4'])
    t.match(byId, {
      p1: { req: { url: '/made' }, res: { statusCode: 201 } },
      p2: { req: { url: '/missing' }, res: { statusCode: 404 } },
      p3: { req: { url: '/stream' }, res: { statusCode: 200 } },
      p4: { req: { url: '/' }, res: { statusCode: 200 } },
    })
    t.equal(log.completed().length, 4)
  })

  t.test(`${kind}: bodies keep their kind: an array and a short sync body still carry Content-Length`, async (t) => {
    const log = capture()
    const { port } = await listen(t, kind, requestLogger({ logger: log.logger })(app))
    const whole = await rawRequest({ port, head: 'GET /made HTTP/1.1\r\nHost: x' })
    t.equal(header(whole, 'content-length'), '4')
    const stream = await rawRequest({ port, head: 'GET /stream HTTP/1.1\r\nHost: x' })
    t.equal(stream.body.toString(), 'ab')
    if (kind === 'postern') t.equal(header(stream, 'content-length'), '2', 'a sync body is still gathered and sent with its length')
    const head = await rawRequest({ port, head: 'HEAD /stream HTTP/1.1\r\nHost: x' })
    t.equal(head.body.length, 0)
    await log.until(3)
    t.same(
      log.completed().map((l) => [l.req!.method, l.res!.statusCode, 'aborted' in l]),
      [
        ['GET', 201, false],
        ['GET', 200, false],
        ['HEAD', 200, false],
      ],
    )
  })
}

t.test('the logger keeps the gateway interface on both sides (validate outside and inside)', async (t) => {
  const violations: GatewayViolation[] = []
  const onViolation = (v: GatewayViolation) => void violations.push(v)
  const log = capture()
  const stack = validate(requestLogger({ logger: log.logger, responseIdHeader: true })(validate(app, { onViolation })), { onViolation })
  const { port } = await listen(t, 'postern', stack)
  for (const path of ['/', '/made', '/missing', '/stream']) await (await fetch(`http://127.0.0.1:${port}${path}`)).text()
  await log.until(5)
  t.same(
    violations.map((v) => v.message),
    [],
    'no rule broken: the server’s environ is left as it was, close() forwarded once',
  )
})

t.test('a shared header list is not grown by the echoed id', async (t) => {
  const HEADERS: Array<[string, string]> = [['Content-Type', 'text/plain']]
  const shared: GatewayApp = (_environ, startResponse) => {
    startResponse('200 OK', HEADERS)
    return ['ok']
  }
  const log = capture()
  const { port } = await listen(t, 'postern', requestLogger({ logger: log.logger, responseIdHeader: true })(shared))
  const a = await fetch(`http://127.0.0.1:${port}/`)
  const b = await fetch(`http://127.0.0.1:${port}/`)
  t.not(a.headers.get('x-request-id'), b.headers.get('x-request-id'))
  t.equal(HEADERS.length, 1)
})

t.test('an id the app set itself is not overridden by the echo', async (t) => {
  const own: GatewayApp = (_environ, startResponse) => {
    startResponse('200 OK', [['X-Request-Id', 'app-chosen']])
    return ['ok']
  }
  const { port } = await listen(t, 'postern', requestLogger({ logger: capture().logger, responseIdHeader: true })(own))
  const res = await rawRequest({ port, head: 'GET / HTTP/1.1\r\nHost: x' })
  t.equal(header(res, 'x-request-id'), 'app-chosen')
})

t.test('bad options are refused at once, saying what was wrong', async (t) => {
  t.throws(() => requestLogger({ requestIdHeader: 'bad header' }), { name: 'TypeError', message: /requestIdHeader must be a header name or false/ })
  t.throws(() => requestLogger({ responseIdHeader: 'a:b' }), { name: 'TypeError', message: /responseIdHeader must be/ })
  t.throws(() => requestLogger({ genReqId: 'uuid' as unknown as () => string }), { name: 'TypeError', message: /genReqId must be a function/ })
  t.throws(() => requestLogger({ logger: 5 as unknown as true }), { name: 'TypeError', message: /logger must be true, pino options or a pino logger, got number/ })
})

t.test('isUsableRequestId: visible ASCII, 1 to 128 characters', async (t) => {
  for (const ok of ['a', 'req-1', '0af7651916cd43dd8448eb211c80319c', '~!#$%&*+-.^_`|', 'x'.repeat(128)]) t.ok(isUsableRequestId(ok), JSON.stringify(ok))
  for (const bad of ['', ' ', 'a b', 'a\tb', 'a\nb', 'é', 'x'.repeat(129), 5, null, undefined]) t.notOk(isUsableRequestId(bad), JSON.stringify(bad))
})

t.test('the app below sees a copy of the environ; the server keeps its own error stream', async (t) => {
  let outer: Environ | undefined
  let inner: Environ | undefined
  const spy: Middleware = (next) => (environ, startResponse) => {
    outer = environ
    return next(environ, startResponse)
  }
  const see: GatewayApp = (environ, startResponse) => {
    inner = environ
    startResponse('204 No Content', [])
    return []
  }
  const { port } = await listen(t, 'postern', spy(requestLogger({ logger: capture().logger })(see)))
  await fetch(`http://127.0.0.1:${port}/`)
  t.not(inner, outer)
  t.not(inner!['gateway.errors'], outer!['gateway.errors'])
  t.notOk(LOG_KEY in outer!, 'the keys are added to the copy only')
  t.equal(inner!.PATH_INFO, outer!.PATH_INFO)
})

for (const kind of SERVERS) {
  t.test(`${kind}: a WebSocket request is logged at the upgrade, as a 101 with the time to it, not the socket's lifetime`, async (t) => {
    const log = capture()
    const wsApp: GatewayApp = async (environ, startResponse) => {
      const offer = environ['gateway.websocket']
      if (offer === undefined) {
        startResponse('426 Upgrade Required', [['Upgrade', 'websocket']])
        return []
      }
      await new Promise((r) => setTimeout(r, 40)) // an authorisation lookup before accepting
      const socket = offer.accept()
      for await (const message of socket) await socket.send(message)
      return []
    }
    const { port, errors } = await listen(t, kind, validate(requestLogger({ logger: log.logger })(wsApp)))
    const client = new WebSocket(`ws://127.0.0.1:${port}/live?x=1`)
    await once(client, 'open')
    const [line] = await log.until(1)
    t.equal(client.readyState, WebSocket.OPEN, 'logged while the socket is still open')
    t.equal(line!.msg, 'request completed')
    t.match(line!.req, { method: 'GET', url: '/live?x=1' })
    t.equal(line!.res?.statusCode, 101)
    t.ok(line!.responseTime! >= 35 && line!.responseTime! < 300, `the time to the upgrade (${line!.responseTime} ms)`)
    t.notOk('aborted' in line!, 'not aborted')
    client.send('hello')
    t.equal(String((await once(client, 'message'))[0]), 'hello')
    await new Promise((r) => setTimeout(r, 400)) // the socket lives on
    const closed = once(client, 'close')
    client.close()
    await closed
    await new Promise((r) => setTimeout(r, 50))
    t.equal(log.completed().length, 1, 'one line, not another when the socket closes')
    t.same(errors, [])
  })
}
