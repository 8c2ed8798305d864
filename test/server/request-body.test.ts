/**
 * Request bodies through `gateway.input` (RFC 9112 §6, §7.1): Content-Length
 * and chunked bodies (extensions, trailers) read by iterating or with
 * bytes()/text(), `length`, limits, `Expect: 100-continue`, and an unread
 * body not being taken for the next request.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { GatewayError } from '../../lib/gateway/spec.js'
import { RequestInput } from '../../lib/server/body-input.js'
import { connectionHas, header } from '../helpers/raw.js'
import { serve, echoBody, json, sleep, within } from '../helpers/server.js'

/** Reads the body by iterating, and reports chunks seen and total. */
const iterating: GatewayApp = async (environ, startResponse) => {
  const input = environ['gateway.input']
  const parts: Buffer[] = []
  for await (const chunk of input) {
    if (!(chunk instanceof Uint8Array)) throw new TypeError('chunk is not a Uint8Array')
    parts.push(Buffer.from(chunk))
  }
  startResponse('200 OK', [['Content-Type', 'application/json']])
  return [JSON.stringify({ length: input.length, body: Buffer.concat(parts).toString() })]
}

t.test('Content-Length body read by iterating gateway.input', async (t) => {
  const s = await serve(t, iterating)
  const r = await s.exchange('POST /i HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world')
  t.equal(r.responses[0]?.status, 200, r.raw)
  t.same(json(r.responses[0]!.body), { length: 11, body: 'hello world' })
})

t.test('Content-Length body read with text() and bytes()', async (t) => {
  const s = await serve(t, async (environ, startResponse) => {
    const input = environ['gateway.input']
    const out = environ.PATH_INFO === '/bytes' ? Buffer.from(await input.bytes()).toString('hex') : await input.text()
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return [out]
  })
  const utf8 = Buffer.from('hé!!', 'utf8')
  const r1 = await s.exchange(Buffer.concat([Buffer.from(`POST /text HTTP/1.1\r\nHost: x\r\nContent-Length: ${utf8.length}\r\n\r\n`), utf8]))
  t.equal(r1.responses[0]?.body.toString(), 'hé!!', r1.raw)
  const r2 = await s.exchange(Buffer.concat([Buffer.from('POST /bytes HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n'), Buffer.from([0, 0xff, 0x0d, 0x0a])]))
  t.equal(r2.responses[0]?.body.toString(), '00ff0d0a', r2.raw)
})

t.test('no body: length 0, iteration ends at once, text() is empty', async (t) => {
  const s = await serve(t, iterating)
  const r = await s.exchange('GET /none HTTP/1.1\r\nHost: x\r\n\r\n')
  t.same(json(r.responses[0]!.body), { length: 0, body: '' }, r.raw)
  const r2 = await s.exchange('POST /zero HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
  t.same(json(r2.responses[0]!.body), { length: 0, body: '' }, r2.raw)
})

t.test('chunked body with chunk extensions and trailers', async (t) => {
  const s = await serve(t, echoBody)
  const r = await s.exchange(
    'POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5;name=value\r\nhello\r\n' +
      '6 ; quoted="a;b" ;flag\r\n world\r\n' +
      'A\r\n0123456789\r\n' +
      '0;last\r\n' +
      'X-Checksum: abc\r\n' +
      'X-Other: 2\r\n' +
      '\r\n',
  )
  const res = r.responses[0]
  t.equal(res?.status, 200, r.raw)
  const out = json(res!.body)
  t.equal(out.body, 'hello world0123456789')
  t.equal(out.length, null, 'chunked: length is null')
  const trailers = (out.trailers as Array<[string, string]>).map(([n, v]) => [n.toLowerCase(), v])
  t.same(trailers, [
    ['x-checksum', 'abc'],
    ['x-other', '2'],
  ])
})

t.test('chunked body read by iterating, hex sizes in either case', async (t) => {
  const s = await serve(t, iterating)
  const big = 'x'.repeat(0x1f)
  const r = await s.exchange(`POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1f\r\n${big}\r\n1F\r\n${big}\r\n001\r\n!\r\n0\r\n\r\n`)
  t.same(json(r.responses[0]!.body), { length: null, body: `${big + big}!` }, r.raw)
})

t.test('the environ of a chunked request: no CONTENT_LENGTH', async (t) => {
  const s = await serve(t, async (environ, startResponse) => {
    await environ['gateway.input'].text()
    startResponse('200 OK', [])
    return [JSON.stringify({ cl: environ.CONTENT_LENGTH })]
  })
  const r = await s.exchange('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n')
  t.equal(json(r.responses[0]!.body).cl, '', r.raw)
})

t.test('Expect: 100-continue: 100 Continue is sent when the app reads, before the final response', async (t) => {
  const s = await serve(t, echoBody)
  const c = await s.connect()
  c.write('POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n')
  t.ok(await c.receivedText('\r\n\r\n'), `interim response arrives before the body is sent: ${c.received}`)
  t.match(c.received, /^HTTP\/1\.1 100 Continue\r\n/, 'it is 100 Continue')
  c.write('hello')
  const r = await c.read()
  const res = r.responses[0]
  t.equal(res?.interim.length, 1, r.raw)
  t.equal(res?.interim[0]?.status, 100)
  t.equal(res?.status, 200)
  t.equal(json(res!.body).body, 'hello')
})

t.test('Expect: 100-continue with a chunked body', async (t) => {
  const s = await serve(t, echoBody)
  const c = await s.connect()
  c.write('POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n')
  t.ok(await c.receivedText('100 Continue'), c.received)
  c.write('3\r\nabc\r\n0\r\n\r\n')
  const r = await c.read()
  t.equal(json(r.responses[0]!.body).body, 'abc', r.raw)
})

t.test('Expect: 100-continue and an app that does not read: no 100, final response only', async (t) => {
  const s = await serve(t, (_environ, startResponse) => {
    startResponse('403 Forbidden', [['Content-Type', 'text/plain']])
    return ['no']
  })
  const c = await s.connect()
  c.write('POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n')
  const r = await c.read()
  const res = r.responses[0]
  t.equal(res?.status, 403, r.raw)
  t.equal(res?.interim.length, 0, 'no 100 Continue')
  t.notMatch(r.raw, /^HTTP\/1\.1 100/)
})

t.test('an unread body is not taken for the next request', async (t) => {
  const s = await serve(t, (environ, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return [`${environ.REQUEST_METHOD} ${environ.PATH_INFO}`]
  })
  // The body itself looks like a request: reading it as one would be request smuggling.
  const body = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
  const r = await s.exchange(`POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /second HTTP/1.1\r\nHost: x\r\n\r\n`, { responses: 2 })
  t.equal(r.responses[0]?.body.toString(), 'POST /first', r.raw)
  if (r.responses.length === 2) {
    t.equal(r.responses[1]?.body.toString(), 'GET /second', 'the body was skipped, the next request answered')
  } else {
    // A server may instead close rather than drain the body — but then it must say so.
    t.ok(connectionHas(r.responses[0]!, 'close') && r.closed, 'or: Connection: close and closed')
  }
  t.notMatch(r.raw, /smuggled/)
})

t.test('an unread chunked body is not taken for the next request', async (t) => {
  const s = await serve(t, (environ, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return [`${environ.REQUEST_METHOD} ${environ.PATH_INFO}`]
  })
  const inner = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
  const r = await s.exchange(
    `POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n`,
    { responses: 2 },
  )
  t.equal(r.responses[0]?.body.toString(), 'POST /first', r.raw)
  if (r.responses.length === 2) t.equal(r.responses[1]?.body.toString(), 'GET /second')
  else t.ok(connectionHas(r.responses[0]!, 'close') && r.closed, 'or: Connection: close and closed')
  t.notMatch(r.raw, /smuggled/)
})

t.test('bytes(limit) over the limit rejects with a 413 GatewayError', async (t) => {
  const s = await serve(t, async (environ, startResponse) => {
    let status = 'none'
    try {
      await environ['gateway.input'].bytes(4)
    } catch (err) {
      status = err instanceof GatewayError ? String(err.status) : `other: ${String(err)}`
    }
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return [status]
  })
  const r = await s.exchange('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789', { waitClose: true })
  t.equal(r.responses[0]?.body.toString(), '413', r.raw)
  const r2 = await s.exchange('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n', { waitClose: true })
  t.equal(r2.responses[0]?.body.toString(), '413', r2.raw)
})

t.test('text() when the client goes away mid-body rejects with status 400', async (t) => {
  let seen: (v: string) => void = () => {}
  const outcome = new Promise<string>((resolve) => (seen = resolve))
  const s = await serve(t, async (environ, startResponse) => {
    try {
      await environ['gateway.input'].text()
      seen('resolved')
    } catch (err) {
      seen(err instanceof GatewayError ? String(err.status) : `other: ${String(err)}`)
    }
    startResponse('200 OK', [])
    return []
  })
  const c = await s.connect()
  c.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc')
  await sleep(50)
  c.destroy()
  const result = await within(outcome, 3000, 'timed out: the read never settled')
  t.equal(result, '400')
})

t.test('large upload read slowly by the app arrives intact', async (t) => {
  const size = 4 * 1024 * 1024
  const s = await serve(
    t,
    async (environ, startResponse) => {
      const hash = createHash('sha256')
      let total = 0
      let n = 0
      for await (const chunk of environ['gateway.input']) {
        hash.update(chunk)
        total += chunk.length
        if (n++ % 16 === 0) await sleep(2)
      }
      startResponse('200 OK', [['Content-Type', 'text/plain']])
      return [`${total} ${hash.digest('hex')}`]
    },
    { maxBodySize: 16 * 1024 * 1024 },
  )
  const payload = Buffer.alloc(size)
  for (let i = 0; i < size; i++) payload[i] = (i * 7 + (i >> 10)) & 0xff
  const expected = `${size} ${createHash('sha256').update(payload).digest('hex')}`
  const c = await s.connect({ timeout: 10_000 })
  c.write(`PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`)
  c.write(payload)
  const r = await c.read()
  t.equal(r.responses[0]?.status, 200, r.raw.slice(0, 300))
  t.equal(r.responses[0]?.body.toString(), expected)
})

t.test('a request body under the server limit is accepted, exactly at the limit too', async (t) => {
  const s = await serve(t, echoBody, { maxBodySize: 10 })
  const r = await s.exchange('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789')
  t.equal(r.responses[0]?.status, 200, r.raw)
  t.equal(json(r.responses[0]!.body).body, '0123456789')
  const r2 = await s.exchange('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n')
  t.equal(r2.responses[0]?.status, 200, r2.raw)
  t.equal(header(r2.responses[0]!, 'content-type'), 'application/json')
})

t.test('Expect: 100-continue refused by the app: a body sent anyway is not taken for a request', async (t) => {
  const s = await serve(t, (environ, startResponse) => {
    startResponse('403 Forbidden', [['Content-Type', 'text/plain']])
    return [`no ${environ.PATH_INFO}`]
  })
  const c = await s.connect()
  const body = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
  c.write(`POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`)
  const r = await c.read()
  t.equal(r.responses[0]?.status, 403, r.raw)
  c.write(body)
  const more = await c.read(1, 1000)
  t.notMatch(c.received, /no \/smuggled/, `the body was not run as a request: ${JSON.stringify(c.received)}`)
  t.equal(more.responses.length, 0)
})

t.test('an app that reads part of a body: the rest is skipped, the next request is answered', async (t) => {
  const s = await serve(t, async (environ, startResponse) => {
    let first = 0
    for await (const chunk of environ['gateway.input']) {
      first = chunk.length
      break
    }
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return [`${environ.PATH_INFO} ${first > 0 ? 'read some' : 'read none'}`]
  })
  const big = 'y'.repeat(200_000)
  const r = await s.exchange(`POST /part HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n${big}GET /next HTTP/1.1\r\nHost: x\r\n\r\n`, { responses: 2 })
  t.equal(r.responses[0]?.body.toString(), '/part read some', r.raw.slice(0, 400))
  if (r.responses.length === 2) t.equal(r.responses[1]?.body.toString(), '/next read none')
  else t.ok(connectionHas(r.responses[0]!, 'close') && r.closed, 'or: Connection: close and closed')
})

t.test('the client half-closing mid-body: the read rejects with 400', async (t) => {
  let seen: (v: string) => void = () => {}
  const outcome = new Promise<string>((resolve) => (seen = resolve))
  const s = await serve(t, async (environ, startResponse) => {
    try {
      await environ['gateway.input'].text()
      seen('resolved')
    } catch (err) {
      seen(err instanceof GatewayError ? String(err.status) : `other: ${String(err)}`)
    }
    startResponse('200 OK', [])
    return []
  })
  const c = await s.connect()
  c.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc')
  await sleep(50)
  c.end()
  t.equal(await within(outcome, 3000, 'timed out: the read never settled'), '400')
})

t.test('Expect: 100-continue on HTTP/1.0 is ignored: no 100 Continue', async (t) => {
  const s = await serve(t, echoBody)
  const r = await s.exchange('POST /e HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello', { waitClose: true })
  const res = r.responses[0]
  t.equal(res?.status, 200, r.raw)
  t.equal(res?.interim.length, 0, "RFC 9110 §10.1.1: a 1.0 request's 100-continue expectation is ignored")
  t.equal(json(res!.body).body, 'hello')
})

t.test('a body that streams the request body back as it reads it', async (t) => {
  const s = await serve(t, (environ, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    const input = environ['gateway.input']
    return (async function* () {
      for await (const chunk of input) yield Buffer.from(chunk).toString('latin1').toUpperCase()
    })()
  })
  const r1 = await s.exchange('POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world')
  t.equal(r1.responses[0]?.body.toString(), 'HELLO WORLD', r1.raw)
  const r2 = await s.exchange('POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n', {
    responses: 2,
  })
  t.equal(r2.responses[0]?.body.toString(), 'ABCDE', r2.raw)
  t.equal(r2.responses[1]?.status, 200)
})

t.test('bytes(limit) over the limit on a keep-alive connection: no desync with the next request', async (t) => {
  const s = await serve(t, async (environ, startResponse) => {
    let status = 'read'
    try {
      await environ['gateway.input'].bytes(4)
    } catch (err) {
      status = err instanceof GatewayError ? String(err.status) : 'other'
    }
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return [`${environ.PATH_INFO} ${status}`]
  })
  const inner = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
  const r = await s.exchange(`POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${inner.length}\r\n\r\n${inner}GET /next HTTP/1.1\r\nHost: x\r\n\r\n`, { responses: 2 })
  t.equal(r.responses[0]?.body.toString(), '/big 413', r.raw)
  if (r.responses.length === 2) t.equal(r.responses[1]?.body.toString(), '/next read')
  else t.ok(connectionHas(r.responses[0]!, 'close') && r.closed, 'or: Connection: close and closed')
  t.notMatch(r.raw, /smuggled/)
})

t.test('unread small chunks are copied out of the read buffer, in order, whatever the parser does with it next', async (t) => {
  const owner = { inputFirstRead() {}, inputFull() {}, inputDrained() {} }
  const input = new RequestInput(owner, 6, 1024)
  const read = Buffer.from('aa') // the socket's read buffer, reused for the next read
  input.push(read)
  read.write('xx') // the next read lands in the same memory
  const next = Buffer.from('bb')
  input.push(next)
  next.write('yy')
  input.push(Buffer.from('cc'))
  input.end([])
  const chunks: string[] = []
  for await (const chunk of input) chunks.push(Buffer.from(chunk).toString())
  t.equal(chunks.join(''), 'aabbcc', 'every byte as sent, in order')
  t.equal(chunks[0], 'aa', 'the first small chunk is a copy of its own')
})
