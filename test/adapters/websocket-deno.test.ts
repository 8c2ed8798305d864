/**
 * The WebSocket extension on Deno through toFetch: the same app as on
 * node:http and Bun (test/fixtures/ws-app.ts), served by a real Deno.serve
 * process (Deno.upgradeWebSocket underneath), with the `ws` client,
 * undici's WebSocket and Deno's own WebSocket client (in a second Deno
 * process). Bad handshakes never reach the app and the server still serves
 * a good client after them; the handler's closeWebSockets() closes with
 * 1001. Skipped only when Deno is missing.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import path from 'node:path'
import { WebSocket } from 'ws'
import { ROOT, commonChecks, flood, handshake, rawExchange, rssKb, runtimeBinary, startRuntime, talk } from '../fixtures/ws-scenarios.js'

const deno = runtimeBinary('deno')
if (deno === null) {
  t.test('Deno is not installed (node_modules/.bin/deno is missing)', { skip: true }, () => {})
} else {
  const server = await startRuntime(t, 'deno', { WS_HANDSHAKE: '300' })
  if (typeof server === 'string') throw new Error(server)

  t.test('Deno.serve with toFetch', async (t) => {
    await commonChecks(t, server.port, { http10: 'offered', clients: ['ws', 'undici'], invalidUtf8: 'dropped', handoff: 'kept' })
    t.match(server.lines.join('\n'), /app error after accept\(\): Error: crash on boom/, 'the 1011 was logged')
    t.same(
      server.lines.filter((line) => line.startsWith('VIOLATION')),
      [],
      'validate() found no violation on either side',
    )
  })

  t.test("Deno's own WebSocket client", async (t) => {
    const args = ['run', '--quiet', '--allow-net', '--no-lock', '--no-check', path.join(ROOT, 'test/fixtures/ws-runtime-client.ts'), String(server.port)]
    const client = spawn(deno, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } })
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
    t.match(refused, { opened: false, messages: [] }, 'the 401 refuses the handshake')
    // Deno's client reports a refused handshake with code 0 (a browser says 1006).
    t.ok(refused!.code === 1006 || refused!.code === 0, `closed without a close frame (${String(refused!.code)})`)
    t.match(crash, { opened: true, code: 1011 })
    t.match(big, { messages: ['hello none'], code: 1009 })
  })

  t.test('a client that floods and never reads: Deno cannot stop reading, so the unread bound closes it with 1008', async (t) => {
    const before = rssKb(server.child.pid!)
    const f = await flood(server.port, '/echo', 64 * 1024 * 1024)
    // Deno sends the 1008 close frame, then resets the connection as more frames come: the client may see either.
    t.ok(f.closeCode === 1008 || f.reset, `closed by the server after ${f.written} bytes (close code ${f.closeCode}, reset: ${f.reset})`)
    t.notOk(f.stalled, 'Deno kept reading (it cannot pause)')
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

  t.test('a silent client is pinged, then closed (Deno pings every idleTimeout)', async (t) => {
    const idle = await startRuntime(t, 'deno', { WS_IDLE: '1000' })
    if (typeof idle === 'string') throw new Error(idle)
    const socket = net.connect(idle.port, '127.0.0.1')
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
    t.ok(elapsed >= 900 && elapsed < 5000, `closed after about one or two idle timeouts (${elapsed} ms)`)
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
}
