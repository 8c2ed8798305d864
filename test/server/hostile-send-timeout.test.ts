/**
 * Defect 6 of issue 9: clients that ask for a large body and never read it
 * must not pin connections (and kernel buffers) forever: a response that
 * makes no progress for `sendTimeout` ms is cut. A client that reads slowly
 * but keeps reading, with pauses shorter than the timeout, gets its whole
 * body.
 */
import t from 'tap'
import net from 'node:net'
import { fdsBack, openSockets, startServer } from '../helpers/process.js'
import { sleep } from '../helpers/server.js'

/** Clients that never read (the issue used 200). */
const N = 20
/** Bytes each asks for: far more than the kernel buffers of a connection that is never read. */
const BODY = 8 << 20
const SEND_TIMEOUT = 500
/** Memory the attack may add, in KiB: the bodies are produced lazily, so nothing near N × BODY. */
const RSS_BOUND = 48 * 1024

t.test(`${N} clients that never read a ${BODY >> 20} MiB body are cut after sendTimeout`, async (t) => {
  // keepAliveTimeout is long: only the send timeout may end these connections.
  const s = await startServer(t, { options: { sendTimeout: SEND_TIMEOUT, keepAliveTimeout: 60_000 } })
  const rss = s.rssKb()
  const started = Date.now()
  const clients = await openSockets(t, s.port, N)
  for (const sock of clients.sockets) sock.write(`GET /big?bytes=${BODY} HTTP/1.1\r\nHost: x\r\n\r\n`)
  t.ok((await s.waitFdsAtLeast(s.baseline + N, 1000)) >= s.baseline + N, 'the server holds the connections')
  // Meanwhile, a client that reads is served.
  const during = await s.get('/hello')
  t.equal(during?.status, 200, 'a well-behaved client is answered during the attack')
  const bound = SEND_TIMEOUT + 1500
  await fdsBack(t, s, bound)
  t.ok(Date.now() - started >= SEND_TIMEOUT, 'not before the send timeout')
  const grown = s.peakRssKb() - rss
  t.ok(grown < RSS_BOUND, `resident memory grew ${grown} KiB (bound ${RSS_BOUND})`)
  // What each client can still read is a cut response: less than the body, then the end.
  let short = 0
  await Promise.all(
    clients.sockets.map(
      (sock) =>
        new Promise<void>((resolve) => {
          let bytes = 0
          const timer = setTimeout(() => resolve(), 3000)
          sock.on('data', (d: Buffer) => (bytes += d.length))
          sock.once('close', () => {
            clearTimeout(timer)
            if (bytes < BODY) short++
            resolve()
          })
          sock.resume()
        }),
    ),
  )
  t.equal(short, N, 'every client got less than the body, then the connection ended')
  t.ok(s.alive, 'the server process is alive')
  t.equal((await s.get('/hello'))?.status, 200, 'a well-behaved client is answered after')
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
})

t.test('a slow reader whose pauses are shorter than sendTimeout gets the whole body', async (t) => {
  const s = await startServer(t, { options: { sendTimeout: SEND_TIMEOUT } })
  const socket = net.connect({ port: s.port, host: '127.0.0.1' })
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.pause()
  let bytes = 0
  let closed = false
  socket.on('data', (d: Buffer) => (bytes += d.length))
  socket.once('close', () => (closed = true))
  const body = BODY
  socket.write(`GET /big?bytes=${body} HTTP/1.1\r\nHost: x\r\n\r\n`)
  // Read in short bursts separated by pauses of 60 % of the send timeout.
  const until = Date.now() + 15_000
  while (bytes < body && !closed && Date.now() < until) {
    await sleep(SEND_TIMEOUT * 0.6)
    socket.resume()
    await sleep(10)
    socket.pause()
  }
  socket.resume()
  await sleep(100)
  t.ok(bytes > body, `the whole body arrived (${bytes} bytes with the head, body ${body})`)
  t.notOk(closed, 'and the connection is still open')
  socket.destroy()
  await fdsBack(t, s, 1000)
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
})
