/**
 * Header names are cached three times on a request's way (the parser's
 * names, the environ's keys, `environKey`), each bounded in entries and, by
 * CACHED_NAME_MAX, in name length. An attacker sending a new 15 KB name with
 * every request must not make them keep it: before the length bound,
 * `environKey` alone kept 4,096 such names and their keys, about 130 MB
 * retained. After a full garbage collection the server's heap is where it
 * started and its RSS is bounded; afterwards it still reads ordinary heads
 * right, its descriptors are back to baseline, and it exits 0.
 *
 * Measured after a collection, not at a random moment: every 15 KB name
 * becomes garbage in old space (its HTTP_ key is internalized as a property
 * name), and V8 lets that grow by 100 MB or so before a full collection, so
 * RSS sampled between waves swung by tens of MB with the GC's timing.
 */
import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { fdsBack, startServer } from '../helpers/process.js'

const CONNECTIONS = 6
const REQUESTS_EACH = 120
const WAVES = 6
const NAME_BYTES = 15 * 1024

/**
 * Sends `count` keep-alive requests, each with one new long header name,
 * the next when the last is answered (so what stays in memory is what the
 * server keeps, not requests waiting their turn); counts the 200s.
 */
async function flood(port: number, id: number, count: number): Promise<number> {
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.setEncoding('latin1')
  let answered = 0
  let sent = 0
  const send = () => {
    const name = `X-${id}-${sent++}-`.padEnd(NAME_BYTES, 'n')
    socket.write(`GET /hello HTTP/1.1\r\nHost: x\r\n${name}: v\r\n\r\n`)
  }
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (d: string) => {
      // Each answer is one small read: `HTTP/1.1 200 OK` … `hello`.
      for (let at = d.indexOf('HTTP/1.1 200 '); at >= 0; at = d.indexOf('HTTP/1.1 200 ', at + 1)) answered++
      if (answered >= count) resolve()
      else if (answered === sent) send()
    })
    socket.on('error', reject)
    socket.on('close', () => resolve())
    send()
  })
  socket.destroy()
  return answered
}

t.test('a flood of new long header names is not kept', async (t) => {
  const s = await startServer(t)
  const start = await s.memory()
  const kept: NodeJS.MemoryUsage[] = []
  const peaks: number[] = []
  for (let wave = 0; wave < WAVES; wave++) {
    const counts = await Promise.all(Array.from({ length: CONNECTIONS }, (_, id) => flood(s.port, wave * CONNECTIONS + id, REQUESTS_EACH)))
    t.same(counts, Array(CONNECTIONS).fill(REQUESTS_EACH), `wave ${wave + 1}: every request with a long new name was answered 200`)
    peaks.push(s.rssKb() * 1024)
    kept.push(await s.memory())
  }
  const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1)
  t.comment(`RSS ${mb(start.rss)} MB at the start; after each wave ${peaks.map(mb).join(', ')} MB, and after a full GC ${kept.map((m) => mb(m.rss)).join(', ')} MB`)
  t.comment(`heap after a full GC: ${mb(start.heapUsed)} MB at the start, then ${kept.map((m) => mb(m.heapUsed)).join(', ')} MB`)
  const last = kept[WAVES - 1]!
  // Kept names would add about 21 MB a wave (720 names of 15 KB, each as the name and its HTTP_ key).
  const grown = last.heapUsed - start.heapUsed
  t.ok(grown < 4 * 2 ** 20, `nothing kept: the heap after a full GC grew ${mb(grown)} MB over ${WAVES * CONNECTIONS * REQUESTS_EACH} names (bound 4)`)
  t.ok(last.rss - start.rss < 96 * 2 ** 20, `RSS stayed bounded: +${mb(last.rss - start.rss)} MB (bound 96)`)
  await fdsBack(t, s, 1000)
  const ordinary = await s.exchange('POST /echo HTTP/1.1\r\nHost: x\r\nX-0-0-n: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')
  t.equal(ordinary.responses[0]?.status, 200, 'a well-behaved client is answered after')
  t.equal(ordinary.responses[0]?.body.toString(), 'ok', 'its body framed by Content-Length, past a name the flood sent in that place')
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
})
