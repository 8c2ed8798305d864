/**
 * Hono (bench/peers/hono-app.ts) on `Bun.serve` or `Deno.serve`: `app.fetch`
 * handed to the runtime, as Hono's Bun and Deno guides show. The WebSocket
 * echo uses the runtime's `upgradeWebSocket` helper as Hono's WebSocket
 * guide shows it (`hono/bun` with its `websocket` handlers given to
 * Bun.serve, `hono/deno`).
 */
import { Hono } from 'hono'
import type { UpgradeWebSocket } from 'hono/ws'
import type { Serve } from '../peer.js'
import { WS_PATH } from '../scenarios.js'
import { fetchRuntime, listenFetch } from './fetch-host.js'
import { honoApp } from './hono-app.js'

/**
 * The echo route with the runtime's helper. On Deno, binary messages are
 * asked for as ArrayBuffers (the WebSocket's default is Blob, which would
 * need an await and could reorder the echoes); on Bun the helper hands over
 * the bytes' ArrayBuffer itself.
 */
function echoApp(upgradeWebSocket: UpgradeWebSocket, deno: boolean): Hono {
  const app = new Hono()
  app.get(
    WS_PATH,
    upgradeWebSocket(() => ({
      onOpen(_event, ws) {
        if (deno) (ws.raw as { binaryType: string }).binaryType = 'arraybuffer'
      },
      onMessage(event, ws) {
        ws.send(event.data as string | ArrayBuffer)
      },
    })),
  )
  return app
}

export const serve: Serve = async (route, options) => {
  if (route !== 'ws') return listenFetch(honoApp(route).fetch, options)
  if (fetchRuntime() === 'bun') {
    const { upgradeWebSocket, websocket } = await import('hono/bun')
    return listenFetch(echoApp(upgradeWebSocket, false).fetch, options, websocket)
  }
  const { upgradeWebSocket } = await import('hono/deno')
  return listenFetch(echoApp(upgradeWebSocket as UpgradeWebSocket, true).fetch, options)
}
