/**
 * Defect 1 of issue 9: TLS connections that never finish the handshake must
 * not hold a file descriptor. A client that connects to the TLS port and
 * leaves (FIN or reset) without a handshake is released at once; one that
 * sends garbage fails its handshake and is released at once; one that stays
 * silent is destroyed after `handshakeTimeout`. Meanwhile a real TLS client
 * is served. Each attack runs against a server in its own process, watched
 * through /proc: descriptors back to baseline, memory bounded, exit code 0.
 */
import t from 'tap'
import net from 'node:net'
import tls from 'node:tls'
import type { Test } from 'tap'
import { fdsBack, makeCert, openSockets, startServer, type ServerProcess } from '../helpers/process.js'
import { sleep } from '../helpers/server.js'

/** Connections per attack (the issue used 1,000). */
const N = 200
/** Time allowed after the attack ends for the descriptors to come back. */
const SETTLE = 1000
/** Resident memory the attacks may add, in KiB. */
const RSS_BOUND = 64 * 1024

const cert = makeCert()

/** The checks after every attack: the server is alive, serves a TLS client, its memory stayed bounded. */
async function stillServing(t: Test, s: ServerProcess, rssBefore: number): Promise<void> {
  t.ok(s.alive, 'the server process is alive')
  const r = await s.get('/hello')
  t.equal(r?.status, 200, 'a well-behaved TLS client is answered')
  t.equal(r?.body.toString(), 'hello')
  const grown = s.peakRssKb() - rssBefore
  t.ok(grown < RSS_BOUND, `resident memory grew ${grown} KiB (bound ${RSS_BOUND})`)
}

/** The first flight of a real TLS client (its ClientHello), caught by a plain TCP listener. */
async function clientHello(): Promise<Buffer> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  const caught = new Promise<Buffer>((resolve) => server.once('connection', (sock) => sock.once('data', (d: Buffer) => resolve(d))))
  const client = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' })
  client.on('error', () => {})
  const hello = await caught
  client.destroy()
  server.close()
  return hello
}

if (cert === null) {
  t.skip('openssl is not available to make a test certificate', () => {})
} else {
  t.test('connections that leave before any handshake are released at once', async (t) => {
    // The default handshake timeout (10 s) is far away: only the client's leaving can free these.
    const s = await startServer(t, { tls: cert })
    const rss = s.rssKb()
    const fin = await openSockets(t, s.port, N)
    const rst = await openSockets(t, s.port, N)
    const held = await s.waitFdsAtLeast(s.baseline + 2 * N, SETTLE)
    t.ok(held >= s.baseline + 2 * N, `the server accepted the attackers' sockets (${held} descriptors)`)
    for (const sock of fin.sockets) sock.end()
    for (const sock of rst.sockets) sock.resetAndDestroy()
    await fdsBack(t, s, SETTLE)
    t.equal(await fin.allClosed(SETTLE), N, 'every half-closed client saw the server close')
    await stillServing(t, s, rss)
    const exit = await s.stop()
    t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
  })

  t.test('connections that send garbage instead of a ClientHello are released at once', async (t) => {
    const s = await startServer(t, { tls: cert })
    const rss = s.rssKb()
    const bad = await openSockets(t, s.port, N)
    await s.waitFdsAtLeast(s.baseline + N, SETTLE)
    // A plain-HTTP request and the client then waits, never closing: the failed handshake alone must free it.
    for (const sock of bad.sockets) sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    await fdsBack(t, s, SETTLE)
    t.equal(await bad.allClosed(SETTLE), N, 'every client saw its connection closed')
    await stillServing(t, s, rss)
    const exit = await s.stop()
    t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
  })

  t.test('a ClientHello trickled a byte at a time is still cut at handshakeTimeout', async (t) => {
    const handshakeTimeout = 300
    const s = await startServer(t, { tls: cert, options: { handshakeTimeout } })
    const rss = s.rssKb()
    const hello = await clientHello()
    const slow = await openSockets(t, s.port, N / 4)
    await s.waitFdsAtLeast(s.baseline + N / 4, SETTLE)
    let stop = false
    const trickle = (async () => {
      for (let i = 0; i < hello.length - 1 && !stop; i++) {
        for (const sock of slow.sockets) if (!sock.destroyed) sock.write(hello.subarray(i, i + 1))
        await sleep(50)
      }
    })()
    await fdsBack(t, s, handshakeTimeout + SETTLE)
    stop = true
    await trickle
    await stillServing(t, s, rss)
    const exit = await s.stop()
    t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
  })

  t.test('silent connections are destroyed after handshakeTimeout, while a real client is served', async (t) => {
    const handshakeTimeout = 300
    const s = await startServer(t, { tls: cert, options: { handshakeTimeout } })
    const rss = s.rssKb()
    const started = Date.now()
    const silent = await openSockets(t, s.port, N)
    t.ok((await s.waitFdsAtLeast(s.baseline + N, SETTLE)) >= s.baseline + N, 'the server accepted the silent sockets')
    // During the attack, a real client completes its handshake and is answered.
    const during = await s.get('/hello')
    t.equal(during?.status, 200, 'a TLS client is served while the silent ones wait')
    const bound = handshakeTimeout + SETTLE
    await fdsBack(t, s, bound)
    t.equal(await silent.allClosed(SETTLE), N, 'every silent client saw its connection closed')
    t.ok(Date.now() - started >= handshakeTimeout, 'not before the handshake timeout')
    await stillServing(t, s, rss)
    // A client that takes less than the timeout to shake hands is unaffected.
    const slowStart = await openSockets(t, s.port, 1)
    await sleep(handshakeTimeout / 3)
    t.equal(slowStart.closedCount, 0, 'a connection younger than the timeout is left alone')
    const exit = await s.stop()
    t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
  })
}
