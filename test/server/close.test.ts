/**
 * server.close() is a graceful stop: no new connections, requests in flight
 * finish, idle keep-alive connections are closed, and the promise resolves
 * once everything is done.
 */
import t from 'tap'
import net from 'node:net'
import { createServer } from '../../lib/server/index.js'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { RawClient } from '../helpers/raw.js'
import { sleep, within } from '../helpers/server.js'

const app: GatewayApp = async (environ, startResponse) => {
  if (environ.PATH_INFO === '/slow') await sleep(300)
  startResponse('200 OK', [['Content-Type', 'text/plain']])
  return [`done ${environ.PATH_INFO}`]
}

const quiet = { errors: { write() {}, flush() {} } }

/** Resolves with 'refused' when nothing listens on `port`, 'connected' otherwise. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' })
    socket.once('connect', () => {
      socket.destroy()
      resolve('connected')
    })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : `error ${err.code}`))
  })
}

t.test('close() with no connections resolves and stops listening', async (t) => {
  const server = createServer(app, quiet)
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' })
  t.equal(await tryConnect(port), 'connected')
  await server.close()
  t.equal(await tryConnect(port), 'refused', 'new connections refused')
})

t.test('close() lets an in-flight request finish, then closes its connection', async (t) => {
  const server = createServer(app, quiet)
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' })
  const c = await RawClient.connect(port)
  t.teardown(() => c.destroy())
  c.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
  await sleep(50)
  let closed = false
  const closing = server.close().then(() => {
    closed = true
  })
  await sleep(20)
  t.equal(await tryConnect(port), 'refused', 'no new connections while closing')
  t.notOk(closed, 'close() waits for the request in flight')
  const r = await c.read()
  t.equal(r.responses[0]?.status, 200, r.raw)
  t.equal(r.responses[0]?.body.toString(), 'done /slow')
  t.ok(await c.closed(), 'connection closed after the in-flight response')
  await within(closing, 3000, undefined)
  t.ok(closed, 'close() resolved')
})

t.test('close() closes idle keep-alive connections', async (t) => {
  const server = createServer(app, { ...quiet, keepAliveTimeout: 60_000 })
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' })
  const c = await RawClient.connect(port)
  t.teardown(() => c.destroy())
  c.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\n')
  const r = await c.read()
  t.equal(r.responses[0]?.status, 200, r.raw)
  const idleNoRequest = await RawClient.connect(port)
  t.teardown(() => idleNoRequest.destroy())
  let closed = false
  const closing = server.close().then(() => {
    closed = true
  })
  t.ok(await c.closed(), 'idle connection closed')
  t.ok(await idleNoRequest.closed(), 'connection that never sent a request closed')
  await within(closing, 3000, undefined)
  t.ok(closed, 'close() resolved without waiting for keepAliveTimeout')
})

t.test('close() while pipelined requests are queued: those received are answered', async (t) => {
  const server = createServer(app, quiet)
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' })
  const c = await RawClient.connect(port)
  t.teardown(() => c.destroy())
  c.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n')
  await sleep(50)
  const closing = server.close()
  const r = await c.read(2)
  t.equal(r.responses[0]?.body.toString(), 'done /slow', r.raw)
  // The second request may be answered or refused by closing, but never answered wrongly.
  if (r.responses[1]) t.equal(r.responses[1].body.toString(), 'done /second')
  t.ok(await c.closed())
  await within(closing, 3000, undefined)
})
