/**
 * The Fastify app of fastify.ts on postern's server through `fromNode`:
 * Fastify's `serverFactory` hands over its request handler, which runs on
 * postern's server; the node:http server it must return never listens.
 */
import { createServer, type RequestListener } from 'node:http'
import { fromNode, type NodeListener } from '../../lib/adapters/from-node.js'
import type { Serve } from '../peer.js'
import { fastifyApp } from './fastify.js'
import { listenPostern } from './postern-host.js'

export const serve: Serve = async (route, options) => {
  let handler: RequestListener | null = null
  const app = await fastifyApp(route, {
    serverFactory: (h) => {
      handler = h as RequestListener
      return createServer(h as RequestListener)
    },
  })
  await app.ready()
  if (handler === null) throw new Error('Fastify did not call its serverFactory')
  const running = await listenPostern(fromNode(handler as NodeListener), options)
  const close = async (): Promise<void> => {
    await running.close()
    await app.close()
  }
  return { port: running.port, close }
}
