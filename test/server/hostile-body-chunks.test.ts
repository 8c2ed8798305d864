/**
 * Defect 2 of issue 9: a chunked body sent as one-byte chunks must cost about
 * what its bytes cost, not a hundred times more (one buffer view per chunk),
 * on postern's server and in the node:http adapter alike; and past
 * `maxChunkCount` chunks the request gets 413 and its connection closes.
 * Bodies go to a real server process that reads them with `bytes()`; its
 * peak resident memory (VmHWM) is what is bounded.
 */
import t from 'tap'
import type { Test } from 'tap'
import net from 'node:net'
import { RawClient, connectionHas } from '../helpers/raw.js'
import { fdsBack, startServer, type ServerProcess } from '../helpers/process.js'

/** Concurrent uploads on postern's server (the issue used 8 × 1 MB); node:http parses slower, so it gets fewer. */
const UPLOADS = 4
const NODE_UPLOADS = 2
/** Bytes per upload. */
const BODY = 1 << 20
/**
 * Peak memory `bodyBytes` of uploads may add: a few times the body bytes in
 * flight, plus what V8's young generation may fill (its semi-spaces grow to
 * 16 MiB) before a scavenge, whatever the body. Before the fix it was over
 * 100 times the body bytes (over 350 on the node adapter).
 */
const memoryBound = (bodyBytes: number) => 16 * 2 ** 20 + 4 * bodyBytes

/** `count` chunks of one byte each, and the last chunk. */
function oneByteChunks(count: number): Buffer {
  const one = Buffer.from('1\r\nx\r\n')
  const buf = Buffer.alloc(count * one.length + 5)
  for (let i = 0; i < count; i++) one.copy(buf, i * one.length)
  buf.write('0\r\n\r\n', count * one.length, 'latin1')
  return buf
}

/** Posts `body` (already chunk-framed) on a plain socket and resolves with the whole response text once the server closes. */
function post(port: number, path: string, body: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' })
    const parts: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no complete answer within 30 s: ${Buffer.concat(parts).toString('latin1').slice(0, 200)}`))
    }, 30_000)
    socket.on('data', (d: Buffer) => parts.push(d))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(parts).toString('latin1'))
    })
    socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`)
    socket.end(body)
  })
}

/** Uploads `uploads` one-byte-chunked bodies at once; checks each was read whole and the memory bound held. */
async function uploadAndMeasure(t: Test, s: ServerProcess, uploads: number): Promise<void> {
  const body = oneByteChunks(BODY)
  const before = s.rssKb()
  const answers = await Promise.all(Array.from({ length: uploads }, () => post(s.port, `/read?limit=${BODY}`, body)))
  for (const [i, answer] of answers.entries()) {
    t.match(answer, /^HTTP\/1\.1 200 /, `upload ${i} answered 200`)
    t.ok(answer.endsWith(`\r\n\r\n${BODY}`), `upload ${i}: the app read all ${BODY} bytes (${answer.slice(-20)})`)
  }
  const grownBytes = (s.peakRssKb() - before) * 1024
  const bound = memoryBound(uploads * BODY)
  t.ok(
    grownBytes <= bound,
    `peak memory grew ${(grownBytes / 2 ** 20).toFixed(1)} MiB for ${(uploads * BODY) / 2 ** 20} MiB of body in one-byte chunks (bound ${bound / 2 ** 20} MiB)`,
  )
  t.ok(s.alive, 'the server process is alive')
  await fdsBack(t, s, 1000)
  t.equal((await s.get('/hello'))?.status, 200, 'a well-behaved client is answered')
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
}

t.test('postern server: one-byte chunks cost memory in proportion to the body', async (t) => {
  // The count limit is raised so that only the memory per chunk is tested here.
  const s = await startServer(t, { options: { maxChunkCount: 1 << 24, maxBodySize: BODY } })
  await uploadAndMeasure(t, s, UPLOADS)
})

t.test('node adapter (toNodeListener): one-byte chunks cost memory in proportion to the body', async (t) => {
  const s = await startServer(t, { node: true, options: { maxBodySize: BODY } })
  await uploadAndMeasure(t, s, NODE_UPLOADS)
})

t.test('maxChunkCount (default 16,384): one chunk more gets 413 and the connection closes', async (t) => {
  const s = await startServer(t, {})
  const under = await post(s.port, '/read', oneByteChunks(16_383))
  t.match(under, /^HTTP\/1\.1 200 /, '16,383 one-byte chunks are read')
  t.ok(under.endsWith('\r\n\r\n16383'), 'all of them')

  const c = await RawClient.connect(s.port)
  t.teardown(() => c.destroy())
  c.write('POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n')
  c.write(oneByteChunks(16_385))
  c.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n')
  const r = await c.read(1, 5000)
  const res = r.responses[0]
  t.equal(res?.status, 413, `16,385 chunks: 413 (${r.raw.slice(0, 120)})`)
  if (res !== undefined) t.ok(connectionHas(res, 'close'), 'with Connection: close')
  t.ok(await c.closed(2000), 'and the connection is closed')
  t.notMatch(c.received, /hello/, 'the request after the refused body is not served')
  await fdsBack(t, s, 1000)
  t.equal((await s.get('/hello'))?.status, 200, 'a well-behaved client is answered')
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
})
