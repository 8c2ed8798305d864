/**
 * toNodeListener / serveNode: a postern app on Node's own servers (node:http,
 * mounted in Express, node:http2) answers exactly as on postern's server:
 * same status, headers, framing and bytes; bodies stream both ways; errors
 * become 500s or cut connections; close() is called when the client leaves.
 */
import t from 'tap'
import { EventEmitter, once } from 'node:events'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import net, { type AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import express from 'express'
import type { Environ, ErrorStream, GatewayApp, Headers } from '../../lib/gateway/spec.js'
import { serveNode, toNodeListener, type NodeRequestListener } from '../../lib/adapters/node.js'
import { RawClient, exchange, header, type RawResponse } from '../helpers/raw.js'
import { serve, sleep, type Teardown } from '../helpers/server.js'

/** Bodies that were closed, by path. */
const closes = new EventEmitter()

const text: Headers = [['Content-Type', 'text/plain; charset=utf-8']]

const ENV_KEYS = [
  'REQUEST_METHOD',
  'SCRIPT_NAME',
  'PATH_INFO',
  'QUERY_STRING',
  'REQUEST_URI',
  'CONTENT_TYPE',
  'CONTENT_LENGTH',
  'SERVER_PROTOCOL',
  'SERVER_NAME',
  'REMOTE_ADDR',
  'HTTP_HOST',
  'HTTP_X_MULTI',
  'HTTP_COOKIE',
  'HTTP_X_UNDER',
] as const

function envJson(environ: Environ): string {
  const out: Record<string, unknown> = {}
  for (const key of ENV_KEYS) out[key] = environ[key]
  out['url_scheme'] = environ['gateway.url_scheme']
  out['input.length'] = environ['gateway.input'].length
  return JSON.stringify(out)
}

/** One app with a route per behaviour under test. */
const sample: GatewayApp = (environ, startResponse) => {
  const input = environ['gateway.input']
  switch (environ.PATH_INFO) {
    case '/hello':
      startResponse('200 OK', [...text, ['X-Custom', 'yes'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']])
      return ['hello ', 'world']
    case '/echo':
      startResponse('200 OK', [
        ['Content-Type', environ.CONTENT_TYPE || 'application/octet-stream'],
        ['X-Input-Length', String(input.length)],
      ])
      return (async function* () {
        for await (const chunk of input) yield chunk
      })()
    case '/stream':
      startResponse('200 OK', text)
      return (async function* () {
        for (let i = 0; i < 5; i++) {
          await sleep(2)
          yield `part ${i}\n`
        }
      })()
    case '/big': {
      startResponse('200 OK', [['Content-Type', 'application/octet-stream']])
      const chunk = new Uint8Array(64 * 1024).fill(0x61)
      return (function* () {
        for (let i = 0; i < 256; i++) {
          produced.bytes += chunk.byteLength
          yield chunk
        }
      })()
    }
    case '/env/a b':
    case '/env':
      startResponse('200 OK', [['Content-Type', 'application/json']])
      return [envJson(environ)]
    case '/throw':
      throw new Error('boom')
    case '/late':
      startResponse('200 OK', text)
      return (async function* () {
        yield 'partial'
        await sleep(1)
        throw new Error('late boom')
      })()
    case '/infinite': {
      startResponse('200 OK', text)
      let stop = false
      return {
        async *[Symbol.asyncIterator]() {
          while (!stop) {
            await sleep(5)
            yield 'tick\n'
          }
        },
        close() {
          stop = true
          closes.emit('/infinite')
        },
      }
    }
    case '/limit':
      return (async () => {
        await input.bytes(8)
        startResponse('200 OK', text)
        return ['fits']
      })()
    case '/replace':
      startResponse('200 OK', text)
      try {
        throw new Error('changed my mind')
      } catch (error) {
        startResponse('503 Service Unavailable', text, error)
      }
      return ['replaced']
    case '/no-content':
      startResponse('204 No Content', [['X-Custom', 'none']])
      return []
    case '/bad-header':
      startResponse('200 OK', [['X-Bad', 'a\r\nInjected: yes']])
      return ['never sent']
    case '/hop':
      startResponse('200 OK', [['Connection', 'close']])
      return ['never sent']
    case '/trailers':
      return (async () => {
        const body = await input.text()
        startResponse('200 OK', [['Content-Type', 'application/json']])
        return [JSON.stringify({ body, trailers: input.trailers })]
      })()
    case '/wrong-length':
      startResponse('200 OK', [['Content-Length', '5']])
      return ['0123456789']
    case '/short-stream':
      startResponse('200 OK', [['Content-Length', '5']])
      return (async function* () {
        yield '012'
      })()
    default:
      startResponse('404 Not Found', text)
      return ['not found']
  }
}
const produced = { bytes: 0 }

function collectErrors(): { stream: ErrorStream; messages: string[] } {
  const messages: string[] = []
  return { messages, stream: { write: (m) => void messages.push(m), flush() {} } }
}

/** Serves a Node listener on node:http until the test ends. */
async function listen(t: Teardown, listener: NodeRequestListener | http.RequestListener): Promise<number> {
  const server = http.createServer(listener as http.RequestListener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as AddressInfo).port
}

/** What a user relies on in a response: status, reason, app headers, framing and bytes. */
function view(res: RawResponse | undefined): Record<string, unknown> {
  if (res === undefined) return { missing: true }
  const headers: Record<string, string | undefined> = {}
  for (const name of ['content-type', 'content-length', 'x-custom', 'x-input-length', 'set-cookie']) headers[name] = header(res, name)
  return { status: res.status, reason: res.reason, headers, framing: res.framing, complete: res.complete, body: res.body.toString('latin1') }
}

async function ask(port: number, request: string): Promise<Record<string, unknown>> {
  const result = await exchange(port, request)
  return view(result.responses[0] ?? result.partial)
}

const REQUESTS: Record<string, string> = {
  hello: 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n',
  head: 'HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n',
  stream: 'GET /stream HTTP/1.1\r\nHost: x\r\n\r\n',
  echoLength: 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/x-test\r\nContent-Length: 11\r\n\r\nhello world',
  echoChunked: 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
  env: 'POST /env/a%20b?x=1%202&y HTTP/1.1\r\nHost: example.test\r\nX-Multi: 1\r\nX-Multi: 2\r\nCookie: a=1\r\nCookie: b=2\r\nX_Under: dropped\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n',
  throw: 'GET /throw HTTP/1.1\r\nHost: x\r\n\r\n',
  late: 'GET /late HTTP/1.1\r\nHost: x\r\n\r\n',
  limit: 'POST /limit HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n01234567890123456789',
  replace: 'GET /replace HTTP/1.1\r\nHost: x\r\n\r\n',
  noContent: 'GET /no-content HTTP/1.1\r\nHost: x\r\n\r\n',
  badHeader: 'GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n',
  hop: 'GET /hop HTTP/1.1\r\nHost: x\r\n\r\n',
  malformedPath: 'GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n',
  trailers: 'POST /trailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\nX-Checksum: abc\r\n\r\n',
  wrongLength: 'GET /wrong-length HTTP/1.1\r\nHost: x\r\n\r\n',
  shortStream: 'GET /short-stream HTTP/1.1\r\nHost: x\r\n\r\n',
}

t.test('node:http answers every request as postern’s own server does', async (t) => {
  const posternErrors = collectErrors()
  const nodeErrors = collectErrors()
  const postern = await serve(t, sample, { errors: posternErrors.stream })
  const port = await listen(t, toNodeListener(sample, { errors: nodeErrors.stream }))
  for (const [name, request] of Object.entries(REQUESTS)) {
    const expected = await ask(postern.port, request)
    const actual = await ask(port, request)
    if (name === 'env') {
      // The connection's own addresses are the same on both (127.0.0.1).
      t.same(JSON.parse(String(actual['body'])), JSON.parse(String(expected['body'])), 'env: same environ')
      t.same(
        JSON.parse(String(actual['body'])),
        {
          REQUEST_METHOD: 'POST',
          SCRIPT_NAME: '',
          PATH_INFO: '/env/a b',
          QUERY_STRING: 'x=1%202&y',
          REQUEST_URI: '/env/a%20b?x=1%202&y',
          CONTENT_TYPE: 'text/plain',
          CONTENT_LENGTH: '0',
          SERVER_PROTOCOL: 'HTTP/1.1',
          SERVER_NAME: '127.0.0.1',
          REMOTE_ADDR: '127.0.0.1',
          HTTP_HOST: 'example.test',
          HTTP_X_MULTI: '1, 2',
          HTTP_COOKIE: 'a=1; b=2',
          url_scheme: 'http',
          'input.length': 0,
        },
        'env: the CGI variables',
      )
      continue
    }
    t.same(actual, expected, `${name}: same status, headers, framing and body`)
  }
  // Spot-check the baseline itself, so "same" means "right".
  t.match(await ask(port, REQUESTS['hello']!), {
    status: 200,
    framing: 'length',
    body: 'hello world',
    headers: { 'content-length': '11', 'set-cookie': 'a=1, b=2', 'x-custom': 'yes' },
  })
  t.match(await ask(port, REQUESTS['stream']!), { status: 200, framing: 'chunked', complete: true, body: 'part 0\npart 1\npart 2\npart 3\npart 4\n' })
  t.match(await ask(port, REQUESTS['throw']!), { status: 500, body: 'Internal Server Error\n' })
  t.match(await ask(port, REQUESTS['late']!), { status: 200, complete: false, body: 'partial' })
  t.match(await ask(port, REQUESTS['limit']!), { status: 413 })
  t.match(await ask(port, REQUESTS['replace']!), { status: 503, body: 'replaced' })
  t.match(await ask(port, REQUESTS['badHeader']!), { status: 500 })
  t.match(await ask(port, REQUESTS['malformedPath']!), { status: 400 })
  t.same(JSON.parse(String((await ask(port, REQUESTS['trailers']!))['body'])), { body: 'body', trailers: [['X-Checksum', 'abc']] }, 'trailers of a chunked body')
  t.match(await ask(port, REQUESTS['wrongLength']!), { status: 500 }, 'a body longer than its Content-Length is refused')
  t.match(await ask(port, REQUESTS['shortStream']!), { complete: false, body: '012' }, 'a body shorter than its Content-Length is cut')
  t.ok(
    nodeErrors.messages.some((m) => m.includes('boom')),
    'the app error went to gateway.errors',
  )
  t.ok(
    nodeErrors.messages.some((m) => m.includes('late boom')),
    'the late error went to gateway.errors',
  )
})

t.test('request and response bodies stream both ways (echo before the upload ends)', async (t) => {
  const port = await listen(t, toNodeListener(sample))
  const client = await RawClient.connect(port)
  t.teardown(() => client.destroy())
  client.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/x-test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n')
  t.ok(await client.receivedText('first'), 'the first chunk came back while the request was still open')
  client.write('6\r\nsecond\r\n')
  t.ok(await client.receivedText('second'), 'the second chunk too')
  client.write('0\r\n\r\n')
  const { responses } = await client.read()
  t.equal(responses[0]?.status, 200)
  t.equal(header(responses[0]!, 'x-input-length'), 'null', 'a chunked upload has no known length')
  t.equal(responses[0]?.framing, 'chunked')
  t.equal(responses[0]?.body.toString(), 'firstsecond')
})

t.test('a client that does not read holds the app back (backpressure)', async (t) => {
  const port = await listen(t, toNodeListener(sample))
  const socket = net.connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  socket.pause()
  produced.bytes = 0
  socket.write('GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  // Wait until production stops moving while nobody reads.
  let last = -1
  while (produced.bytes !== last) {
    last = produced.bytes
    await sleep(100)
  }
  const total = 256 * 64 * 1024
  t.ok(produced.bytes < total, `the app stopped at ${produced.bytes} of ${total} bytes while the client read nothing`)
  let received = 0
  socket.on('data', (data: Buffer) => {
    received += data.length
  })
  socket.resume()
  await once(socket, 'end')
  t.ok(received > total, `all ${total} body bytes arrive once the client reads (${received} with head and framing)`)
  t.equal(produced.bytes, total)
})

t.test('close() is called when the client goes away mid-stream', async (t) => {
  const port = await listen(t, toNodeListener(sample))
  const client = await RawClient.connect(port)
  const closed = once(closes, '/infinite', { signal: AbortSignal.timeout(5000) })
  client.write('GET /infinite HTTP/1.1\r\nHost: x\r\n\r\n')
  t.ok(await client.receivedText('tick'), 'the stream started')
  client.destroy()
  await closed
  t.pass('the body was closed')
})

t.test('mounted in Express: baseUrl becomes SCRIPT_NAME', async (t) => {
  const app = express()
  app.use('/gw', toNodeListener(sample, { errors: collectErrors().stream }))
  app.get('/other', (_req, res) => {
    res.send('express route')
  })
  const port = await listen(t, app)
  const env = await fetch(`http://127.0.0.1:${port}/gw/env?x=1`)
  t.equal(env.status, 200)
  t.match(await env.json(), { SCRIPT_NAME: '/gw', PATH_INFO: '/env', QUERY_STRING: 'x=1', REQUEST_URI: '/gw/env?x=1' })
  const hello = await fetch(`http://127.0.0.1:${port}/gw/hello`)
  t.equal(hello.status, 200)
  t.equal(hello.headers.get('content-type'), 'text/plain; charset=utf-8')
  t.same(hello.headers.getSetCookie(), ['a=1', 'b=2'])
  t.equal(await hello.text(), 'hello world')
  const echo = await fetch(`http://127.0.0.1:${port}/gw/echo`, { method: 'POST', body: 'through express', headers: { 'content-type': 'text/x-a' } })
  t.equal(echo.headers.get('content-type'), 'text/x-a')
  t.equal(await echo.text(), 'through express')
  const thrown = await fetch(`http://127.0.0.1:${port}/gw/throw`)
  t.equal(thrown.status, 500)
  t.equal(await thrown.text(), 'Internal Server Error\n')
  const other = await fetch(`http://127.0.0.1:${port}/other`)
  t.equal(await other.text(), 'express route', 'Express routes around the mount still work')
})

t.test('node:http2 compatibility API', async (t) => {
  const server = http2.createServer(toNodeListener(sample, { errors: collectErrors().stream }))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const session = http2.connect(`http://127.0.0.1:${port}`)
  t.teardown(() => {
    session.close()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  async function request(headers: http2.OutgoingHttpHeaders, body?: string[]): Promise<{ headers: http2.IncomingHttpHeaders; body: string }> {
    const stream = session.request(headers, { endStream: body === undefined })
    const response = once(stream, 'response') // the echo answers while the upload goes on
    if (body !== undefined) {
      for (const part of body) {
        stream.write(part)
        await sleep(2)
      }
      stream.end()
    }
    const [responseHeaders] = (await response) as [http2.IncomingHttpHeaders]
    let text = ''
    stream.setEncoding('utf8')
    for await (const chunk of stream) text += chunk as string
    return { headers: responseHeaders, body: text }
  }
  const hello = await request({ ':path': '/hello' })
  t.equal(hello.headers[':status'], 200)
  t.equal(hello.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(hello.headers['content-length'], '11')
  t.same(hello.headers['set-cookie'], ['a=1', 'b=2'])
  t.equal(hello.body, 'hello world')
  const env = await request({ ':path': '/env?q=1', cookie: 'a=1' })
  t.match(JSON.parse(env.body), { SERVER_PROTOCOL: 'HTTP/2.0', PATH_INFO: '/env', QUERY_STRING: 'q=1', HTTP_HOST: `127.0.0.1:${port}`, HTTP_COOKIE: 'a=1', 'input.length': 0 })
  const echo = await request({ ':path': '/echo', ':method': 'POST', 'content-type': 'text/x-h2' }, ['one ', 'two ', 'three'])
  t.equal(echo.headers[':status'], 200)
  t.equal(echo.headers['x-input-length'], 'null', 'an HTTP/2 body without content-length has no known length')
  t.equal(echo.body, 'one two three')
  const stream = await request({ ':path': '/stream' })
  t.equal(stream.body, 'part 0\npart 1\npart 2\npart 3\npart 4\n')
  const thrown = await request({ ':path': '/throw' })
  t.equal(thrown.headers[':status'], 500)
  t.equal(thrown.body, 'Internal Server Error\n')
})

t.test('node:http2: close() is called when the client resets the stream', async (t) => {
  const server = http2.createServer(toNodeListener(sample))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  t.teardown(() => {
    session.close()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const closed = once(closes, '/infinite', { signal: AbortSignal.timeout(5000) })
  const stream = session.request({ ':path': '/infinite' })
  await once(stream, 'data')
  stream.close(http2.constants.NGHTTP2_CANCEL)
  await closed
  t.pass('the body was closed')
})

/** A throwaway self-signed certificate, or null without openssl. */
function makeCert(): { key: Buffer; cert: Buffer } | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-cert-'))
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')],
      { stdio: 'ignore' },
    )
    return { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) }
  } catch {
    return null
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

t.test('serveNode with tls: node:https, url_scheme https', async (t) => {
  const tls = makeCert()
  if (tls === null) {
    t.skip('openssl is not available to make a test certificate', () => {})
    return
  }
  const served = await serveNode(sample, { port: 0, tls })
  t.teardown(() => served.close())
  const { responses } = await exchange(served.port, 'GET /env HTTP/1.1\r\nHost: x\r\n\r\n', { tls: true })
  t.equal(responses[0]?.status, 200)
  t.match(JSON.parse(responses[0]!.body.toString()), { url_scheme: 'https', PATH_INFO: '/env' })
})

t.test('serveNode: the reference server on node:http', async (t) => {
  const served = await serveNode(sample, { port: 0 })
  t.teardown(() => served.close())
  t.equal(served.host, '127.0.0.1')
  const res = await fetch(`http://127.0.0.1:${served.port}/hello`)
  t.equal(res.status, 200)
  t.equal(await res.text(), 'hello world')
  await served.close()
  await t.rejects(fetch(`http://127.0.0.1:${served.port}/hello`), 'closed: no longer accepting')
})
