/**
 * Defect 7 of issue 9: graceful shutdown has a deadline. On SIGTERM the
 * server process (test/fixtures/hostile-server.ts: `close()`, then exit 1 if
 * requests had to be cut) lets work in flight finish for `drainTimeout` ms,
 * then cuts the rest and exits non-zero, so a supervisor knows requests were
 * lost. Idle keep-alive clients do not hold it up at all, and a request
 * that finishes in time is answered with `Connection: close` and exit 0.
 */
import t from 'tap'
import { RawClient, connectionHas } from '../helpers/raw.js'
import { openSockets, startServer } from '../helpers/process.js'
import { sleep } from '../helpers/server.js'

const DRAIN = 500
/** The exit must come within the drain deadline plus this. */
const SLACK = 1000

t.test('a request that never answers: cut at drainTimeout, exit code 1', async (t) => {
  const s = await startServer(t, { options: { drainTimeout: DRAIN } })
  const c = await RawClient.connect(s.port)
  t.teardown(() => c.destroy())
  c.write('GET /never HTTP/1.1\r\nHost: x\r\n\r\n')
  for (let i = 0; i < 200 && (await s.stats()).started < 1; i++) await sleep(10)
  const exit = await s.stop('SIGTERM', 3000)
  t.notOk(exit.killed, 'exited by itself')
  t.equal(exit.code, 1, 'exit code 1: a request was cut')
  t.ok(exit.ms >= DRAIN - 50 && exit.ms <= DRAIN + SLACK, `after the drain deadline, not long after (${exit.ms} ms, deadline ${DRAIN})`)
  t.ok(await c.closed(1000), 'the client sees the connection closed')
  t.equal(c.received, '', 'and no response')
})

t.test('a half-sent request body: cut at drainTimeout, exit code 1', async (t) => {
  const s = await startServer(t, { options: { drainTimeout: DRAIN } })
  const c = await RawClient.connect(s.port)
  t.teardown(() => c.destroy())
  c.write('POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789')
  await sleep(100)
  const exit = await s.stop('SIGTERM', 3000)
  t.notOk(exit.killed, 'exited by itself')
  t.equal(exit.code, 1, 'exit code 1: a request was cut')
  t.ok(exit.ms >= DRAIN - 50 && exit.ms <= DRAIN + SLACK, `after the drain deadline, not long after (${exit.ms} ms, deadline ${DRAIN})`)
  t.ok(await c.closed(1000), 'the client sees the connection closed')
})

t.test('a client that never reads its large response: cut at drainTimeout, exit code 1', async (t) => {
  // The send timeout is far away: only the drain deadline may end this.
  const s = await startServer(t, { options: { drainTimeout: DRAIN, sendTimeout: 60_000 } })
  const [sock] = (await openSockets(t, s.port, 1)).sockets
  sock!.write(`GET /big?bytes=${64 << 20} HTTP/1.1\r\nHost: x\r\n\r\n`)
  await s.waitFdsAtLeast(s.baseline + 1, 1000)
  await sleep(100)
  const exit = await s.stop('SIGTERM', 3000)
  t.notOk(exit.killed, 'exited by itself')
  t.equal(exit.code, 1, 'exit code 1: a response was cut')
  t.ok(exit.ms >= DRAIN - 50 && exit.ms <= DRAIN + SLACK, `after the drain deadline, not long after (${exit.ms} ms, deadline ${DRAIN})`)
})

t.test('only idle keep-alive clients: exit at once with code 0', async (t) => {
  const s = await startServer(t, { options: { drainTimeout: 5000 } })
  const clients: RawClient[] = []
  t.teardown(() =>
    clients.forEach((c) => {
      c.destroy()
    }),
  )
  for (let i = 0; i < 20; i++) {
    const c = await RawClient.connect(s.port)
    clients.push(c)
    c.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n')
    const r = await c.read()
    if (r.responses[0]?.status !== 200) t.fail(`client ${i} not served: ${r.raw}`)
  }
  const exit = await s.stop('SIGTERM', 3000)
  t.equal(exit.code, 0, 'exit code 0')
  t.ok(exit.ms < SLACK, `at once: ${exit.ms} ms (the drain deadline is 5,000)`)
  const closed = await Promise.all(clients.map((c) => c.closed(500)))
  t.equal(closed.filter(Boolean).length, clients.length, 'every idle client sees the connection closed')
  t.ok(
    clients.every((c) => (c.received.match(/HTTP\/1\.1 /g) ?? []).length === 1),
    'with nothing sent after its response',
  )
})

t.test('a request that finishes within the deadline is answered with Connection: close, exit code 0', async (t) => {
  const s = await startServer(t, { options: { drainTimeout: 2000 } })
  const c = await RawClient.connect(s.port)
  t.teardown(() => c.destroy())
  c.write('GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n')
  for (let i = 0; i < 200 && (await s.stats()).started < 1; i++) await sleep(10)
  const stopping = s.stop('SIGTERM', 3000)
  const r = await c.read(1, 3000)
  t.equal(r.responses[0]?.status, 200, r.raw)
  t.equal(r.responses[0]?.body.toString(), 'slow')
  if (r.responses[0]) t.ok(connectionHas(r.responses[0], 'close'), 'Connection: close')
  const exit = await stopping
  t.equal(exit.code, 0, `exit code 0 (${exit.ms} ms)`)
  t.ok(exit.ms < 300 + SLACK, 'soon after the response')
})
