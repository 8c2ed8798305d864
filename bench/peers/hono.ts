/** Hono (bench/peers/hono-app.ts) on @hono/node-server, as Hono's Node.js guide shows. */
import { serve as honoServe } from '@hono/node-server'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import type { Serve } from '../peer.js'
import { honoApp } from './hono-app.js'

export const serve: Serve = async (route, options) => {
  const app = honoApp(route)
  let listening!: (port: number) => void
  const ready = new Promise<number>((resolve) => (listening = resolve))
  const server = honoServe({ fetch: app.fetch, port: options.port, hostname: options.host }, (info: AddressInfo) => listening(info.port)) as Server
  if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout
  return {
    port: await ready,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
