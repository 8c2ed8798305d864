/**
 * Defect 5 of issue 9: a pipelining client that stops reading for a while is
 * not idle. While its responses wait for it to read them, the keep-alive
 * timeout must not close the connection (the send timeout governs that), so
 * every request is answered, in order, once it reads again; and the server
 * must not read (and buffer) without bound meanwhile. A connection the
 * server has ended is still destroyed within a bound when its client never
 * reads.
 */
import t from 'tap'
import net from 'node:net'
import { fdsBack, openSockets, startServer } from '../helpers/process.js'
import { sleep } from '../helpers/server.js'

/** Pipelined requests (the issue used 60,000). */
const REQUESTS = 20_000
/** How long the client stops reading: several keep-alive timeouts, well under the send timeout. */
const PAUSE = 1500
const KEEP_ALIVE = 300
const SEND_TIMEOUT = 5000
/** Memory the pipeline may add, in KiB: the responses (about 20 MB) must wait in the kernel, not in the server. */
const RSS_BOUND = 48 * 1024

/**
 * Reads Content-Length-framed responses off a socket incrementally (the raw
 * client re-parses everything on each read, too slow for 20 MB) and keeps,
 * per response, its status and the first bytes of its body.
 */
class ResponseReader {
  readonly responses: Array<{ status: number; start: string }> = []
  closed = false
  private buf: Buffer = Buffer.alloc(0)
  malformed: string | null = null

  constructor(socket: net.Socket) {
    socket.on('data', (d: Buffer) => this.feed(d))
    socket.on('close', () => (this.closed = true))
  }

  private feed(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d])
    let pos = 0
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n', pos, 'latin1')
      if (end === -1) break
      const head = this.buf.subarray(pos, end).toString('latin1')
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(head)
      const length = /\r\ncontent-length: *(\d+)/i.exec(head)
      if (status === null || length === null) {
        this.malformed ??= head.slice(0, 200)
        break
      }
      const bodyEnd = end + 4 + Number(length[1])
      if (bodyEnd > this.buf.length) break
      this.responses.push({ status: Number(status[1]), start: this.buf.subarray(end + 4, Math.min(bodyEnd, end + 24)).toString('latin1') })
      pos = bodyEnd
    }
    this.buf = this.buf.subarray(pos)
  }
}

t.test(`${REQUESTS} pipelined requests, the client pausing ${PAUSE} ms: every one answered, in order`, async (t) => {
  const s = await startServer(t, { options: { keepAliveTimeout: KEEP_ALIVE, sendTimeout: SEND_TIMEOUT } })
  const rss = s.rssKb()
  const socket = net.connect({ port: s.port, host: '127.0.0.1' })
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.pause()
  let requests = ''
  for (let i = 0; i < REQUESTS; i++) requests += `GET /item?i=${i} HTTP/1.1\r\nHost: x\r\n\r\n`
  socket.write(requests)
  await sleep(PAUSE)
  const reader = new ResponseReader(socket)
  socket.resume()
  const until = Date.now() + 20_000
  while (reader.responses.length < REQUESTS && !reader.closed && reader.malformed === null && Date.now() < until) await sleep(20)
  t.equal(reader.malformed, null, 'every response well formed')
  t.equal(reader.responses.length, REQUESTS, `every request answered (${reader.responses.length}; connection ${reader.closed ? 'closed' : 'open'})`)
  const firstWrong = reader.responses.findIndex((r, i) => r.status !== 200 || !r.start.startsWith(`item ${i};`))
  t.equal(firstWrong, -1, `in order, all 200${firstWrong === -1 ? '' : `: response ${firstWrong} is ${JSON.stringify(reader.responses[firstWrong])}`}`)
  t.notOk(reader.closed, 'the connection is still open')
  const grown = s.peakRssKb() - rss
  t.ok(grown < RSS_BOUND, `resident memory grew ${grown} KiB (bound ${RSS_BOUND})`)
  socket.destroy()
  await fdsBack(t, s, 1000)
  t.equal((await s.get('/hello'))?.status, 200, 'a well-behaved client is answered')
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
})

t.test('a closing connection whose client never reads is destroyed within a bound', async (t) => {
  const sendTimeout = 500
  const s = await startServer(t, { options: { keepAliveTimeout: KEEP_ALIVE, sendTimeout } })
  const rss = s.rssKb()
  // Large responses, the last one asking to close; the client never reads a byte.
  const clients = await openSockets(t, s.port, 10)
  for (const [i, sock] of clients.sockets.entries()) {
    const whole = i % 2 === 0 ? '&whole=1' : '' // handed over as one buffer, or streamed
    sock.write(`GET /big?bytes=${16 << 20}${whole} HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
  }
  t.ok((await s.waitFdsAtLeast(s.baseline + 10, 1000)) >= s.baseline + 10, 'the server holds the connections')
  const bound = sendTimeout + 1500
  await fdsBack(t, s, bound)
  t.ok(s.alive, 'the server process is alive')
  const grown = s.peakRssKb() - rss
  // The whole-buffer bodies (5 × 16 MiB) are the app's own memory; the bound is on what the server adds.
  t.ok(grown < 5 * 16 * 1024 + RSS_BOUND, `resident memory grew ${grown} KiB`)
  t.equal((await s.get('/hello'))?.status, 200, 'a well-behaved client is answered')
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
})

t.test('a client that pipelines without end and never reads: the server stops reading, then cuts it', async (t) => {
  const sendTimeout = 500
  const s = await startServer(t, { options: { keepAliveTimeout: KEEP_ALIVE, sendTimeout } })
  const rss = s.rssKb()
  const socket = net.connect({ port: s.port, host: '127.0.0.1' })
  t.teardown(() => socket.destroy())
  let closed = false
  socket.on('error', () => {})
  socket.once('close', () => (closed = true))
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.pause()
  const batch = Buffer.from('GET /item?i=0 HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(1000))
  let written = 0
  const until = Date.now() + sendTimeout + 2500
  while (!closed && Date.now() < until) {
    if (socket.write(batch)) written += batch.length
    else await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), sleep(100)])
  }
  t.ok(closed, `the server cut the connection (after the client wrote ${(written / 2 ** 20).toFixed(1)} MiB)`)
  t.ok(written < 64 * 2 ** 20, 'the server stopped reading requests it could not answer')
  const grown = s.peakRssKb() - rss
  t.ok(grown < RSS_BOUND, `resident memory grew ${grown} KiB (bound ${RSS_BOUND})`)
  await fdsBack(t, s, 1000)
  t.equal((await s.get('/hello'))?.status, 200, 'a well-behaved client is answered')
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
})
