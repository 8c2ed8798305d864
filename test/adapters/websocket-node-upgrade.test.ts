/**
 * node:http's upgrade listener beyond the handshake itself: a request that
 * upgrades to something other than WebSocket (`Upgrade: h2c`) is served
 * normally when it has no body and refused with 501 when it has one (Node
 * stopped parsing at the upgrade, so the body would be lost); the
 * listener's `size` and `answering` follow the connections live; after
 * `closeAll()` a socket the app accepts is closed with 1001 at once; and
 * serveNode's close() counts a handshake still unanswered at the drain
 * deadline as cut. Raw bytes over net.Socket, so nothing is hidden.
 */
import t, { type Test } from 'tap'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { WebSocket } from 'ws'
import { serveNode, toNodeListener, toNodeUpgrade, type NodeUpgradeListener } from '../../lib/adapters/node.js'
import type { ErrorStream } from '../../lib/gateway/spec.js'
import { wsApp } from '../fixtures/ws-app.js'

const errors: string[] = []
const errorStream: ErrorStream = { write: (m) => void errors.push(m), flush() {} }

/** node:http with both listeners; returns the port and the upgrade listener. */
async function listen(t: Test): Promise<{ port: number; upgrade: NodeUpgradeListener }> {
  const server = http.createServer(toNodeListener(wsApp, { errors: errorStream }))
  const upgrade = toNodeUpgrade(wsApp, { errors: errorStream, webSocket: { handshakeTimeout: 2000 } })
  server.on('upgrade', upgrade)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { port: (server.address() as AddressInfo).port, upgrade }
}

/** Writes `request` on a fresh connection and collects the answer until the server closes or `ms` pass. */
async function exchange(t: Test, port: number, request: string, ms = 1500): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(request)
  let out = ''
  socket.on('data', (d: Buffer) => {
    out += d.toString('latin1')
  })
  await Promise.race([once(socket, 'close'), new Promise((resolve) => setTimeout(resolve, ms))])
  return out
}

const H2C = 'Host: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n'
const calls = async (port: number): Promise<Record<string, number>> => (await (await fetch(`http://127.0.0.1:${port}/calls`)).json()) as Record<string, number>

t.test('Upgrade: h2c with a body is refused with 501 (never served with the body lost); without one it is served', async (t) => {
  const { port } = await listen(t)
  const sized = await exchange(t, port, `POST /http HTTP/1.1\r\n${H2C}Content-Length: 5\r\n\r\nhello`)
  t.match(sized, /^HTTP\/1\.1 501 /, 'Content-Length: 501')
  t.match(sized, /\r\nconnection: close\r\n/i, 'and the connection closes')
  t.match(sized, /not supported on node:http/, 'saying why')
  const chunked = await exchange(t, port, `POST /http HTTP/1.1\r\n${H2C}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)
  t.match(chunked, /^HTTP\/1\.1 501 /, 'chunked: 501')
  const head = await exchange(t, port, `HEAD /http HTTP/1.1\r\n${H2C}Content-Length: 5\r\n\r\nhello`)
  t.match(head, /^HTTP\/1\.1 501 [\s\S]*\r\n\r\n$/, 'HEAD: 501 without a body')
  t.notOk('/http' in (await calls(port)), 'the app was not called for any of them')
  const bodyless = await exchange(t, port, `GET /http HTTP/1.1\r\n${H2C}\r\n`)
  t.match(bodyless, /^HTTP\/1\.1 200 [\s\S]*ok plain$/, 'a GET without a body is served')
  const empty = await exchange(t, port, `POST /http HTTP/1.1\r\n${H2C}Content-Length: 0\r\n\r\n`)
  t.match(empty, /^HTTP\/1\.1 200 [\s\S]*ok plain$/, 'so is a POST with Content-Length: 0')
  t.equal((await calls(port))['/http'], 2)
})

t.test('size and answering follow the connections; after closeAll() an accepted socket gets 1001 at once', async (t) => {
  const { port, upgrade } = await listen(t)
  t.equal(upgrade.size, 0)
  const echo = new WebSocket(`ws://127.0.0.1:${port}/echo`)
  t.teardown(() => echo.terminate())
  await once(echo, 'message')
  t.equal(upgrade.size, 1, 'one open WebSocket')
  const hang = net.connect(port, '127.0.0.1')
  t.teardown(() => hang.destroy())
  hang.on('error', () => {})
  await once(hang, 'connect')
  hang.write(`GET /hang HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`)
  for (let i = 0; i < 100 && upgrade.answering === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(upgrade.answering, 1, 'one handshake the app has not answered')
  const echoClosed = once(echo, 'close') as Promise<[number]>
  await upgrade.closeAll()
  t.equal((await echoClosed)[0], 1001, 'closeAll() closed the open one with 1001')
  t.equal(upgrade.size, 0)
  const late = new WebSocket(`ws://127.0.0.1:${port}/echo`)
  t.teardown(() => late.terminate())
  const events: string[] = []
  late.on('open', () => events.push('open'))
  late.on('message', (data: Buffer) => events.push(`message ${data.toString()}`))
  const [code] = (await once(late, 'close')) as [number]
  t.same(events, ['open'], 'accepted after closeAll(): the 101 goes out, nothing is echoed')
  t.equal(code, 1001, 'and it is closed with 1001 at once')
  t.equal(upgrade.size, 0, 'and never counted open')
})

t.test('serveNode: a handshake still unanswered at the drain deadline is counted as cut', async (t) => {
  const served = await serveNode(wsApp, { errors: errorStream, drainTimeout: 200, webSocket: { handshakeTimeout: 5000 } })
  const socket = net.connect(served.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(`GET /hang HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`)
  await new Promise((resolve) => setTimeout(resolve, 50))
  const started = Date.now()
  const { cut } = await served.close()
  t.ok(Date.now() - started < 1500, 'close() ends at the drain deadline')
  t.equal(cut, 1, 'the unanswered handshake was cut, and close() says so')
})
