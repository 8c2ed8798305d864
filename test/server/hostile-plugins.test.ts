/**
 * Clients that ask for a large static file and never read it, as it is and
 * compressed (gzip, deflate, br), cannot grow the server's memory: the file
 * is read, and compressed, only as fast as each socket takes the bytes. The
 * server runs in its own process (`serveStatic` under `compression()`),
 * watched through /proc: resident memory while the clients hold on, file
 * descriptors back to baseline once they leave, a good client still served,
 * and a clean exit.
 */
import t from 'tap'
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fdsBack, startServer } from '../helpers/process.js'
import { sleep } from '../helpers/server.js'

/** The file: text that compresses to about three quarters, so every encoding has megabytes to send. */
const FILE_BYTES = 16 * 1024 * 1024
const ENCODINGS = ['identity', 'gzip', 'deflate', 'br'] as const
const CLIENTS_PER_ENCODING = 4
/**
 * Memory the stalled clients may add, in KiB. With backpressure each holds a
 * socket's and a compressor's buffers, a few MB (about 40 MB for these 16);
 * a server that ignored it (the exchange never waiting) grew by 159 MB in the
 * same 1.5 s, and would go on to a copy of the file per client.
 */
const RSS_BOUND = 96 * 1024

const dir = mkdtempSync(join(tmpdir(), 'postern-hostile-plugins-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
writeFileSync(join(dir, 'big.txt'), randomBytes((FILE_BYTES * 3) / 4).toString('base64'))
writeFileSync(join(dir, 'small.txt'), 'hello from the folder\n')

t.test('clients that never read a large file, plain or compressed, cannot grow the server', async (t) => {
  const s = await startServer(t, { files: dir })
  const before = s.rssKb()
  const sockets: net.Socket[] = []
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
  })
  for (const encoding of ENCODINGS) {
    for (let i = 0; i < CLIENTS_PER_ENCODING; i++) {
      const socket = net.connect(s.port, '127.0.0.1')
      socket.on('error', () => {})
      socket.pause() // never reads: what the server sends waits in the kernel, then in the server if it does not stop
      socket.write(`GET /files/big.txt HTTP/1.1\r\nHost: a\r\nAccept-Encoding: ${encoding}\r\n\r\n`)
      sockets.push(socket)
    }
  }
  await s.waitFdsAtLeast(s.baseline + sockets.length, 5000)
  // Long enough for a server without backpressure to read and compress every file many times over.
  let peak = 0
  for (let i = 0; i < 15; i++) {
    await sleep(100)
    peak = Math.max(peak, s.rssKb())
  }
  t.ok(peak - before < RSS_BOUND, `resident memory grew by ${Math.round((peak - before) / 1024)} MB with ${sockets.length} stalled downloads (bound ${RSS_BOUND / 1024} MB)`)
  t.ok(s.alive, 'the server is alive')

  for (const socket of sockets) socket.destroy()
  t.ok(await fdsBack(t, s, 5000), 'descriptors back to baseline: every file and socket closed')
  const good = await s.get('/files/small.txt')
  t.equal(good?.status, 200, 'a well-behaved client is still served')
  t.equal(good?.body.toString(), 'hello from the folder\n')
  const exit = await s.stop()
  t.equal(exit.code, 0, 'and the server exits 0 on SIGTERM')
})
