/**
 * The gateway.websocket extension on postern's own server, with real
 * clients on loopback: the `ws` client, undici's WebSocket, and raw bytes
 * over net.Socket where a client library would refuse to misbehave.
 *
 * Echo (text and binary), the subprotocol and extra 101 headers, an app
 * answering 401 instead of accepting, an app failing after accepting (1011),
 * invalid handshakes (400/426 and the app not called), Upgrade: h2c served
 * normally, the limits `ws` enforces for us (1009, 1007), a frame sent in
 * the same packet as the handshake, a handshake pipelined behind a plain
 * request, the handshake timeout, pings on an idle socket, and shutdown
 * with 1001. Over TLS too. Binary messages reach the app as plain
 * Uint8Arrays, and a send() rejected because the server closed the socket
 * is not reported as an app error.
 */
import t from 'tap'
import net from 'node:net'
import { readFileSync } from 'node:fs'
import { once } from 'node:events'
import WebSocket from 'ws'
import { WebSocket as UndiciWebSocket } from 'undici'
import type { Environ, GatewayApp } from '../../lib/gateway/spec.js'
import type { GatewayWebSocket, WebSocketUpgrade } from '../../lib/gateway/websocket.js'
import { WebSocketClosedError } from '../../lib/gateway/websocket-transport.js'
import { serve, sleep } from '../helpers/server.js'
import { makeCert } from '../helpers/process.js'
import { checkPlainBytes, recordingApp } from '../helpers/ws-plain-bytes.js'

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=' // RFC 6455 §1.3

/** Calls by path, so a test can tell the app was never reached. */
function counting(app: GatewayApp): { app: GatewayApp; calls: Record<string, number> } {
  const calls: Record<string, number> = {}
  return {
    calls,
    app: (environ, startResponse) => {
      calls[environ.PATH_INFO] = (calls[environ.PATH_INFO] ?? 0) + 1
      return app(environ, startResponse)
    },
  }
}

const offer = (environ: Environ) => environ['gateway.websocket'] as WebSocketUpgrade | undefined

/** The sockets the app accepted, to check what it saw. */
const accepted: GatewayWebSocket[] = []

const app: GatewayApp = async (environ, startResponse) => {
  const upgrade = offer(environ)
  const path = environ.PATH_INFO
  if (upgrade === undefined) {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return [`plain ${path} ${environ.HTTP_UPGRADE ?? '-'}`]
  }
  switch (path) {
    case '/echo': {
      const socket = upgrade.accept({
        protocol: upgrade.protocols.includes('chat') ? 'chat' : undefined,
        headers: [['Set-Cookie', 'session=1']],
      })
      accepted.push(socket)
      for await (const message of socket) {
        if (message === 'close 4000') socket.close(4000, 'as asked')
        else await socket.send(message)
      }
      return []
    }
    case '/late-echo': {
      await sleep(30) // an authorisation lookup, say: frames sent meanwhile must wait, not be lost
      const socket = upgrade.accept()
      for await (const message of socket) await socket.send(message)
      return []
    }
    case '/private':
      await sleep(2)
      startResponse('401 Unauthorized', [['WWW-Authenticate', 'Bearer']])
      return ['who are you?']
    case '/crash': {
      const socket = upgrade.accept()
      for await (const message of socket) throw new Error(`crash on ${String(message)}`)
      return []
    }
    case '/wrong-protocol':
      upgrade.accept({ protocol: 'not-offered' })
      return []
    case '/never':
      return new Promise(() => {})
    case '/hold': {
      const socket = upgrade.accept()
      accepted.push(socket)
      return []
    }
    case '/own-server': {
      const socket = upgrade.accept({ headers: [['Server', 'mine']] })
      accepted.push(socket)
      return []
    }
    default:
      startResponse('404 Not Found', [])
      return []
  }
}

function handshake(path: string, extra = '', method = 'GET', version = 'HTTP/1.1'): string {
  return `${method} ${path} ${version}\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`
}

/** A masked client frame (payload under 126 bytes). */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78])
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked])
}

/** A raw connection that collects what the server sends. */
async function raw(
  port: number,
): Promise<{ socket: net.Socket; received: () => Buffer; until: (test: (b: Buffer) => boolean, ms?: number) => Promise<Buffer>; closed: Promise<unknown> }> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  let buf = Buffer.alloc(0)
  socket.on('data', (d: Buffer) => (buf = Buffer.concat([buf, d])))
  const closed = once(socket, 'close')
  const until = async (test: (b: Buffer) => boolean, ms = 3000) => {
    const end = Date.now() + ms
    while (!test(buf) && Date.now() < end && !socket.destroyed) await sleep(5)
    return buf
  }
  return { socket, received: () => buf, until, closed }
}

function ws(port: number, path: string, protocols?: string[]): WebSocket {
  const client = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols)
  client.on('error', () => {})
  return client
}

/** Resolves with the close code and reason a `ws` client saw. */
function closeOf(client: WebSocket): Promise<[number, string]> {
  return new Promise((resolve) => client.once('close', (code, reason) => resolve([code, reason.toString()])))
}

t.test('echo with the ws client: text and binary, the chosen subprotocol and the extra 101 headers', async (t) => {
  const s = await serve(t, app)
  const client = ws(s.port, '/echo', ['other', 'chat'])
  const opened = once(client, 'open')
  const [response] = (await once(client, 'upgrade')) as [import('node:http').IncomingMessage]
  t.equal(response.statusCode, 101)
  t.equal(response.headers['sec-websocket-accept']?.length, 28)
  t.equal(response.headers['sec-websocket-protocol'], 'chat')
  t.same(response.headers['set-cookie'], ['session=1'])
  t.equal(response.headers.server, 'postern')
  await opened
  t.equal(client.protocol, 'chat')
  const got: Array<[string | Buffer, boolean]> = []
  client.on('message', (data, isBinary) => got.push([isBinary ? (data as Buffer) : data.toString(), isBinary]))
  client.send('héllo')
  client.send(Buffer.from([0, 1, 2, 255]))
  client.send('x'.repeat(200_000))
  while (got.length < 3) await sleep(5)
  t.same(got[0], ['héllo', false])
  t.same(got[1], [Buffer.from([0, 1, 2, 255]), true])
  t.equal((got[2]![0] as string).length, 200_000)
  client.send('close 4000')
  t.same(await closeOf(client), [4000, 'as asked'])
  const socket = accepted.at(-1)!
  t.equal(socket.protocol, 'chat')
  t.same(await socket.closed, { code: 4000, reason: 'as asked' })
  t.same(s.errors, [])
})

t.test("echo with undici's WebSocket, no subprotocol; the client closing ends the app's loop", async (t) => {
  const s = await serve(t, app)
  const client = new UndiciWebSocket(`ws://127.0.0.1:${s.port}/echo`)
  client.binaryType = 'arraybuffer'
  await new Promise((resolve, reject) => {
    client.onopen = resolve
    client.onerror = reject
  })
  t.equal(client.protocol, '')
  const messages: unknown[] = []
  client.onmessage = (event) => messages.push(event.data)
  client.send('one')
  client.send(new Uint8Array([9, 8, 7]))
  while (messages.length < 2) await sleep(5)
  t.equal(messages[0], 'one')
  t.same(new Uint8Array(messages[1] as ArrayBuffer), new Uint8Array([9, 8, 7]))
  const socket = accepted.at(-1)!
  client.close(1000, 'bye')
  t.same(await socket.closed, { code: 1000, reason: 'bye' })
})

t.test('an app may answer instead of accepting (401); the connection closes after the answer', async (t) => {
  const s = await serve(t, app)
  const client = ws(s.port, '/private')
  const [, response] = (await once(client, 'unexpected-response')) as [unknown, import('node:http').IncomingMessage]
  t.equal(response.statusCode, 401)
  t.equal(response.headers['www-authenticate'], 'Bearer')
  t.equal(response.headers.connection, 'close')
  response.resume()
  client.terminate()

  const c = await raw(s.port)
  c.socket.write(handshake('/private') + handshake('/private'))
  await c.closed
  const text = c.received().toString('latin1')
  t.match(text, /^HTTP\/1\.1 401 /)
  t.equal(text.match(/HTTP\/1\.1 \d\d\d /g)?.length, 1, 'what followed the handshake was not read as a request')
})

t.test('an app error after accept() closes the socket with 1011 and is logged', async (t) => {
  const s = await serve(t, app)
  const client = ws(s.port, '/crash')
  await once(client, 'open')
  client.send('now')
  t.same(await closeOf(client), [1011, 'Internal Error'])
  t.match(s.errors.join(''), /app error after accept\(\): .*crash on now/)
})

t.test('accept() with a subprotocol the client did not offer is an app error before any 101: 500', async (t) => {
  const s = await serve(t, app)
  const c = await raw(s.port)
  c.socket.write(handshake('/wrong-protocol', 'Sec-WebSocket-Protocol: chat\r\n'))
  await c.closed
  t.match(c.received().toString('latin1'), /^HTTP\/1\.1 500 /)
  t.match(s.errors.join(''), /\[ws-protocol\]/)
})

t.test('invalid handshakes get 400 or 426 and never reach the app', async (t) => {
  const { app: counted, calls } = counting(app)
  const s = await serve(t, counted)
  const base = (headers: string, method = 'GET', version = 'HTTP/1.1') => `${method} /echo ${version}\r\nHost: x\r\n${headers}\r\n`
  const cases: Array<[string, string, number]> = [
    ['no key', base('Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'), 400],
    ['a key of 8 bytes', base(`Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${Buffer.alloc(8).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n`), 400],
    ['a key not base64', base('Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\nSec-WebSocket-Version: 13\r\n'), 400],
    ['version 8', base(`Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 8\r\n`), 426],
    ['no version', base(`Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\n`), 426],
    ['POST with Upgrade', base(`Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n`, 'POST'), 400],
    ['HTTP/1.0 with Upgrade', base(`Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n`, 'GET', 'HTTP/1.0'), 400],
    ['Connection without upgrade', base(`Upgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n`), 400],
    [
      'a handshake with a body',
      base(`Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 2\r\n`).concat('hi'),
      400,
    ],
  ]
  for (const [name, request, status] of cases) {
    const c = await raw(s.port)
    c.socket.write(request + clientFrame(1, Buffer.from('ignored')).toString('latin1'))
    await c.closed
    const text = c.received().toString('latin1')
    t.match(text, new RegExp(`^HTTP/1\\.1 ${status} `), `${name}: ${status}`)
    t.match(text, /\r\nConnection: (upgrade, )?close\r\n/i, `${name}: the connection closes`)
    t.equal(text.match(/HTTP\/1\.1 \d\d\d /g)?.length, 1, `${name}: one answer`)
    if (status === 426) {
      t.match(text, /\r\nSec-WebSocket-Version: 13\r\n/, `${name}: says the version`)
      t.match(text, /\r\nUpgrade: websocket\r\n/, `${name}: names the upgrade`)
      t.match(text, /\r\nConnection: upgrade, close\r\n/, `${name}: with the upgrade option`)
    }
  }
  t.same(calls, {}, 'the app was never called')
  const good = ws(s.port, '/echo')
  await once(good, 'open')
  good.close()
  t.equal(calls['/echo'], 1, 'a good client is still served')
})

t.test('Upgrade: h2c (or with webSocket: false, any upgrade) is served as a plain request', async (t) => {
  const s = await serve(t, app)
  const c = await raw(s.port)
  c.socket.write('GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n')
  const text = (await c.until((b) => b.includes('plain'))).toString('latin1')
  t.match(text, /^HTTP\/1\.1 200 /)
  t.match(text, /plain \/x h2c$/)
  c.socket.destroy()

  const off = await serve(t, app, { webSocket: false })
  const d = await raw(off.port)
  d.socket.write(handshake('/echo'))
  const plain = (await d.until((b) => b.includes('plain'))).toString('latin1')
  t.match(plain, /^HTTP\/1\.1 200 /)
  t.match(plain, /plain \/echo websocket$/, 'no extension: the app saw a plain request')
  d.socket.destroy()
})

t.test('limits from ws: an oversized message closes with 1009, invalid UTF-8 with 1007', async (t) => {
  const s = await serve(t, app, { webSocket: { maxMessageSize: 64 * 1024 } })
  const big = ws(s.port, '/echo')
  await once(big, 'open')
  big.send('x'.repeat(64 * 1024)) // at the limit: fine
  await once(big, 'message')
  big.send(Buffer.alloc(64 * 1024 + 1), { binary: true })
  t.equal((await closeOf(big))[0], 1009)

  const defaults = await serve(t, app)
  const huge = ws(defaults.port, '/echo')
  await once(huge, 'open')
  huge.send(Buffer.alloc(1024 * 1024 + 1))
  t.equal((await closeOf(huge))[0], 1009, 'the default limit is 1 MiB')

  const bad = ws(s.port, '/echo')
  await once(bad, 'open')
  bad.send(Buffer.from([0x68, 0xff, 0x69]), { binary: false }) // a text frame that is not UTF-8
  t.equal((await closeOf(bad))[0], 1007)
  const good = ws(s.port, '/echo')
  await once(good, 'open')
  good.send('still fine')
  t.equal(((await once(good, 'message')) as [Buffer])[0].toString(), 'still fine')
  good.close()
})

t.test('a frame sent in the same packet as the handshake is the first message', async (t) => {
  const s = await serve(t, app)
  const c = await raw(s.port)
  c.socket.write(Buffer.concat([Buffer.from(handshake('/echo'), 'latin1'), clientFrame(1, Buffer.from('early')), clientFrame(2, Buffer.from([1, 2]))]))
  const got = await c.until((b) => b.includes(Buffer.from([0x82, 2, 1, 2])))
  const text = got.toString('latin1')
  t.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
  t.match(text, new RegExp(`\r\nSec-WebSocket-Accept: ${ACCEPT.replace(/[+/]/g, '\\$&')}\r\n`))
  const body = got.subarray(got.indexOf('\r\n\r\n') + 4)
  t.same([...body], [0x81, 5, ...Buffer.from('early'), 0x82, 2, 1, 2], 'both frames echoed, in order')
  c.socket.write(clientFrame(8, Buffer.from([0x03, 0xe8])))
  await c.closed
})

t.test('frames sent before an app that awaits first has accepted are kept, in order', async (t) => {
  const s = await serve(t, app)
  const c = await raw(s.port)
  c.socket.write(Buffer.concat([Buffer.from(handshake('/late-echo'), 'latin1'), clientFrame(1, Buffer.from('one'))]))
  await sleep(10)
  c.socket.write(clientFrame(1, Buffer.from('two')))
  const got = await c.until((b) => b.includes('two'))
  const body = got.subarray(got.indexOf('\r\n\r\n') + 4)
  t.match(got.toString('latin1'), /^HTTP\/1\.1 101 /)
  t.same([...body], [0x81, 3, ...Buffer.from('one'), 0x81, 3, ...Buffer.from('two')])
  c.socket.destroy()
})

t.test('a handshake pipelined behind a plain request: its 101 comes after that response', async (t) => {
  const s = await serve(t, app)
  const c = await raw(s.port)
  c.socket.write(`GET /first HTTP/1.1\r\nHost: x\r\n\r\n${handshake('/echo')}`)
  c.socket.write(clientFrame(1, Buffer.from('after')))
  const got = await c.until((b) => b.includes('after'))
  const text = got.toString('latin1')
  t.match(text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*plain \/first -HTTP\/1\.1 101 Switching Protocols\r\n[\s\S]*\r\n\r\n\x81\x05after$/)
  c.socket.destroy()
})

t.test('the 101 carries the server’s Server line once, unless the app gives its own, which replaces it', async (t) => {
  const s = await serve(t, app, { serverHeader: 'postern-test' })
  for (const [path, expected] of [
    ['/hold', ['postern-test']],
    ['/own-server', ['mine']],
  ] as const) {
    const c = await raw(s.port)
    c.socket.write(handshake(path))
    const head = (await c.until((b) => b.includes('\r\n\r\n'))).toString('latin1')
    t.match(head, /^HTTP\/1\.1 101 /)
    t.same(
      [...head.matchAll(/\r\nserver: ([^\r]*)/gi)].map((m) => m[1]),
      expected,
      `${path}: Server is ${expected.join()}`,
    )
    c.socket.destroy()
  }
})

t.test('an app that neither accepts nor answers in handshakeTimeout gets a 503', async (t) => {
  const s = await serve(t, app, { webSocket: { handshakeTimeout: 150 } })
  const c = await raw(s.port)
  const started = Date.now()
  c.socket.write(handshake('/never'))
  await c.closed
  t.match(c.received().toString('latin1'), /^HTTP\/1\.1 503 /)
  const took = Date.now() - started
  // Kept to about its value (the sweep runs often enough for it), not to a sweep a second later.
  t.ok(took >= 140 && took < 150 * 2.5, `answered after ${took} ms (handshakeTimeout 150)`)
})

t.test('an idle socket is pinged; a client that answers stays, one that does not is cut', async (t) => {
  // The HTTP timeouts keep their (long) defaults: the sweep must follow idleTimeout by itself.
  const s = await serve(t, app, { webSocket: { idleTimeout: 100 } })
  const good = ws(s.port, '/echo')
  let pings = 0
  good.on('ping', () => pings++)
  await once(good, 'open')

  const mute = await raw(s.port)
  mute.socket.write(handshake('/hold'))
  await mute.until((b) => b.includes('\r\n\r\n'))
  const cutAt = Date.now()
  await mute.closed
  const took = Date.now() - cutAt
  // A ping after one idleTimeout of silence, the cut after another: about 200 ms, not a sweep later.
  t.ok(took >= 190 && took < 100 * 4, `a client that never answers the ping is cut after ${took} ms (idleTimeout 100)`)
  t.match(mute.received().toString('latin1'), /\r\n\r\n\x89\x00/, 'it was sent a ping')
  t.same(await accepted.at(-1)!.closed, { code: 1006, reason: '' })
  t.ok(pings >= 1, `the good client was pinged (${pings})`)
  t.equal(good.readyState, WebSocket.OPEN, 'and is still open')
  good.close()
})

t.test('server.close() closes open sockets with 1001; the app sees it too', async (t) => {
  const s = await serve(t, app)
  const clients = [ws(s.port, '/echo'), ws(s.port, '/echo', ['chat'])]
  await Promise.all(clients.map((c) => once(c, 'open')))
  const sockets = accepted.slice(-2)
  const closes = clients.map(closeOf)
  const started = Date.now()
  await s.close()
  t.same(await Promise.all(closes), [
    [1001, 'server shutting down'],
    [1001, 'server shutting down'],
  ])
  t.ok(Date.now() - started < 2000, 'closed promptly')
  for (const socket of sockets) t.same(await socket.closed, { code: 1001, reason: 'server shutting down' })
})

const cert = makeCert()

t.test('over TLS (wss:) the same: echo, and 1001 on close', { skip: cert === null ? 'openssl is not available to make a certificate' : false }, async (t) => {
  if (cert === null) return
  const s = await serve(t, app, { tls: { key: readFileSync(cert.key), cert: readFileSync(cert.cert) } })
  const client = new WebSocket(`wss://127.0.0.1:${s.port}/echo`, { rejectUnauthorized: false })
  client.on('error', () => {})
  await once(client, 'open')
  client.send('secret')
  t.equal(((await once(client, 'message')) as [Buffer])[0].toString(), 'secret')
  const closed = closeOf(client)
  await s.close()
  t.same(await closed, [1001, 'server shutting down'])
})

t.test('a binary message reaches the app as a plain Uint8Array (not a Buffer), small or large', async (t) => {
  const { app, received } = recordingApp()
  const s = await serve(t, app)
  await checkPlainBytes(t, s.port, received)
})

t.test('a send() rejected because the server closed the socket is not logged as an app error; a real error after it is', async (t) => {
  const rejections: unknown[] = []
  let sent = 0
  const blocked: GatewayApp = (environ) => {
    const socket = offer(environ)!.accept()
    const real = environ.PATH_INFO === '/then-fail'
    return (async () => {
      const chunk = new Uint8Array(64 * 1024)
      try {
        for (;;) {
          await socket.send(chunk) // the client never reads: this blocks until the server closes
          sent++
        }
      } catch (error) {
        rejections.push(error)
        if (real) throw new Error('a real failure after the close')
        throw error
      }
    })()
  }
  const s = await serve(t, blocked, { webSocket: { closeTimeout: 200 }, drainTimeout: 3000 })
  const clients = await Promise.all(
    ['/blocked', '/then-fail'].map(async (path) => {
      const socket = net.connect(s.port, '127.0.0.1')
      socket.on('error', () => {})
      await once(socket, 'connect')
      socket.pause() // never reads a byte
      socket.write(handshake(path))
      return socket
    }),
  )
  t.teardown(() => {
    for (const c of clients) c.destroy()
  })
  // Both apps are blocked once their sends stop going out.
  let last = -1
  const until = Date.now() + 3000
  while (sent !== last && Date.now() < until) {
    last = sent
    await sleep(100)
  }
  t.ok(sent > 2, `the apps sent ${sent} chunks, then blocked`)
  t.equal(rejections.length, 0, 'both apps are still blocked in send()')
  await s.close()
  t.equal(rejections.length, 2, 'the shutdown (1001) rejected both blocked sends')
  for (const error of rejections) t.ok(error instanceof WebSocketClosedError, 'with a WebSocketClosedError')
  const log = s.errors.join('')
  t.notMatch(log, /app error after accept\(\): WebSocketClosedError/, 'the rejected send is not reported as an app error')
  t.match(log, /app error after accept\(\): Error: a real failure after the close/, 'a real error after the close still is')
  t.equal(log.match(/app error after accept/g)?.length, 1, 'one report, the real one')
})
