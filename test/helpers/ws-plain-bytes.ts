/**
 * The check that binary WebSocket messages reach the app as plain
 * Uint8Arrays (not Node's Buffers) [ws-messages], shared by the tests of
 * postern's server and of node:http: an app that records what it receives,
 * and a `ws` client that sends a small and a large binary message to it.
 */
import { once } from 'node:events'
import type { Test } from 'tap'
import { WebSocket } from 'ws'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import type { WebSocketMessage } from '../../lib/gateway/websocket.js'

/** An app that accepts, records each message and answers each. */
export function recordingApp(): { app: GatewayApp; received: WebSocketMessage[] } {
  const received: WebSocketMessage[] = []
  const app: GatewayApp = (environ) => {
    const socket = environ['gateway.websocket']!.accept()
    return (async () => {
      for await (const message of socket) {
        received.push(message)
        await socket.send('got it')
      }
      return []
    })()
  }
  return { app, received }
}

/** Sends a 3-byte and a 200 KiB binary message to `port` and asserts the app got both, intact, as plain Uint8Arrays. */
export async function checkPlainBytes(t: Test, port: number, received: WebSocketMessage[]): Promise<void> {
  const client = new WebSocket(`ws://127.0.0.1:${port}/bytes`)
  client.on('error', () => {})
  await once(client, 'open')
  const large = new Uint8Array(200 * 1024).fill(7)
  for (const bytes of [new Uint8Array([1, 2, 3]), large]) {
    client.send(bytes)
    await once(client, 'message')
  }
  client.close()
  t.equal(received.length, 2)
  for (const message of received) t.equal(Object.getPrototypeOf(message), Uint8Array.prototype, 'a plain Uint8Array')
  t.same(received[0], new Uint8Array([1, 2, 3]))
  t.equal((received[1] as Uint8Array).byteLength, large.byteLength)
  t.ok(
    (received[1] as Uint8Array).every((b) => b === 7),
    'the large one intact',
  )
}
