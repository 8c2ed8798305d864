/**
 * The WebSocket extension on Bun through toFetch: the same app as on
 * node:http and Deno (test/fixtures/ws-app.ts), served by a real Bun.serve
 * process given the handler's `websocket` handlers, with the `ws` client,
 * undici's WebSocket and Bun's own WebSocket client (in a second Bun
 * process). Bad handshakes never reach the app and the server still serves
 * a good client after them; the handler's closeWebSockets() closes with
 * 1001; served without its `websocket` handlers, the handler does not offer
 * the extension (the app answers 426). Skipped only when Bun is missing.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { WebSocket } from 'ws'
import { once } from 'node:events'
import { ROOT, commonChecks, flood, handshake, rawExchange, rssKb, runtimeBinary, startRuntime, talk } from '../fixtures/ws-scenarios.js'

const bun = runtimeBinary('bun')
if (bun === null) {
  t.test('Bun is not installed (node_modules/.bin/bun is missing)', { skip: true }, () => {})
} else {
  const server = await startRuntime(t, 'bun', { WS_HANDSHAKE: '300' })
  if (typeof server === 'string') throw new Error(server)

  t.test('Bun.serve with toFetch and handler.websocket', async (t) => {
    await commonChecks(t, server.port, { http10: 'offered', clients: ['ws', 'undici'], invalidUtf8: 1007, handoff: 'kept-if-accepted-at-once' })
    t.match(server.lines.join('\n'), /app error after accept\(\): Error: crash on boom/, 'the 1011 was logged')
    t.same(
      server.lines.filter((line) => line.startsWith('VIOLATION')),
      [],
      'validate() found no violation on either side',
    )
  })

  t.test("Bun's own WebSocket client", async (t) => {
    const client = spawn(bun, ['run', path.join(ROOT, 'test/fixtures/ws-runtime-client.ts'), String(server.port)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    client.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    const [code] = (await once(client, 'exit')) as [number]
    t.equal(code, 0)
    const [echo, refused, crash, big] = out
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    t.match(echo, { protocol: 'chat', messages: ['hello chat', 'hi', [1, 2, 255]], code: 4000, reason: 'as asked' })
    t.match(refused, { opened: false, code: 1006 }, 'the 401 refuses the handshake')
    t.match(crash, { opened: true, code: 1011 })
    t.match(big, { messages: ['hello none'], code: 1009 })
  })

  t.test('a client that floods and never reads: Bun stops reading it, memory stays bounded', async (t) => {
    const before = rssKb(server.child.pid!)
    const f = await flood(server.port, '/echo', 64 * 1024 * 1024)
    t.ok(f.stalled, `the server stopped reading after ${f.written} bytes`)
    t.ok(f.written < 32 * 1024 * 1024, 'long before the 64 MiB were sent')
    const grown = rssKb(server.child.pid!) - before
    t.ok(grown < 48 * 1024, `resident memory grew by ${grown} KiB`)
    const r = await talk('ws', server.port, '/echo', { send: ['close me'] })
    t.same(r.messages, ['hello none'], 'a good client is served')
  })

  t.test('a handshake the app never answers gets 503 after the handshake timeout', async (t) => {
    const r = await rawExchange(server.port, handshake('/hang'), 3000)
    t.equal(r.status, 503)
  })

  t.test("the handler's closeWebSockets() closes open sockets with 1001", async (t) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/echo`)
    const closed = once(ws, 'close')
    await once(ws, 'message')
    const res = await fetch(`http://127.0.0.1:${server.port}/__close`)
    t.equal(await res.text(), 'closed')
    const [code] = (await closed) as [number]
    t.equal(code, 1001)
  })

  // [ws-shutdown]: closeWebSockets() holds from then on, so no socket opens between it and the server's stop().
  t.test('after closeWebSockets(), a socket the app accepts is closed with 1001 at once', async (t) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/echo`)
    t.teardown(() => ws.terminate())
    const events: string[] = []
    ws.on('open', () => events.push('open'))
    ws.on('message', (data: Buffer) => events.push(`message ${data.toString()}`))
    const [code] = (await once(ws, 'close')) as [number]
    t.same(events, ['open'], 'the app’s accept() still answered 101, and nothing was echoed')
    t.equal(code, 1001, 'then the socket closed with 1001')
    const res = await fetch(`http://127.0.0.1:${server.port}/http`)
    t.equal(await res.text(), 'ok plain', 'the server still serves normal requests')
  })

  t.test('served without handler.websocket, the extension is not offered: the app answers 426', async (t) => {
    const bare = await startRuntime(t, 'bun', { BARE: '1' })
    if (typeof bare === 'string') throw new Error(bare)
    const r = await talk('ws', bare.port, '/echo')
    t.equal(r.status, 426)
    await talk('ws', bare.port, '/echo')
    const hints = bare.lines.filter((line) => line.includes('Bun.serve was not given'))
    t.equal(hints.length, 1, 'the error log says once how to serve WebSockets on Bun')
    t.match(hints[0], /Bun\.serve\(\{ fetch: handler, websocket: handler\.websocket \}\)/)
    const res = await fetch(`http://127.0.0.1:${bare.port}/http`)
    t.equal(await res.text(), 'ok plain')
  })

  t.test('the handler on a second Bun server without its websocket handlers: accept() fails with 500 and says why', async (t) => {
    const mixed = await startRuntime(t, 'bun', { MIXED: '1' })
    if (typeof mixed === 'string') throw new Error(mixed)
    const r = await talk('ws', mixed.port, '/echo')
    t.equal(r.status, 500)
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.match(mixed.lines.join('\n'), /Bun could not upgrade this request .*Bun\.serve\(\{ fetch: handler, websocket: handler\.websocket \}\)/)
    const res = await fetch(`http://127.0.0.1:${mixed.port}/http`)
    t.equal(await res.text(), 'ok plain', 'the server goes on')
  })
}
