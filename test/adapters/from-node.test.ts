/**
 * fromNode: Node listeners (Express 5, Fastify 5, plain `(req, res)`) served
 * by postern's own server under validate(): the frameworks answer with their
 * own greetings, headers and errors; bodies stream both ways with
 * backpressure; a failing listener gets a 500 or a cut connection; the
 * listener hears 'close' when the client leaves.
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import net from 'node:net'
import { Readable } from 'node:stream'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { fromNode } from '../../lib/adapters/node.js'
import { app as expressExample } from '../../examples/express-app.js'
import { app as fastifyExample } from '../../examples/fastify-app.js'
import { type RawClient, header } from '../helpers/raw.js'
import { firstResponse, serve, serveValidated, sleep, type Served } from '../helpers/server.js'

/** Sends a chunked upload in parts, checking each part is echoed before the next is sent. */
async function duplexEcho(t: Test, served: Served, path: string): Promise<void> {
  const client = await served.connect()
  client.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/x-test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n`)
  t.ok(await client.receivedText('first'), 'the first part came back while the upload was still open')
  client.write('6\r\nsecond\r\n')
  t.ok(await client.receivedText('second'), 'the second part too')
  client.write('0\r\n\r\n')
  const { responses } = await client.read()
  t.equal(responses[0]?.status, 200)
  t.equal(responses[0]?.body.toString(), 'firstsecond')
}

t.test('Express 5 example: its greeting, headers and 404', async (t) => {
  const served = await serveValidated(t, expressExample)
  const hello = await firstResponse(served, 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(hello.status, 200)
  t.equal(hello.reason, 'OK')
  t.equal(hello.body.toString(), 'Hello from Express!')
  t.equal(header(hello, 'content-type'), 'text/html; charset=utf-8')
  t.equal(header(hello, 'content-length'), '19')
  t.equal(header(hello, 'x-powered-by'), 'Express')
  t.match(header(hello, 'etag'), /^W\/"13-/)
  t.equal(hello.framing, 'length')
  const head = await served.exchange('HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n', { methods: ['HEAD'] })
  t.equal(head.responses[0]?.status, 200)
  t.equal(header(head.responses[0]!, 'content-length'), '19', 'HEAD keeps the length')
  t.equal(head.responses[0]?.body.length, 0)
  const missing = await firstResponse(served, 'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(missing.status, 404)
  t.match(missing.body.toString(), /Cannot GET \/nope/)
  const echo = await firstResponse(served, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/x-a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n')
  t.equal(echo.status, 200)
  t.equal(echo.body.toString(), 'abcdef', 'express.raw() read the body from gateway.input')
  t.equal(header(echo, 'content-type'), 'text/x-a; charset=utf-8')
})

t.test('Fastify 5 example (fastify.routing): its greeting, headers and 404', async (t) => {
  const served = await serveValidated(t, fastifyExample)
  const hello = await firstResponse(served, 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(hello.status, 200)
  t.equal(hello.body.toString(), 'Hello from Fastify!')
  t.equal(header(hello, 'content-type'), 'text/plain; charset=utf-8')
  t.equal(header(hello, 'content-length'), '19')
  const missing = await firstResponse(served, 'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(missing.status, 404)
  t.same(JSON.parse(missing.body.toString()), { message: 'Route GET:/nope not found', error: 'Not Found', statusCode: 404 })
  const echo = await firstResponse(served, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/x-a\r\nContent-Length: 6\r\n\r\nabcdef')
  t.equal(echo.status, 200)
  t.equal(echo.body.toString(), 'abcdef')
  t.equal(header(echo, 'content-type'), 'text/x-a')
  const chunked = await firstResponse(served, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/x-a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n')
  t.equal(chunked.body.toString(), 'abcdef', 'a chunked upload reaches Fastify too')
})

t.test('the request object: Node fields from the environ', async (t) => {
  let seen: Record<string, unknown> = {}
  const served = await serveValidated(
    t,
    fromNode((req, res) => {
      seen = {
        method: req.method,
        url: req.url,
        httpVersion: req.httpVersion,
        host: req.headers.host,
        multi: req.headers['x-multi'],
        cookie: req.headers.cookie,
        rawHasHost: req.rawHeaders.includes('host'),
        remoteAddress: req.socket.remoteAddress,
        remotePort: typeof req.socket.remotePort,
        encrypted: (req.socket as { encrypted?: boolean }).encrypted === true,
        readable: req.readable,
      }
      res.end('ok')
    }),
  )
  const res = await firstResponse(served, 'GET /a%20b/c?x=1 HTTP/1.1\r\nHost: example.test\r\nX-Multi: 1\r\nX-Multi: 2\r\nCookie: a=1\r\n\r\n')
  t.equal(res.status, 200)
  t.equal(header(res, 'content-length'), '2', 'res.end(data) sets the length, as Node does')
  t.same(seen, {
    method: 'GET',
    url: '/a%20b/c?x=1',
    httpVersion: '1.1',
    host: 'example.test',
    multi: '1, 2',
    cookie: 'a=1',
    rawHasHost: true,
    remoteAddress: '127.0.0.1',
    remotePort: 'number',
    encrypted: false,
    readable: true,
  })
})

t.test('the response object: status, reason, headers, and what is dropped', async (t) => {
  const served = await serveValidated(
    t,
    fromNode((_req, res) => {
      res.statusCode = 201
      res.statusMessage = 'Made'
      res.setHeader('Content-Type', 'text/plain')
      res.setHeader('Set-Cookie', ['a=1', 'b=2'])
      res.setHeader('X-Number', 42)
      res.setHeader('X-Gone', 'soon')
      res.removeHeader('x-gone')
      res.setHeader('Connection', 'keep-alive') // hop-by-hop: the server's business
      t.equal(res.getHeader('x-number'), 42)
      t.ok(res.hasHeader('content-type'))
      t.same(Object.keys(res.getHeaders()), ['content-type', 'set-cookie', 'x-number', 'connection'])
      t.equal(res.headersSent, false)
      res.write('made ')
      t.equal(res.headersSent, true)
      t.throws(() => res.setHeader('X-Late', '1'), { code: 'ERR_HTTP_HEADERS_SENT' })
      res.end('it')
      t.equal(res.writableEnded, true)
    }),
  )
  const res = await firstResponse(served, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(res.status, 201)
  t.equal(res.reason, 'Made')
  t.equal(header(res, 'content-type'), 'text/plain')
  t.equal(header(res, 'set-cookie'), 'a=1, b=2')
  t.equal(header(res, 'x-number'), '42')
  t.equal(header(res, 'x-gone'), undefined)
  t.equal(res.framing, 'length', 'written and ended in one tick: one body of known length')
  t.equal(header(res, 'content-length'), '7')
  t.equal(res.body.toString(), 'made it')
  const invalid = await serveValidated(
    t,
    fromNode((_req, res) => {
      t.throws(() => res.setHeader('X-Bad', 'a\r\nInjected: yes'), { code: 'ERR_INVALID_CHAR' })
      res.writeHead(200, { 'content-type': 'text/plain' }).end('fine')
    }),
  )
  const fine = await firstResponse(invalid, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(fine.body.toString(), 'fine')
  t.equal(header(fine, 'injected'), undefined)
})

t.test('streams both ways: req.pipe(res) echoes before the upload ends', async (t) => {
  const served = await serveValidated(
    t,
    fromNode((req, res) => {
      res.setHeader('Content-Type', String(req.headers['content-type']))
      req.pipe(res)
    }),
  )
  await duplexEcho(t, served, '/')
})

t.test('a streamed response arrives part by part', async (t) => {
  let release = (): void => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  const served = await serveValidated(
    t,
    fromNode(async (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' })
      res.write('part 1\n')
      await released
      res.end('part 2\n')
    }),
  )
  const client = await served.connect()
  client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.ok(await client.receivedText('part 1\n'), 'part 1 arrived before the listener went on')
  release()
  const { responses } = await client.read()
  t.equal(responses[0]?.body.toString(), 'part 1\npart 2\n')
})

t.test('backpressure: write() returns false until the server takes the bytes', async (t) => {
  let produced = 0
  const total = 256 * 64 * 1024
  const served = await serveValidated(
    t,
    fromNode((_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 0x61)
      Readable.from(
        (function* () {
          for (let i = 0; i < 256; i++) {
            produced += chunk.length
            yield chunk
          }
        })(),
      ).pipe(res)
    }),
  )
  const socket = net.connect(served.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  socket.pause()
  socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  let last = -1
  while (produced !== last) {
    last = produced
    await sleep(100)
  }
  t.ok(produced < total, `the listener stopped at ${produced} of ${total} bytes while the client read nothing`)
  let received = 0
  socket.on('data', (d: Buffer) => {
    received += d.length
  })
  socket.resume()
  await once(socket, 'end')
  t.ok(received > total, `all ${total} bytes arrived once the client read (${received} with head and framing)`)
})

t.test('failures: a throwing listener gets a 500, a destroyed response a cut connection', async (t) => {
  const errors: string[] = []
  const app = fromNode((req, res) => {
    if (req.url === '/throw') throw new Error('listener boom')
    if (req.url === '/reject') return Promise.reject(new Error('async boom'))
    res.write('partial')
    setTimeout(() => res.destroy(new Error('gave up')), 5)
    return undefined
  })
  const served = await serve(t, app, { errors: { write: (m) => void errors.push(m), flush() {} } })
  const thrown = await firstResponse(served, 'GET /throw HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(thrown.status, 500)
  t.equal(thrown.body.toString(), 'Internal Server Error\n')
  const rejected = await firstResponse(served, 'GET /reject HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(rejected.status, 500)
  const cut = await served.exchange('GET /cut HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(cut.responses.length, 0, 'no complete response')
  t.equal(cut.partial?.status, 200)
  t.equal(cut.partial?.body.toString(), 'partial')
  t.ok(cut.closed, 'the connection was closed')
  t.ok(
    errors.some((m) => m.includes('listener boom')),
    'the error went to gateway.errors',
  )
})

t.test('req.socket.destroy() aborts the response, as on node:http: before it started a 500, after it a cut connection', async (t) => {
  const app = fromNode((req, res) => {
    if (req.url === '/before') {
      req.socket.destroy()
      return undefined
    }
    res.write('partial')
    setTimeout(() => res.socket!.destroy(), 5)
    return undefined
  })
  const served = await serve(t, app, { errors: { write() {}, flush() {} } })
  const before = await firstResponse(served, 'GET /before HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(before.status, 500, 'destroyed before the head: the server answers the error')
  const cut = await served.exchange('GET /after HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(cut.responses.length, 0, 'no complete response')
  t.equal(cut.partial?.body.toString(), 'partial', 'what was written before went out')
  t.ok(cut.closed, 'the connection was closed')
  const next = await firstResponse(served, 'GET /before HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(next.status, 500, 'the server keeps serving')
})

t.test('a thrown value that cannot be printed still gets a 500, and the server keeps serving', async (t) => {
  // Neither can become a string: String() of a null-prototype object throws
  // (no toString), and every operation on this Proxy throws, instanceof too.
  // Turning them into an Error must not throw, or the rejection handler that
  // does it rejects unhandled: the process dies and the client gets nothing.
  const everyTrapThrows = new Proxy(
    {},
    {
      get: (_target, trap) => () => {
        throw new Error(`hostile ${String(trap)} trap`)
      },
    },
  )
  const hostile = new Proxy({}, everyTrapThrows)
  const errors: string[] = []
  const app = fromNode((req, res) => {
    if (req.url === '/null-prototype')
      return (async () => {
        await null
        throw Object.create(null)
      })()
    if (req.url === '/proxy') throw hostile // synchronously
    if (req.url === '/proxy-async')
      return (async () => {
        await null
        throw hostile
      })()
    res.end(`still here: ${req.url}`)
    return undefined
  })
  const served = await serve(t, app, { errors: { write: (m) => void errors.push(m), flush() {} } })
  for (const path of ['/null-prototype', '/proxy', '/proxy-async']) {
    const before = errors.length
    const client = await served.connect()
    client.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
    const first = await client.read(1)
    t.equal(first.responses[0]?.status, 500, `${path}: answered 500`, { received: first.raw })
    t.equal(first.responses[0]?.body.toString(), 'Internal Server Error\n', `${path}: the usual error body`)
    const logged = errors.slice(before)
    t.ok(
      logged.some((m) => m.includes(`while answering GET ${path}\n`)),
      `${path}: the error went to gateway.errors`,
      { logged },
    )
    const after = await firstResponse(served, `GET ${path}/next HTTP/1.1\r\nHost: x\r\n\r\n`)
    t.equal(after.status, 200, `${path}: the server answers the next request`)
    t.equal(after.body.toString(), `still here: ${path}/next`)
  }
})

t.test("the listener hears 'close' when the client goes away", async (t) => {
  let res: ServerResponse | undefined
  let req: IncomingMessage | undefined
  const served = await serveValidated(
    t,
    fromNode((request, response) => {
      req = request
      res = response
      response.write('tick\n')
      const timer = setInterval(() => response.write('tick\n'), 5)
      response.on('close', () => clearInterval(timer))
    }),
  )
  const client: RawClient = await served.connect()
  client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.ok(await client.receivedText('tick'))
  const closed = once(res!, 'close', { signal: AbortSignal.timeout(5000) })
  client.destroy()
  await closed
  t.equal(res!.writableFinished, false, 'the response never finished')
  t.equal(req!.destroyed, true, 'the request was destroyed')
})
