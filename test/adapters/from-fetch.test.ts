/**
 * fromFetch: Fetch handlers (a Hono app's `fetch`, plain functions) served by
 * postern's own server under validate(): Hono answers with its own greeting;
 * the Request carries the URL, headers and a streaming body; the Response's
 * status, headers and streaming body reach the client; a failing handler
 * gets a 500; the handler learns when the client goes away.
 */
import t from 'tap'
import { fromFetch } from '../../lib/adapters/fetch.js'
import { app as honoExample } from '../../examples/hono-app.js'
import { header } from '../helpers/raw.js'
import { firstResponse, serve, serveValidated } from '../helpers/server.js'

/** Serves `app` under validate(): a violation by either side becomes a 500 or a cut response. */
t.test('Hono example: its greeting, its 404, and a posted body', async (t) => {
  const served = await serveValidated(t, honoExample)
  const hello = await firstResponse(served, 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(hello.status, 200)
  t.equal(hello.reason, 'OK')
  t.equal(hello.body.toString(), 'Hello from Hono!')
  t.equal(hello.framing, 'length', 'a body that is all there goes out with its length')
  t.equal(header(hello, 'content-length'), '16')
  t.equal(header(hello, 'content-type'), 'text/plain;charset=UTF-8', 'Hono’s own content type, untouched')
  const missing = await firstResponse(served, 'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(missing.status, 404)
  t.equal(missing.body.toString(), '404 Not Found')
  const echo = await firstResponse(served, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/x-a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n')
  t.equal(echo.status, 200)
  t.equal(echo.body.toString(), 'abcdef')
  t.equal(header(echo, 'content-type'), 'text/x-a')
})

t.test('the Request: URL, method, headers, body', async (t) => {
  const seen: Array<Record<string, unknown>> = []
  const handler = async (request: Request): Promise<Response> => {
    seen.push({
      url: request.url,
      method: request.method,
      host: request.headers.get('host'),
      multi: request.headers.get('x-multi'),
      connection: request.headers.get('connection'),
      type: request.headers.get('content-type'),
      body: request.body === null ? null : await request.text(),
    })
    return new Response('ok')
  }
  const served = await serveValidated(t, fromFetch(handler))
  await firstResponse(served, 'GET /a%20b/c?x=1%202 HTTP/1.1\r\nHost: example.test\r\nX-Multi: 1\r\nX-Multi: 2\r\nConnection: keep-alive\r\n\r\n')
  await firstResponse(served, 'PUT /put HTTP/1.1\r\nHost: example.test:8080\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello')
  t.same(seen, [
    { url: 'http://example.test/a%20b/c?x=1%202', method: 'GET', host: 'example.test', multi: '1, 2', connection: null, type: null, body: null },
    { url: 'http://example.test:8080/put', method: 'PUT', host: 'example.test:8080', multi: null, connection: null, type: 'text/plain', body: 'hello' },
  ])
  // Mounted below a prefix: the handler still sees the whole path.
  const mounted = await serve(t, (environ, startResponse) => fromFetch(handler)({ ...environ, SCRIPT_NAME: '/mnt', PATH_INFO: environ.PATH_INFO.slice(4) }, startResponse))
  await firstResponse(mounted, 'GET /mnt/x%2Fy HTTP/1.1\r\nHost: example.test\r\n\r\n')
  t.equal(seen[2]?.['url'], 'http://example.test/mnt/x%2Fy', 'the raw path is kept when it agrees with SCRIPT_NAME + PATH_INFO')
})

t.test('the Response: status, reason, repeated headers, hop-by-hop dropped', async (t) => {
  const served = await serveValidated(
    t,
    fromFetch(() => {
      const headers = new Headers([
        ['content-type', 'application/json'],
        ['connection', 'close'],
        ['x-custom', 'yes'],
      ])
      headers.append('set-cookie', 'a=1')
      headers.append('set-cookie', 'b=2')
      return new Response('{"made":true}', { status: 201, headers })
    }),
  )
  const res = await firstResponse(served, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(res.status, 201)
  t.equal(res.reason, 'Created')
  t.equal(header(res, 'content-type'), 'application/json')
  t.equal(header(res, 'x-custom'), 'yes')
  t.same(
    res.headers.filter(([n]) => n.toLowerCase() === 'set-cookie').map(([, v]) => v),
    ['a=1', 'b=2'],
    'each cookie on its own line',
  )
  t.equal(header(res, 'connection'), undefined, 'the handler’s Connection header is not passed on')
  t.equal(res.body.toString(), '{"made":true}')
  const empty = await serveValidated(
    t,
    fromFetch(() => new Response(null, { status: 204 })),
  )
  const noContent = await firstResponse(empty, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(noContent.status, 204)
  t.equal(noContent.body.length, 0)
})

t.test('streams both ways: new Response(request.body) echoes before the upload ends', async (t) => {
  const served = await serveValidated(
    t,
    fromFetch((request) => new Response(request.body, { headers: { 'content-type': request.headers.get('content-type') ?? '' } })),
  )
  const client = await served.connect()
  client.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/x-test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n')
  t.ok(await client.receivedText('first'), 'the first part came back while the upload was still open')
  client.write('6\r\nsecond\r\n')
  t.ok(await client.receivedText('second'), 'the second part too')
  client.write('0\r\n\r\n')
  const { responses } = await client.read()
  t.equal(responses[0]?.status, 200)
  t.equal(header(responses[0]!, 'content-type'), 'text/x-test')
  t.equal(responses[0]?.body.toString(), 'firstsecond')
})

t.test('failures: a throwing handler gets a 500, a failing stream a cut response', async (t) => {
  const errors: string[] = []
  const app = fromFetch((request) => {
    if (request.url.endsWith('/throw')) throw new Error('handler boom')
    if (request.url.endsWith('/not-a-response')) return 'nope' as unknown as Response
    const later = request.url.endsWith('/cut')
    let sent = false
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (!sent) controller.enqueue(new TextEncoder().encode('partial'))
          else {
            if (later) await new Promise((resolve) => setTimeout(resolve, 20))
            controller.error(new Error('stream boom'))
          }
          sent = true
        },
      }),
    )
  })
  const served = await serve(t, app, { errors: { write: (m) => void errors.push(m), flush() {} } })
  const thrown = await firstResponse(served, 'GET /throw HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(thrown.status, 500)
  t.equal(thrown.body.toString(), 'Internal Server Error\n')
  t.equal((await firstResponse(served, 'GET /not-a-response HTTP/1.1\r\nHost: x\r\n\r\n')).status, 500)
  const early = await firstResponse(served, 'GET /early HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(early.status, 500, 'a stream that fails before its first byte went out gets a 500')
  const cut = await served.exchange('GET /cut HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(cut.responses.length, 0, 'no complete response')
  t.equal(cut.partial?.body.toString(), 'partial')
  t.ok(cut.closed, 'the connection was closed')
  t.ok(
    errors.some((m) => m.includes('handler boom')),
    'the error went to gateway.errors',
  )
})

t.test('the handler learns the client went away: stream cancelled, request.signal aborted', async (t) => {
  let cancelled!: () => void
  const wasCancelled = new Promise<void>((resolve) => {
    cancelled = resolve
  })
  let signal: AbortSignal | undefined
  const served = await serveValidated(
    t,
    fromFetch((request) => {
      signal = request.signal
      let timer: NodeJS.Timeout | undefined
      return new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            timer = setInterval(() => controller.enqueue(new TextEncoder().encode('tick\n')), 5)
          },
          cancel() {
            clearInterval(timer)
            cancelled()
          },
        }),
      )
    }),
  )
  const client = await served.connect()
  client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.ok(await client.receivedText('tick'))
  client.destroy()
  await Promise.race([wasCancelled, new Promise((_, reject) => setTimeout(() => reject(new Error('not cancelled within 5 s')), 5000).unref())])
  t.equal(signal?.aborted, true, 'request.signal was aborted')
})
