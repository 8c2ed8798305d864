/**
 * Pipelining (RFC 9112 §9.3.2): a client may send several requests without
 * waiting; the server answers them in the order received, even when a later
 * request's app finishes first, and however the bytes were split.
 */
import t from 'tap'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { connectionHas } from '../helpers/raw.js'
import { serve, sleep } from '../helpers/server.js'

/** Echoes method, path and body; `/slow` waits before answering. */
const app: GatewayApp = async (environ, startResponse) => {
  const body = await environ['gateway.input'].text()
  if (environ.PATH_INFO === '/slow') await sleep(150)
  startResponse('200 OK', [['Content-Type', 'text/plain']])
  return [`${environ.REQUEST_METHOD} ${environ.PATH_INFO} ${body}`]
}

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`
const POST = (path: string, body: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
const CHUNKED = (path: string, parts: string[]) =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('')}0\r\n\r\n`

t.test('three requests in one write: three responses in order', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(GET('/1') + GET('/2') + GET('/3'), { responses: 3 })
  t.same(
    r.responses.map((x) => x.body.toString()),
    ['GET /1 ', 'GET /2 ', 'GET /3 '],
    r.raw,
  )
  t.notOk(r.closed)
})

t.test('a slow first app and a fast second: answered in request order', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(GET('/slow') + GET('/fast') + GET('/slow') + GET('/fast2'), { responses: 4 })
  t.same(
    r.responses.map((x) => x.body.toString()),
    ['GET /slow ', 'GET /fast ', 'GET /slow ', 'GET /fast2 '],
    r.raw,
  )
})

t.test('streamed responses stay in order too', async (t) => {
  const s = await serve(t, (environ, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    const path = environ.PATH_INFO
    return (async function* () {
      yield `${path}:`
      await sleep(path === '/slow' ? 100 : 1)
      yield 'done'
    })()
  })
  const r = await s.exchange(GET('/slow') + GET('/fast'), { responses: 2 })
  t.same(
    r.responses.map((x) => x.body.toString()),
    ['/slow:done', '/fast:done'],
    r.raw,
  )
})

t.test('mixed methods and bodies pipelined', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(`${POST('/a', 'alpha')}HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n${CHUNKED('/c', ['ch', 'unk'])}${GET('/z')}`, { responses: 4 })
  t.same(
    r.responses.map((x) => [x.status, x.body.toString()]),
    [
      [200, 'POST /a alpha'],
      [200, ''],
      [200, 'POST /c chunk'],
      [200, 'GET /z '],
    ],
    r.raw,
  )
})

t.test('requests split one byte at a time', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(POST('/bytewise', 'hello') + CHUNKED('/c', ['a', 'bc']) + GET('/last'), { responses: 3, splits: 1 })
  t.same(
    r.responses.map((x) => x.body.toString()),
    ['POST /bytewise hello', 'POST /c abc', 'GET /last '],
    r.raw,
  )
})

t.test('a request split across the head/body boundary and mid-line', async (t) => {
  const s = await serve(t, app)
  const bytes = POST('/split', 'abcdef') + GET('/next')
  for (const splits of [[3], [20, 5], [bytes.indexOf('\r\n\r\n') + 2, 2, 3], [bytes.indexOf('\r\n\r\n') + 4]]) {
    const r = await s.exchange(bytes, { responses: 2, splits })
    t.same(
      r.responses.map((x) => x.body.toString()),
      ['POST /split abcdef', 'GET /next '],
      `splits ${JSON.stringify(splits)}: ${r.raw}`,
    )
  }
})

t.test('Connection: close in a pipeline: later requests are not answered', async (t) => {
  let calls = 0
  const counting = await serve(t, (environ, startResponse) => {
    calls++
    return app(environ, startResponse)
  })
  const r = await counting.exchange(`${GET('/1')}GET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n${GET('/3')}`, { responses: 3 })
  t.equal(r.responses.length, 2, r.raw)
  t.ok(connectionHas(r.responses[1]!, 'close'))
  t.ok(r.closed)
  t.equal(calls, 2, 'the request after Connection: close never reached the app')
})

t.test('a malformed request in a pipeline: earlier ones answered, then 400 and close', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(`${GET('/1') + GET('/2')}BROKEN\r\n\r\n${GET('/4')}`, { responses: 4 })
  t.same(
    r.responses.map((x) => x.status),
    [200, 200, 400],
    r.raw,
  )
  t.ok(connectionHas(r.responses[2]!, 'close'))
  t.ok(r.closed)
})

t.test('more pipelined requests than maxPipelineDepth: all answered, in order', async (t) => {
  const s = await serve(t, app)
  const n = 100
  let bytes = ''
  for (let i = 0; i < n; i++) bytes += GET(`/r${i}`)
  const r = await s.exchange(bytes, { responses: n })
  t.equal(r.responses.length, n, r.raw.slice(-500))
  t.ok(
    r.responses.every((x, i) => x.body.toString() === `GET /r${i} `),
    'all in order',
  )
})

t.test('maxPipelineDepth: no more requests are parsed ahead than the limit, all answered once released', async (t) => {
  let calls = 0
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => (release = resolve))
  const s = await serve(
    t,
    async (environ, startResponse) => {
      calls++
      await released
      startResponse('200 OK', [['Content-Type', 'text/plain']])
      return [environ.PATH_INFO]
    },
    { maxPipelineDepth: 4 },
  )
  const c = await s.connect()
  let bytes = ''
  for (let i = 0; i < 20; i++) bytes += GET(`/p${i}`)
  c.write(bytes)
  await sleep(200)
  t.ok(calls <= 4, `at most maxPipelineDepth apps running: ${calls}`)
  t.ok(calls >= 1, 'but the first ones started')
  release()
  const r = await c.read(20)
  t.same(
    r.responses.map((x) => x.body.toString()),
    Array.from({ length: 20 }, (_, i) => `/p${i}`),
    r.raw.slice(0, 300),
  )
})

t.test('pipelined bodies go to the right apps when the first app reads late', async (t) => {
  const s = await serve(t, async (environ, startResponse) => {
    if (environ.PATH_INFO === '/late') await sleep(100)
    const body = await environ['gateway.input'].text()
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return [`${environ.PATH_INFO} ${body}`]
  })
  const r = await s.exchange(POST('/late', 'AAAA') + CHUNKED('/chunked', ['BB', 'B']) + POST('/fast', 'CC'), { responses: 3 })
  t.same(
    r.responses.map((x) => x.body.toString()),
    ['/late AAAA', '/chunked BBB', '/fast CC'],
    r.raw,
  )
})
