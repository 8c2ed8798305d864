/**
 * Timeouts keep slow or idle clients from holding connections forever:
 * headersTimeout (slow-loris heads) and requestTimeout (slow bodies) answer
 * 408 and close; keepAliveTimeout closes idle connections. Small values make
 * the effect quick; no test asserts how long anything took.
 */
import t from 'tap'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { connectionHas } from '../helpers/raw.js'
import { serve, echoBody, sleep } from '../helpers/server.js'

const ok: GatewayApp = (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']])
  return ['ok']
}

t.test('headersTimeout: a stalled head gets 408 and the connection is closed', async (t) => {
  const s = await serve(t, ok, { headersTimeout: 300 })
  const c = await s.connect()
  c.write('GET / HTTP/1.1\r\nHost:')
  const r = await c.read()
  t.equal(r.responses[0]?.status, 408, r.raw)
  if (r.responses[0]) t.ok(connectionHas(r.responses[0], 'close'), 'Connection: close')
  t.ok(await c.closed(), 'closed')
})

t.test('headersTimeout: a head trickling in byte by byte still times out', async (t) => {
  const s = await serve(t, ok, { headersTimeout: 400 })
  const c = await s.connect()
  let stop = false
  const trickle = (async () => {
    const line = `GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(1000)}`
    for (const ch of line) {
      if (stop || !c.isOpen) return
      c.write(ch)
      await sleep(40)
    }
  })()
  const r = await c.read(1, 5000)
  stop = true
  await trickle
  t.equal(r.responses[0]?.status, 408, r.raw)
  t.ok(await c.closed())
})

t.test('headersTimeout does not cut a connection whose requests keep completing', async (t) => {
  const s = await serve(t, ok, { headersTimeout: 300, keepAliveTimeout: 2000 })
  const c = await s.connect()
  for (let i = 0; i < 4; i++) {
    c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    const r = await c.read()
    t.equal(r.responses[0]?.status, 200, `request ${i}: ${r.raw}`)
    await sleep(120)
  }
  t.ok(c.isOpen, 'still open: the head timer restarts per request')
})

t.test('keepAliveTimeout: an idle connection is closed', async (t) => {
  const s = await serve(t, ok, { keepAliveTimeout: 200 })
  const c = await s.connect()
  c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  const r = await c.read()
  t.equal(r.responses[0]?.status, 200, r.raw)
  t.notOk(r.closed)
  t.ok(await c.closed(3000), 'server closed the idle connection')
  t.equal(c.received, r.raw, 'nothing sent on an idle close')
})

t.test('keepAliveTimeout: a connection that never sends anything is closed', async (t) => {
  const s = await serve(t, ok, { keepAliveTimeout: 200, headersTimeout: 300 })
  const c = await s.connect()
  t.ok(await c.closed(3000), 'closed')
})

t.test('requestTimeout: a slow body gets 408 and the connection is closed', async (t) => {
  const s = await serve(t, echoBody, { requestTimeout: 400, headersTimeout: 300 })
  const c = await s.connect()
  c.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab')
  const r = await c.read(1, 4000)
  t.equal(r.responses[0]?.status, 408, r.raw)
  if (r.responses[0]) t.ok(connectionHas(r.responses[0], 'close'), 'Connection: close')
  t.ok(await c.closed())
})

t.test('requestTimeout: a body trickling in still times out', async (t) => {
  const s = await serve(t, echoBody, { requestTimeout: 500 })
  const c = await s.connect()
  c.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n')
  let stop = false
  const trickle = (async () => {
    for (let i = 0; i < 1000 && !stop && c.isOpen; i++) {
      c.write('x')
      await sleep(40)
    }
  })()
  const r = await c.read(1, 5000)
  stop = true
  await trickle
  t.equal(r.responses[0]?.status, 408, r.raw)
  t.ok(await c.closed())
})

t.test('a request that finishes in time is unaffected by small timeouts', async (t) => {
  const s = await serve(t, echoBody, { requestTimeout: 1000, headersTimeout: 1000, keepAliveTimeout: 1000 })
  const c = await s.connect()
  await c.writeSplit('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello', [10, 10, 10, 10, 10], 20)
  const r = await c.read()
  t.equal(r.responses[0]?.status, 200, r.raw)
})

t.test('the app taking long is not a client timeout', async (t) => {
  const s = await serve(
    t,
    async (_environ, startResponse) => {
      await sleep(600)
      startResponse('200 OK', [['Content-Type', 'text/plain']])
      return ['slow app']
    },
    { requestTimeout: 300, headersTimeout: 300, keepAliveTimeout: 300 },
  )
  const r = await s.exchange('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(r.responses[0]?.status, 200, r.raw)
  t.equal(r.responses[0]?.body.toString(), 'slow app')
})

t.test('a slowly streamed response is not cut by keepAliveTimeout', async (t) => {
  const s = await serve(
    t,
    (_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']])
      return (async function* () {
        for (let i = 0; i < 4; i++) {
          yield `part${i};`
          await sleep(150)
        }
      })()
    },
    { keepAliveTimeout: 100, headersTimeout: 100, requestTimeout: 100 },
  )
  const r = await s.exchange('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(r.responses[0]?.body.toString(), 'part0;part1;part2;part3;', r.raw)
  t.ok(r.responses[0]?.complete)
})
