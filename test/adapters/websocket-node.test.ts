/**
 * The WebSocket extension on node:http through the adapters: the same app
 * as on Bun and Deno (test/fixtures/ws-app.ts), wired as the README says
 * (`toNodeListener` for requests, `toNodeUpgrade` for the 'upgrade' event),
 * with the `ws` client and undici's WebSocket. Bad handshakes never reach
 * the app; afterwards a good client is served and the process holds no
 * more descriptors than before, also after a client that floods and never
 * reads (the server stops reading it). Bun's and Deno's own clients, and
 * wss:// on node:https and an app mounted in Express, are served too. Also: without the upgrade listener the app
 * answers 426 itself, idle clients are pinged then cut, a handshake the app
 * never answers gets 503, and `serveNode`'s close() closes sockets with 1001.
 */
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { WebSocket } from 'ws'
import https from 'node:https'
import express from 'express'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { serveNode, toNodeListener, toNodeUpgrade, type NodeAdapterOptions } from '../../lib/adapters/node.js'
import { makeCert } from '../helpers/process.js'
import { toFetch } from '../../lib/adapters/fetch.js'
import { validate } from '../../lib/gateway/validate.js'
import type { ErrorStream } from '../../lib/gateway/spec.js'
import { wsApp } from '../fixtures/ws-app.js'
import { ROOT, commonChecks, flood, handshake, rawExchange, runtimeBinary, talk } from '../fixtures/ws-scenarios.js'

const errors: string[] = []
const violations: string[] = []
// validate() checks both sides of the extension: a violation here is the adapter's.
const app = validate(wsApp, { onViolation: (violation) => void violations.push(violation.message) })
const errorStream: ErrorStream = { write: (m) => void errors.push(m), flush() {} }

/** node:http serving the app with both listeners, as the README shows; closed with the test. */
async function listen(options: NodeAdapterOptions = {}, upgrade = true): Promise<number> {
  const server = http.createServer(toNodeListener(app, { errors: errorStream, ...options }))
  if (upgrade) server.on('upgrade', toNodeUpgrade(app, { errors: errorStream, ...options }))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return (server.address() as AddressInfo).port
}

const fds = (): number => readdirSync('/proc/self/fd').length

async function fdsBackTo(baseline: number, ms = 3000): Promise<number> {
  const end = Date.now() + ms
  let now = fds()
  while (now > baseline && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20))
    now = fds()
  }
  return now
}

const port = await listen()

t.test('node:http with toNodeUpgrade', async (t) => {
  // Warm up: one session and one request, so lazily opened descriptors are counted in the baseline.
  await talk('ws', port, '/echo', { send: ['close me'] })
  await fetch(`http://127.0.0.1:${port}/http`).then((r) => r.text())
  await new Promise((r) => setTimeout(r, 50))
  const baseline = fds()
  await commonChecks(t, port, { http10: 'refused', clients: ['ws', 'undici'], invalidUtf8: 1007, handoff: 'kept' })
  t.ok((await fdsBackTo(baseline)) <= baseline, 'descriptors back to the baseline')
  t.match(errors.join(''), /app error after accept\(\): Error: crash on boom/, 'the 1011 was logged')
  t.same(violations, [], 'validate() found no violation on either side')
})

t.test('a client that floods and never reads: the server stops reading it, and nothing is left once it goes', async (t) => {
  const baseline = fds()
  const f = await flood(port, '/echo', 64 * 1024 * 1024)
  t.ok(f.stalled, `the server stopped reading after ${f.written} bytes`)
  t.ok(f.written < 32 * 1024 * 1024, 'long before the 64 MiB were sent')
  t.ok((await fdsBackTo(baseline)) <= baseline, 'descriptors back to the baseline')
  const r = await talk('ws', port, '/echo', { send: ['close me'] })
  t.same(r.messages, ['hello none'], 'a good client is served')
})

for (const runtime of ['bun', 'deno'] as const) {
  const binary = runtimeBinary(runtime)
  t.test(`${runtime === 'bun' ? "Bun's" : "Deno's"} own WebSocket client`, { skip: binary === null ? `${runtime} is not installed` : false }, async (t) => {
    const client = path.join(ROOT, 'test/fixtures/ws-runtime-client.ts')
    const args = runtime === 'bun' ? ['run', client, String(port)] : ['run', '--quiet', '--allow-net', '--no-lock', '--no-check', client, String(port)]
    const child = spawn(binary!, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    const [code] = (await once(child, 'exit')) as [number]
    t.equal(code, 0)
    const [echo, refused, crash, big] = out
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { code: number } & Record<string, unknown>)
    t.match(echo, { protocol: 'chat', messages: ['hello chat', 'hi', [1, 2, 255]], code: 4000, reason: 'as asked' })
    t.match(refused, { opened: false, messages: [] }, 'the 401 refuses the handshake')
    t.ok(refused!.code === 1006 || refused!.code === 0, `closed without a close frame (${refused!.code})`)
    t.match(crash, { opened: true, code: 1011 })
    t.match(big, { messages: ['hello none'], code: 1009 })
  })
}

const cert = makeCert()
t.test('node:https: the same listener serves wss://', { skip: cert === null ? 'openssl is missing' : false }, async (t) => {
  const tls = { key: readFileSync(cert!.key), cert: readFileSync(cert!.cert) }
  const server = https.createServer(tls, toNodeListener(wsApp, { errors: errorStream }))
  server.on('upgrade', toNodeUpgrade(wsApp, { errors: errorStream }))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const ws = new WebSocket(`wss://127.0.0.1:${(server.address() as AddressInfo).port}/echo`, ['chat'], { rejectUnauthorized: false })
  const messages: string[] = []
  ws.on('message', (data: Buffer) => {
    messages.push(data.toString())
    if (messages.length === 1) ws.send('over tls')
    else ws.send('close me')
  })
  const [code] = (await once(ws, 'close')) as [number]
  t.same(messages, ['hello chat', 'over tls'])
  t.equal(code, 4000)
})

t.test('inside Express: the app mounted with toNodeListener, its WebSockets on the same http server with toNodeUpgrade', async (t) => {
  const server = express()
    .use(toNodeListener(app, { errors: errorStream }))
    .listen(0, '127.0.0.1')
  server.on('upgrade', toNodeUpgrade(app, { errors: errorStream }))
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const port = (server.address() as AddressInfo).port
  const r = await talk('ws', port, '/echo', { protocols: ['chat'], send: ['via express', 'close me'] })
  t.same(r.messages, ['hello chat', 'via express'])
  t.equal(r.code, 4000)
  const res = await fetch(`http://127.0.0.1:${port}/http`)
  t.equal(await res.text(), 'ok plain')
})

t.test('toFetch on a host that cannot upgrade (in process on Node) offers nothing: the app answers 426, even to an invalid handshake', async (t) => {
  const handler = toFetch(app, { errors: errorStream })
  const headers = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' }
  const valid = await handler(new Request('http://localhost/echo', { headers }))
  t.equal(valid.status, 426)
  t.equal(valid.headers.get('upgrade'), 'websocket')
  const invalid = await handler(new Request('http://localhost/echo', { headers: { ...headers, 'sec-websocket-version': '12' } }))
  t.equal(invalid.status, 426, "the app's answer: a server without the extension calls the app as for any request")
  t.equal(invalid.headers.get('sec-websocket-version'), null)
})

t.test('without the upgrade listener the app is called without the extension and answers 426', async (t) => {
  const bare = await listen({}, false)
  const r = await talk('ws', bare, '/echo')
  t.equal(r.status, 426)
  const raw = await rawExchange(bare, handshake('/echo'), 200)
  t.match(raw.head, /\r\nUpgrade: websocket/i)
})

t.test('a silent client is pinged, then cut', async (t) => {
  const idle = await listen({ webSocket: { idleTimeout: 100 } })
  const socket = net.connect(idle, '127.0.0.1')
  socket.write(handshake('/echo'))
  let data = Buffer.alloc(0)
  socket.on('data', (d: Buffer) => {
    data = Buffer.concat([data, d])
  })
  socket.on('error', () => {})
  const started = Date.now()
  await once(socket, 'close')
  const elapsed = Date.now() - started
  const frames = data.subarray(data.indexOf('\r\n\r\n') + 4)
  t.ok(frames.includes(0x89), 'a ping frame was sent')
  t.ok(elapsed >= 150 && elapsed < 2000, `cut after about two idle timeouts (${elapsed} ms)`)
})

t.test('a handshake the app never answers gets 503 after the handshake timeout', async (t) => {
  const slow = await listen({ webSocket: { handshakeTimeout: 100 } })
  const r = await rawExchange(slow, handshake('/hang'))
  t.equal(r.status, 503)
  t.match(r.head, /\r\nConnection: close/i, 'and the connection closes')
})

t.test('serveNode wires the upgrade listener, and close() closes open sockets with 1001', async (t) => {
  const served = await serveNode(wsApp, { errors: errorStream, drainTimeout: 2000 })
  const ws = new WebSocket(`ws://127.0.0.1:${served.port}/echo`)
  const closed = once(ws, 'close')
  await once(ws, 'message')
  const started = Date.now()
  const { cut } = await served.close()
  const [code, reason] = (await closed) as [number, Buffer]
  t.equal(code, 1001)
  t.equal(reason.toString(), 'server shutting down')
  t.equal(cut, 0)
  t.ok(Date.now() - started < 1500, 'close() did not wait for the drain deadline')
})
