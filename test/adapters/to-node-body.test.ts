/**
 * The request body through toNodeListener, read from node:http's request
 * (lib/adapters/node-body.ts): an app that reads slowly holds the upload
 * back; a request some middleware paused is still read; a client that
 * leaves mid-upload fails the app's read with a 400 and the server serves
 * on; an app that stops reading early is answered and the connection serves
 * on, the rest of the body dropped; a body an earlier
 * Node middleware already read is empty, not a hang; a chunked body arrives
 * whole, in order, with its trailers. And the reader itself, on a plain
 * stream: one read at a time, one reader a stream, return() ends a waiting
 * read, bytes after setEncoding, errors and early closes.
 */
import t from 'tap'
import { EventEmitter, once } from 'node:events'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { PassThrough } from 'node:stream'
import type { GatewayApp, Headers } from '../../lib/gateway/spec.js'
import { GatewayError } from '../../lib/gateway/spec.js'
import { toNodeListener } from '../../lib/adapters/node.js'
import { NodeBody } from '../../lib/adapters/node-body.js'
import { RawClient, exchange } from '../helpers/raw.js'
import { sleep, type Teardown } from '../helpers/server.js'

const text: Headers = [['Content-Type', 'text/plain']]
/** What the app saw, by event: 'read' (bytes so far), 'failed' (the error of a read). */
const seen = new EventEmitter()
/** Opened by the backpressure test: the slow reader waits on it after its first chunk. */
let gate: Promise<void> = Promise.resolve()

const app: GatewayApp = async (environ, startResponse) => {
  const input = environ['gateway.input']
  switch (environ.PATH_INFO) {
    case '/slow': {
      let bytes = 0
      for await (const chunk of input) {
        if (bytes === 0) await gate
        bytes += chunk.byteLength
      }
      startResponse('200 OK', text)
      return [String(bytes)]
    }
    case '/count': {
      let bytes = 0
      try {
        for await (const chunk of input) {
          bytes += chunk.byteLength
          seen.emit('read', bytes)
        }
      } catch (error) {
        seen.emit('failed', error)
        throw error
      }
      startResponse('200 OK', text)
      return [String(bytes)]
    }
    case '/first': {
      // Takes the first chunk and leaves the rest unread.
      for await (const chunk of input) {
        startResponse('200 OK', text)
        return [`first ${chunk.byteLength}`]
      }
      startResponse('200 OK', text)
      return ['empty']
    }
    case '/text': {
      const body = await input.text()
      startResponse('200 OK', text)
      return [`${body}|${input.trailers.map(([name, value]) => `${name}=${value}`).join(',')}`]
    }
    default:
      startResponse('404 Not Found', text)
      return ['no such route']
  }
}

async function listen(t: Teardown, listener: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return server
}

const portOf = (server: http.Server) => (server.address() as AddressInfo).port
const connections = (server: http.Server) => new Promise<number>((resolve, reject) => server.getConnections((error, n) => (error ? reject(error) : resolve(n))))

/** Polls until the server holds `count` connections or `ms` pass; the last count. */
async function connectionsDownTo(server: http.Server, count: number, ms: number): Promise<number> {
  const until = Date.now() + ms
  for (;;) {
    const n = await connections(server)
    if (n <= count || Date.now() >= until) return n
    await sleep(20)
  }
}

t.test('an app that reads slowly holds the upload back (request backpressure)', async (t) => {
  const gateway = toNodeListener(app) as http.RequestListener
  let serverSocket: net.Socket | null = null
  const server = await listen(t, (req, res) => {
    serverSocket = req.socket
    gateway(req, res)
  })
  let open!: () => void
  gate = new Promise<void>((resolve) => (open = resolve))
  const total = 64 * 1024 * 1024
  const block = Buffer.alloc(64 * 1024, 'x')
  const socket = net.connect(portOf(server), '127.0.0.1')
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  let response = ''
  socket.setEncoding('latin1')
  socket.on('data', (d: string) => (response += d))
  socket.write(`POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\nConnection: close\r\n\r\n`)
  let written = 0
  const writeAll = (async () => {
    while (written < total) {
      written += block.length
      if (!socket.write(block)) await once(socket, 'drain')
    }
  })()
  // Wait until the server stops reading while the app holds its first chunk.
  const bytesRead = () => (serverSocket as net.Socket | null)?.bytesRead ?? 0
  let last = -1
  while (bytesRead() !== last) {
    last = bytesRead()
    await sleep(200)
  }
  // Whatever the kernel's socket buffers hold, the server itself reads only what Node buffers for the app (about 16 KiB a stream).
  t.ok(last < 4 * 1024 * 1024, `the server stopped reading at ${last} of ${total} bytes while the app read nothing (bound 4 MiB)`)
  open()
  await writeAll
  await once(socket, 'end')
  t.match(response, /^HTTP\/1\.1 200 OK\r\n/, 'the app is answered once it reads on')
  t.ok(response.endsWith(`\r\n\r\n${total}`), 'and it read every byte')
  t.equal(await connectionsDownTo(server, 0, 2000), 0, 'the connection is released')
})

t.test('a request some middleware paused is still read whole', async (t) => {
  const gateway = toNodeListener(app) as http.RequestListener
  const server = await listen(t, (req, res) => {
    req.pause()
    gateway(req, res)
  })
  const answer = await exchange(portOf(server), 'POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello', { timeout: 3000 })
  t.equal(answer.responses[0]?.body.toString(), '5')
})

t.test('a client that leaves mid-upload: the read fails with 400, the server serves on', async (t) => {
  const server = await listen(t, toNodeListener(app, { errors: { write() {}, flush() {} } }) as http.RequestListener)
  const socket = net.connect(portOf(server), '127.0.0.1')
  await once(socket, 'connect')
  const read = once(seen, 'read')
  const failed = once(seen, 'failed', { signal: AbortSignal.timeout(5000) })
  socket.write('POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789')
  t.same(await read, [10], 'the app read the first 10 bytes')
  socket.destroy()
  const [error] = (await failed) as [unknown]
  t.ok(error instanceof GatewayError, 'the read rejected with a GatewayError')
  t.equal((error as GatewayError).status, 400, 'status 400: the body was cut short')
  t.match((error as GatewayError).message, /closed the connection before sending the whole body/)
  t.equal(await connectionsDownTo(server, 0, 2000), 0, 'no connection is left open')
  const after = await exchange(portOf(server), 'POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello')
  t.equal(after.responses[0]?.status, 200, 'the next client is answered')
  t.equal(after.responses[0]?.body.toString(), '5')
})

t.test('an app that stops reading early is answered; the rest of the body is dropped and the connection serves on', async (t) => {
  const server = await listen(t, toNodeListener(app) as http.RequestListener)
  const client = await RawClient.connect(portOf(server))
  t.teardown(() => client.destroy())
  const rest = 'r'.repeat(200_000)
  client.write(`POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: ${11 + rest.length}\r\n\r\nfirst chunk`)
  t.ok(await client.receivedText('first 11'), 'the app answered from its first chunk, before the rest of the body came')
  // The rest of the body, then a second request on the same connection: the dropped bytes must not be read as a request.
  client.write(`${rest}POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok`)
  const { responses } = await client.read(2)
  t.same(
    responses.map((r) => [r.status, r.body.toString()]),
    [
      [200, 'first 11'],
      [200, '2'],
    ],
    'both answered in order on one connection',
  )
  t.equal(await connectionsDownTo(server, 0, 2000), 0, 'the connection is released once closed')
})

t.test('a body an earlier Node middleware already read is empty, not a hang', async (t) => {
  const gateway = toNodeListener(app) as http.RequestListener
  const server = await listen(t, (req, res) => {
    req.resume()
    req.once('end', () => gateway(req, res))
  })
  const answer = await exchange(portOf(server), 'POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello', { timeout: 3000 })
  t.equal(answer.responses[0]?.status, 200)
  t.equal(answer.responses[0]?.body.toString(), '0', 'the app reads no bytes: they were taken before it')
})

t.test('a chunked body arrives whole and in order, with its trailers', async (t) => {
  const server = await listen(t, toNodeListener(app) as http.RequestListener)
  const chunks = ['alpha-', 'beta-', 'gamma-', 'delta']
  const body = chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('')
  const answer = await exchange(portOf(server), `POST /text HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}0\r\nX-Sum: 4\r\n\r\n`)
  t.equal(answer.responses[0]?.body.toString(), 'alpha-beta-gamma-delta|X-Sum=4')
})

t.test('the reader keeps the iterator protocol: one read at a time, return() ends a pending read, one reader a stream', async (t) => {
  const stream = new PassThrough()
  const body = new NodeBody(stream)
  const reader = body[Symbol.asyncIterator]()
  const pending = reader.next()
  await t.rejects(reader.next(), { name: 'TypeError', message: /read again before the previous read finished/ }, 'a second read while one waits is refused')
  t.throws(() => new NodeBody(stream)[Symbol.asyncIterator](), { name: 'TypeError', message: /already being read/ }, 'a second reader of the same stream is refused')
  stream.write('abc')
  t.same(await pending, { done: false, value: Buffer.from('abc') }, 'the waiting read gets the chunk')
  const waiting = reader.next()
  t.same(await reader.return!(), { done: true, value: undefined })
  t.same(await waiting, { done: true, value: undefined }, 'return() ends the read that was waiting')
  t.same(await reader.next(), { done: true, value: undefined }, 'and every read after it')
  stream.end('rest')
  await once(stream, 'end') // the rest was read and dropped
  t.pass('the rest of the stream was drained')
})

t.test('the reader: bytes after setEncoding come back as sent; an error or a close before the end rejects', async (t) => {
  const latin = new PassThrough()
  latin.setEncoding('latin1')
  const reader = new NodeBody(latin)[Symbol.asyncIterator]()
  latin.end(Buffer.from([0x63, 0x61, 0x66, 0xe9]))
  t.same(await reader.next(), { done: false, value: Buffer.from([0x63, 0x61, 0x66, 0xe9]) }, 'latin1 text is encoded back to the same bytes')
  t.same(await reader.next(), { done: true, value: undefined })

  const failing = new PassThrough()
  const failed = new NodeBody(failing)[Symbol.asyncIterator]()
  const read = failed.next()
  failing.destroy(new Error('socket hang up'))
  await t.rejects(read, { message: 'socket hang up' }, 'the stream’s error')

  const cut = new PassThrough()
  const cutReader = new NodeBody(cut)[Symbol.asyncIterator]()
  const cutRead = cutReader.next()
  cut.destroy()
  await t.rejects(cutRead, { code: 'ERR_STREAM_PREMATURE_CLOSE' }, 'a close before the end')
  await t.rejects(new NodeBody(cut)[Symbol.asyncIterator]().next(), { code: 'ERR_STREAM_PREMATURE_CLOSE' }, 'and a reader made after it')
})
