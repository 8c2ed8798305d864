/**
 * Backpressure: a large streamed response to a client that does not read
 * must not be pulled from the app and buffered in memory; the body iterator
 * is advanced only as the socket drains. Then, once the client reads, every
 * byte arrives.
 */
import t from 'tap'
import net from 'node:net'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { serve, sleep } from '../helpers/server.js'

const CHUNK = 64 * 1024
const TOTAL_CHUNKS = 320 // 20 MiB

/** A 20 MiB generator body that counts how far it was pulled. */
function bigApp(counter: { yielded: number; closed: number }, setLength: boolean): GatewayApp {
  return (_environ, startResponse) => {
    startResponse(
      '200 OK',
      setLength
        ? [
            ['Content-Type', 'application/octet-stream'],
            ['Content-Length', String(CHUNK * TOTAL_CHUNKS)],
          ]
        : [['Content-Type', 'application/octet-stream']],
    )
    const chunk = Buffer.alloc(CHUNK, 0x61)
    const gen = (function* () {
      for (let i = 0; i < TOTAL_CHUNKS; i++) {
        counter.yielded++
        yield chunk
      }
    })()
    return Object.assign(gen, {
      close() {
        counter.closed++
      },
    })
  }
}

/** Waits until `value()` stops changing for `quiet` ms (at most `max` ms). */
async function settle(value: () => number, quiet = 300, max = 4000): Promise<number> {
  let last = value()
  let stableFor = 0
  for (let waited = 0; waited < max && stableFor < quiet; waited += 50) {
    await sleep(50)
    const now = value()
    stableFor = now === last ? stableFor + 50 : 0
    last = now
  }
  return last
}

/** Connects and sends a request without reading the response yet. */
async function pausedRequest(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1' })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.pause()
  socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n')
  return socket
}

/** Reads until `done(total, tail, head)` holds or the socket closes; returns the byte count and the last bytes. */
function readAll(socket: net.Socket, done: (total: number, tail: Buffer, head: string) => boolean): Promise<{ total: number; tail: Buffer; head: string }> {
  return new Promise((resolve) => {
    let total = 0
    let tail = Buffer.alloc(0)
    let head = ''
    const finish = () => {
      socket.removeAllListeners('data')
      resolve({ total, tail, head })
    }
    const timer = setTimeout(finish, 10_000)
    socket.on('data', (d: Buffer) => {
      if (head.length < 512) head += d.subarray(0, 512).toString('latin1')
      total += d.length
      tail = Buffer.concat([tail, d]).subarray(-64)
      if (done(total, tail, head)) {
        clearTimeout(timer)
        finish()
      }
    })
    socket.once('close', () => {
      clearTimeout(timer)
      finish()
    })
    socket.resume()
  })
}

t.test('Content-Length stream to a client that does not read: generator not run ahead', async (t) => {
  const counter = { yielded: 0, closed: 0 }
  const s = await serve(t, bigApp(counter, true))
  const socket = await pausedRequest(s.port)
  t.teardown(() => socket.destroy())
  const pulled = await settle(() => counter.yielded)
  t.ok(pulled > 0, 'the response started')
  t.ok(pulled < TOTAL_CHUNKS / 2, `only what the socket buffers hold was pulled: ${pulled} of ${TOTAL_CHUNKS} chunks`)
  const bodyEnd = (h: string) => (h.includes('\r\n\r\n') ? h.indexOf('\r\n\r\n') + 4 + CHUNK * TOTAL_CHUNKS : Infinity)
  const { total, head } = await readAll(socket, (n, _tail, h) => n >= bodyEnd(h))
  const headLen = head.indexOf('\r\n\r\n') + 4
  t.match(head, /^HTTP\/1\.1 200 /)
  t.equal(total - headLen, CHUNK * TOTAL_CHUNKS, 'every byte arrived once the client read')
  t.equal(counter.yielded, TOTAL_CHUNKS)
})

t.test('chunked stream to a client that does not read: generator not run ahead, then completes', async (t) => {
  const counter = { yielded: 0, closed: 0 }
  const s = await serve(t, bigApp(counter, false))
  const socket = await pausedRequest(s.port)
  t.teardown(() => socket.destroy())
  const pulled = await settle(() => counter.yielded)
  t.ok(pulled > 0, 'the response started')
  t.ok(pulled < TOTAL_CHUNKS / 2, `only what the socket buffers hold was pulled: ${pulled} of ${TOTAL_CHUNKS} chunks`)
  const { tail, head } = await readAll(socket, (_n, tl) => tl.toString('latin1').endsWith('\r\n0\r\n\r\n'))
  t.match(head, /^HTTP\/1\.1 200 /)
  t.match(head, /transfer-encoding: chunked/i)
  t.ok(tail.toString('latin1').endsWith('\r\n0\r\n\r\n'), 'the chunked body ended properly')
  t.equal(counter.yielded, TOTAL_CHUNKS)
  for (let i = 0; i < 50 && counter.closed === 0; i++) await sleep(20)
  t.equal(counter.closed, 1, 'close() called once')
})

t.test('a large upload the app does not read yet is not buffered by the server', async (t) => {
  const size = 16 * 1024 * 1024
  let startReading: () => void = () => {}
  const go = new Promise<void>((resolve) => (startReading = resolve))
  const s = await serve(
    t,
    async (environ, startResponse) => {
      await go
      let total = 0
      for await (const chunk of environ['gateway.input']) total += chunk.length
      startResponse('200 OK', [['Content-Type', 'text/plain']])
      return [String(total)]
    },
    { maxBodySize: 32 * 1024 * 1024 },
  )
  const socket = net.connect({ port: s.port, host: '127.0.0.1' })
  t.teardown(() => socket.destroy())
  await new Promise<void>((resolve) => socket.once('connect', resolve))
  socket.write(`PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`)
  // Write in pieces, each after the previous one reached the kernel, and count what got through.
  let flushed = 0
  const piece = Buffer.alloc(CHUNK, 0x62)
  const writing = (async () => {
    while (flushed < size && !socket.destroyed) {
      await new Promise<void>((resolve) => socket.write(piece, () => resolve()))
      flushed += piece.length
    }
  })()
  const through = await settle(() => flushed)
  t.ok(through < size / 2, `the upload stalls while the app does not read: ${through} of ${size} bytes got through`)
  startReading()
  await writing
  let response = ''
  socket.setEncoding('latin1')
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 10_000)
    socket.on('data', (d: string) => {
      response += d
      if (response.endsWith(`\r\n\r\n${size}`)) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  t.match(response, /^HTTP\/1\.1 200 /)
  t.ok(response.endsWith(`\r\n\r\n${size}`), 'every byte reached the app once it read')
})

t.test('pipelined requests from a client that does not read: the server stops taking them', async (t) => {
  let calls = 0
  const n = 200
  const s = await serve(
    t,
    (_environ, startResponse) => {
      calls++
      startResponse('200 OK', [['Content-Type', 'application/octet-stream']])
      return [Buffer.alloc(CHUNK, 0x61)]
    },
    { maxPipelineDepth: 4 },
  )
  const socket = net.connect({ port: s.port, host: '127.0.0.1' })
  t.teardown(() => socket.destroy())
  await new Promise<void>((resolve) => socket.once('connect', resolve))
  socket.pause()
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n))
  const answered = await settle(() => calls)
  t.ok(answered < n * 0.75, `apps run for only part of the backlog while the client does not read: ${answered} of ${n}`)
  // Count response heads as they arrive (the bodies are all "a", so the pattern cannot appear inside them).
  let seen = 0
  let carry = ''
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 10_000)
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => {
      const text = carry + d
      seen += text.split('HTTP/1.1 200 OK\r\n').length - 1
      carry = text.slice(-20)
      if (seen >= n) {
        clearTimeout(timer)
        resolve()
      }
    })
    socket.resume()
  })
  t.equal(seen, n, 'all answered once the client reads')
  t.equal(calls, n)
})

t.test('clients leaving in the middle of large responses do not break the server', async (t) => {
  const s = await serve(t, (environ, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'application/octet-stream']])
    if (environ.PATH_INFO !== '/big') return ['small']
    const chunk = Buffer.alloc(CHUNK, 0x61)
    return (async function* () {
      for (let i = 0; i < 200; i++) yield chunk
    })()
  })
  for (let i = 0; i < 20; i++) {
    const c = await s.connect()
    c.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n')
    await c.receivedText('HTTP/1.1 200')
    if (i % 2 === 0) c.socket.resetAndDestroy()
    else c.destroy()
  }
  const r = await s.exchange('GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { responses: 2 })
  t.same(
    r.responses.map((x) => [x.status, x.body.toString()]),
    [
      [200, 'small'],
      [200, 'small'],
    ],
    'still serving',
  )
})
