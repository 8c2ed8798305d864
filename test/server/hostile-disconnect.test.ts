/**
 * Defect 4 of issue 9: a client that sends a request and leaves (FIN or
 * reset) while the app is still working must not keep its socket open, and
 * the app must be told (its body's `close()` is called when it returns the
 * body); nothing more is written to a client that left. Otherwise a slow
 * endpoint leaks a descriptor per impatient client, a hung one leaks them
 * forever, and graceful shutdown never finishes.
 */
import t from 'tap'
import type { Test } from 'tap'
import { fdsBack, openSockets, startServer, type ServerProcess } from '../helpers/process.js'
import { sleep } from '../helpers/server.js'

/** Clients per attack (the issue used 2,000). */
const N = 200
/** How long the clients wait before leaving. */
const PATIENCE = 100
/** How long `/slow` takes: well after the descriptors must be back. */
const SLOW = 2000
/** Time allowed after the clients left for the descriptors to come back. */
const SETTLE = 1000

/** Sends `GET path` on `N` connections, waits {@link PATIENCE} ms, then has every client leave the given way. */
async function requestAndLeave(t: Test, s: ServerProcess, path: string, how: 'fin' | 'reset'): Promise<{ received: () => number }> {
  const clients = await openSockets(t, s.port, N)
  let received = 0
  for (const sock of clients.sockets) {
    sock.on('data', (d: Buffer) => (received += d.length))
    sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
  }
  await sleep(PATIENCE)
  for (const sock of clients.sockets) {
    if (how === 'fin') sock.end()
    else sock.resetAndDestroy()
  }
  return { received: () => received }
}

for (const how of ['fin', 'reset'] as const) {
  t.test(`${how}: clients leaving a slow endpoint are released at once, and the app's body is closed`, async (t) => {
    const s = await startServer(t, {})
    const before = await s.stats()
    const left = Date.now()
    const { received } = await requestAndLeave(t, s, `/slow?ms=${SLOW}`, how)
    await fdsBack(t, s, SETTLE)
    t.ok(Date.now() - left < SLOW, 'before the app answered')
    // The app returns its bodies at SLOW ms: each must be closed, none sent.
    const until = Date.now() + SLOW + 2000
    let stats = await s.stats()
    while ((stats.returned - before.returned < N || stats.closed - before.closed < N) && Date.now() < until) {
      await sleep(50)
      stats = await s.stats()
    }
    t.equal(stats.returned - before.returned, N, 'the app returned every body')
    t.equal(stats.closed - before.closed, N, "the server called every body's close()")
    if (how === 'fin') t.equal(received(), 0, 'nothing was written to the clients that left')
    t.ok(s.alive, 'the server process is alive')
    t.equal((await s.get('/hello'))?.status, 200, 'a well-behaved client is answered')
    await fdsBack(t, s, SETTLE)
    const exit = await s.stop('SIGTERM', 3000)
    t.equal(exit.code, 0, `exit code 0 after SIGTERM`)
    t.ok(exit.ms < 1000, `and promptly (${exit.ms} ms)`)
  })
}

t.test('clients leaving with pipelined requests unanswered: every returned body is closed', async (t) => {
  const s = await startServer(t, {})
  const clients = await openSockets(t, s.port, N / 5)
  let received = 0
  for (const sock of clients.sockets) {
    sock.on('data', (d: Buffer) => (received += d.length))
    sock.write(`GET /slow?ms=${SLOW / 2} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(5))
  }
  await sleep(PATIENCE)
  for (const sock of clients.sockets) sock.end()
  await fdsBack(t, s, SETTLE)
  const until = Date.now() + SLOW + 2000
  let stats = await s.stats()
  while (stats.closed < stats.started && Date.now() < until) {
    await sleep(50)
    stats = await s.stats()
  }
  t.equal(stats.started, N, 'the app got every pipelined request')
  t.equal(stats.returned, N, 'and returned every body')
  t.equal(stats.closed, stats.returned, "the server called every returned body's close()")
  t.equal(received, 0, 'nothing was written to the clients that left')
  t.equal((await s.get('/hello'))?.status, 200, 'a well-behaved client is answered')
  const exit = await s.stop('SIGTERM', 3000)
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
})

t.test('clients leaving a hung endpoint are released, and shutdown is not held up by them', async (t) => {
  const s = await startServer(t, {})
  await requestAndLeave(t, s, '/never', 'fin')
  await requestAndLeave(t, s, '/never', 'reset')
  await fdsBack(t, s, SETTLE)
  const stats = await s.stats()
  t.equal(stats.started, 2 * N, 'the app got every request')
  t.equal((await s.get('/hello'))?.status, 200, 'a well-behaved client is answered')
  const exit = await s.stop('SIGTERM', 3000)
  t.equal(exit.code, 0, 'exit code 0 after SIGTERM: no client was waiting')
  t.ok(exit.ms < 1000, `and promptly (${exit.ms} ms)`)
})
