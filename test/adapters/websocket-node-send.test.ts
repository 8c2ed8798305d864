/**
 * node:http through toNodeUpgrade, where the adapter must match postern's
 * server: binary messages reach the app as plain Uint8Arrays (not Node's
 * Buffers), a client that reads nothing is cut after `webSocket.sendTimeout`
 * (not the idle timeout) so an app blocked in send() is released, and a
 * send() rejected because the server closed the socket is not reported as
 * an app error, while a real error after it is.
 */
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { toNodeListener, toNodeUpgrade, type NodeUpgradeListener } from '../../lib/adapters/node.js'
import type { WebSocketOptions } from '../../lib/gateway/websocket-limits.js'
import type { ErrorStream, GatewayApp } from '../../lib/gateway/spec.js'
import type { GatewayWebSocket, WebSocketClose } from '../../lib/gateway/websocket.js'
import { WebSocketClosedError } from '../../lib/gateway/websocket-transport.js'
import { handshake } from '../fixtures/ws-scenarios.js'
import type { Teardown } from '../helpers/server.js'
import { checkPlainBytes, recordingApp } from '../helpers/ws-plain-bytes.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** node:http with both listeners; the upgrade listener is returned for closeAll(). */
async function listen(t: Teardown, app: GatewayApp, webSocket: WebSocketOptions = {}): Promise<{ port: number; upgrade: NodeUpgradeListener; errors: string[] }> {
  const errors: string[] = []
  const errorStream: ErrorStream = { write: (m) => void errors.push(m), flush() {} }
  const server = http.createServer(toNodeListener(app, { errors: errorStream }))
  const upgrade = toNodeUpgrade(app, { errors: errorStream, webSocket })
  server.on('upgrade', upgrade)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { port: (server.address() as AddressInfo).port, upgrade, errors }
}

/** A client that sends the handshake and never reads a byte. */
async function mute(t: Teardown, port: number, path: string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.pause()
  socket.write(handshake(path))
  t.teardown(() => void socket.destroy())
  return socket
}

/** Counts the app's sends until they stop going out (the app is blocked), bounded. */
async function blockedAfter(count: () => number): Promise<void> {
  let last = -1
  const until = Date.now() + 3000
  while (count() !== last && Date.now() < until) {
    last = count()
    await sleep(100)
  }
}

/** Accepts, then sends 64 KiB chunks until a send rejects; records the sockets, sends and rejections. */
function flooder(): { app: GatewayApp; sockets: GatewayWebSocket[]; rejections: unknown[]; sent: () => number } {
  const sockets: GatewayWebSocket[] = []
  const rejections: unknown[] = []
  let sent = 0
  const app: GatewayApp = (environ) => {
    const socket = environ['gateway.websocket']!.accept()
    sockets.push(socket)
    const real = environ.PATH_INFO === '/then-fail'
    return (async () => {
      const chunk = new Uint8Array(64 * 1024)
      try {
        for (;;) {
          await socket.send(chunk)
          sent++
        }
      } catch (error) {
        rejections.push(error)
        if (real) throw new Error('a real failure after the close')
        throw error
      }
    })()
  }
  return { app, sockets, rejections, sent: () => sent }
}

t.test('a binary message reaches the app as a plain Uint8Array (not a Buffer), small or large', async (t) => {
  const { app, received } = recordingApp()
  const { port } = await listen(t, app)
  await checkPlainBytes(t, port, received)
})

t.test('a client that reads nothing is cut after sendTimeout, long before the idle timeout; the blocked send rejects', async (t) => {
  const flood = flooder()
  const { port } = await listen(t, flood.app, { sendTimeout: 300, idleTimeout: 60_000 })
  const started = Date.now()
  await mute(t, port, '/flood')
  while (flood.sockets.length === 0 && Date.now() - started < 2000) await sleep(5)
  t.equal(flood.sockets.length, 1, 'the app accepted')
  const closed: WebSocketClose | 'still open' = await Promise.race([flood.sockets[0]!.closed, sleep(3000).then(() => 'still open' as const)])
  const took = Date.now() - started
  t.same(closed, { code: 1006, reason: '' }, 'the connection was cut')
  t.ok(took < 3000, `cut ${took} ms after the client connected (sendTimeout 300 ms, idleTimeout 60 s)`)
  t.ok(flood.sent() > 2, `the app sent ${flood.sent()} chunks before it blocked`)
  await sleep(10)
  t.equal(flood.rejections.length, 1, 'the blocked send rejected')
  t.ok(flood.rejections[0] instanceof WebSocketClosedError)
})

t.test('a send() rejected because the server closed the socket is not logged as an app error; a real error after it is', async (t) => {
  const flood = flooder()
  const { port, upgrade, errors } = await listen(t, flood.app, { closeTimeout: 200 })
  await Promise.all(['/blocked', '/then-fail'].map((path) => mute(t, port, path)))
  await blockedAfter(flood.sent)
  t.equal(flood.sockets.length, 2)
  t.equal(flood.rejections.length, 0, 'both apps are blocked in send()')
  await upgrade.closeAll()
  await sleep(10)
  t.equal(flood.rejections.length, 2, 'the shutdown (1001) rejected both blocked sends')
  for (const error of flood.rejections) t.ok(error instanceof WebSocketClosedError, 'with a WebSocketClosedError')
  const log = errors.join('')
  t.notMatch(log, /WebSocketClosedError/, 'the rejected send is not reported as an app error')
  t.match(log, /app error after accept\(\): Error: a real failure after the close/, 'a real error after the close still is')
  t.equal(log.match(/app error after accept/g)?.length, 1, 'one report, the real one')
})
