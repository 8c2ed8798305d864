/**
 * The request body through the node:http adapter (toNodeListener reads it
 * with lib/adapters/node-body.ts), attacked from a separate process:
 * uploads abandoned half-way, and uploads an app stops reading after their
 * first chunk, whose clients then send the rest and another request. Every
 * abandoned read fails and is released, every early stop is answered and
 * its connection serves on; afterwards the descriptors are back to
 * baseline, RSS is bounded, a well-behaved client is answered and SIGTERM
 * exits 0 (no request was left in flight).
 */
import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { fdsBack, startServer } from '../helpers/process.js'

const CLIENTS = 40
/** Each upload declares 1 MiB and sends this much of it first. */
const DECLARED = 1 << 20
const FIRST = 64 * 1024
/** What the server may keep after the attack: a kept body would be 1 MiB each, 80 MiB in all. */
const KEPT_BOUND = 4 * 2 ** 20
/**
 * Peak RSS the attack may add while it runs: the 40 MiB its clients have in
 * flight at once (each sends the rest of its 1 MiB in one go), plus the 16 MiB
 * V8's young generation may fill before a scavenge.
 */
const RSS_BOUND_KB = 56 * 1024

/** Sends a head declaring 1 MiB and its first 64 KiB, then leaves. */
async function abandon(port: number): Promise<void> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${DECLARED}\r\n\r\n`)
  await new Promise<void>((resolve) => socket.write(Buffer.alloc(FIRST, 'a'), () => resolve()))
  socket.destroy()
}

/** Uploads 1 MiB to `/first` (the app reads one chunk), waits for its answer, sends the rest and a second request; returns what came back within 10 s. */
async function stopEarly(port: number): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {}) // a reset shows in what came back
  await once(socket, 'connect')
  socket.setEncoding('latin1')
  let received = ''
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const answered = new Promise<void>((resolve) => {
    socket.on('data', (d: string) => {
      received += d
      if (/first \d+/.test(received)) resolve()
    })
  })
  socket.write(`POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: ${DECLARED}\r\n\r\n`)
  socket.write(Buffer.alloc(FIRST, 'f'))
  const late = setTimeout(() => socket.destroy(), 10_000) // a connection left waiting fails the count, not the run
  await answered
  socket.write(Buffer.alloc(DECLARED - FIRST, 'r'))
  socket.write('GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  await closed
  clearTimeout(late)
  return received
}

t.test('node adapter: abandoned uploads and early stops are released, and the connection serves on', async (t) => {
  const s = await startServer(t, { node: true })
  const rss = s.rssKb()
  const start = await s.memory()
  await Promise.all(Array.from({ length: CLIENTS }, () => abandon(s.port)))
  const answers = await Promise.all(Array.from({ length: CLIENTS }, () => stopEarly(s.port)))
  const served = answers.filter((a) => /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nfirst \d+HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nhello$/.test(a)).length
  t.equal(served, CLIENTS, `every early stop was answered, and the request after its dropped body too (${served} of ${CLIENTS})`)
  t.ok(s.alive, 'the server process is alive')
  await fdsBack(t, s, 2000)
  const after = await s.memory()
  const kept = after.heapUsed + after.arrayBuffers - (start.heapUsed + start.arrayBuffers)
  t.ok(kept < KEPT_BOUND, `nothing kept: heap and buffers after a full GC grew ${(kept / 2 ** 20).toFixed(1)} MiB (bound ${KEPT_BOUND / 2 ** 20})`)
  const grown = s.peakRssKb() - rss
  t.ok(grown < RSS_BOUND_KB, `peak RSS grew ${grown} KiB (bound ${RSS_BOUND_KB}): the bytes in flight at once, not kept`)
  t.equal((await s.get('/hello'))?.status, 200, 'a well-behaved client is answered')
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM: no request left in flight (${exit.ms} ms)`)
})
