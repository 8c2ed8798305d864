/**
 * The `gateway.websocket` offer every adapter puts in the environ of a valid
 * handshake: `accept()` checks the app's options [ws-protocol], marks the
 * call as upgraded (the runner then refuses `startResponse` and closes the
 * socket with 1011 if the app fails [ws-app]) and lets the adapter send the
 * 101 its own way. Written once here so node:http, Bun and Deno keep the
 * same order. Free of Node built-ins.
 */
import type { GatewayCall } from '../gateway/runner.js'
import type { ValidHandshake } from '../gateway/websocket-handshake.js'
import { checkAcceptOptions, type AcceptChoice } from '../gateway/websocket-rules.js'
import { TransportWebSocket } from '../gateway/websocket-transport.js'
import type { WebSocketAcceptOptions, WebSocketUpgrade } from '../gateway/websocket.js'
import type { WebSocketLimits } from '../gateway/websocket-limits.js'

/**
 * Sends the 101 with `choice` and connects a transport to `socket` (now, or
 * later with `socket.attach`). When it cannot, it answers the request itself,
 * ends `socket` and throws: `accept()` then throws that to the app.
 */
export type OpenWebSocket = (choice: AcceptChoice, socket: TransportWebSocket) => void

/** The offer for one call: `accept()` makes the socket and hands it to `open`. */
export function offerWebSocket(call: GatewayCall, handshake: ValidHandshake, limits: WebSocketLimits, open: OpenWebSocket, drainEvents = true): WebSocketUpgrade {
  const protocols = Object.freeze([...handshake.protocols])
  return {
    protocols,
    accept(options?: WebSocketAcceptOptions) {
      const choice = checkAcceptOptions(options, protocols)
      const socket = new TransportWebSocket(choice.protocol, null, {
        readHighWater: limits.readHighWater,
        readLimit: limits.readLimit,
        sendHighWater: limits.sendHighWater,
        drainEvents,
      })
      call.markUpgraded(socket)
      open(choice, socket)
      return socket
    },
  }
}

/**
 * Answers 503 when the app neither accepted nor answered within
 * `handshakeTimeout` [ws-limits]: a handshake must not hold a connection
 * forever. Returns the timer's cancel.
 */
export function handshakeDeadline(call: GatewayCall, limits: WebSocketLimits): () => void {
  const timer = setTimeout(() => {
    if (!call.committed && !call.isUpgraded) call.refuse(503, 'the app did not answer the WebSocket handshake in time')
  }, limits.handshakeTimeout)
  // The deadline alone must not keep the process alive: Node and Bun timers have unref(), Deno has Deno.unrefTimer(id).
  if (typeof timer === 'object' && timer !== null && 'unref' in timer) timer.unref()
  else (globalThis as { Deno?: { unrefTimer?(id: unknown): void } }).Deno?.unrefTimer?.(timer)
  return () => clearTimeout(timer)
}
