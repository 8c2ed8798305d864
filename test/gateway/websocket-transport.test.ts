/**
 * TransportWebSocket, the GatewayWebSocket every server gives: the message
 * queue and its bounds (pause over the high-water mark, resume when read
 * down, 1008 over the hard bound), send() backpressure (resolves under the
 * high-water mark, waits for drain, rejects when closed, never an unhandled
 * rejection), close() codes and idempotence, the iterator's end and what
 * leaving the loop does, and a transport attached after accept().
 *
 * The transport here is a small in-memory one that keeps what it is asked
 * (the interface is five members); the socket's behaviour over real servers
 * is tested in test/server/websocket*.test.ts.
 */
import t from 'tap'
import { TransportWebSocket, WEBSOCKET_MESSAGE_OVERHEAD, type WebSocketTransport } from '../../lib/gateway/websocket-transport.js'
import type { WebSocketMessage } from '../../lib/gateway/websocket.js'
import { GatewayViolation } from '../../lib/gateway/rules.js'

class MemoryTransport implements WebSocketTransport {
  sent: WebSocketMessage[] = []
  buffered = 0
  closes: Array<[number, string]> = []
  pauses = 0
  resumes = 0
  paused = false
  get bufferedAmount(): number {
    return this.buffered
  }
  send(data: WebSocketMessage): void {
    this.sent.push(data)
    this.buffered += typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength
  }
  close(code: number, reason: string): void {
    this.closes.push([code, reason])
  }
  pause(): void {
    this.pauses++
    this.paused = true
  }
  resume(): void {
    this.resumes++
    this.paused = false
  }
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5))

t.test('messages are delivered once, in order, to a waiting or a later reader; the iterator ends on close', async (t) => {
  const transport = new MemoryTransport()
  const ws = new TransportWebSocket('chat', transport)
  t.equal(ws.protocol, 'chat')
  const it = ws[Symbol.asyncIterator]()
  const first = it.next()
  ws.receive('one')
  ws.receive(new Uint8Array([1, 2]))
  ws.receive('three')
  t.same(await first, { value: 'one', done: false })
  t.same(await it.next(), { value: new Uint8Array([1, 2]), done: false })
  ws.ended(1000, 'bye')
  t.same(await it.next(), { value: 'three', done: false }, 'a message received before the close is still read')
  t.same(await it.next(), { value: undefined, done: true })
  t.same(await ws.closed, { code: 1000, reason: 'bye' })
  ws.receive('late')
  t.same(await it.next(), { value: undefined, done: true }, 'nothing after the close')
})

t.test('for await reads every message and ends when the socket closes', async (t) => {
  const ws = new TransportWebSocket('', new MemoryTransport())
  setTimeout(() => {
    for (let i = 0; i < 5; i++) ws.receive(String(i))
    ws.ended(1006, '')
  }, 1)
  const got: WebSocketMessage[] = []
  for await (const m of ws) got.push(m)
  t.same(got, ['0', '1', '2', '3', '4'])
})

/** What a 60-byte message counts for in the queue: its length plus the per-message overhead. */
const COST_60 = 60 + WEBSOCKET_MESSAGE_OVERHEAD

t.test('the unread queue pauses the transport over its high-water mark and resumes when read down', async (t) => {
  const transport = new MemoryTransport()
  // Two 60-byte messages count 2 × (60 + overhead): one byte over this mark.
  const ws = new TransportWebSocket('', transport, { readHighWater: 2 * COST_60 - 1, readLimit: 10_000 })
  ws.receive('x'.repeat(60))
  t.equal(transport.pauses, 0, `${COST_60} counted: under the mark`)
  ws.receive('x'.repeat(60))
  t.equal(transport.pauses, 1, `${2 * COST_60} counted: paused over ${2 * COST_60 - 1}`)
  ws.receive('x'.repeat(60))
  t.equal(transport.pauses, 1, 'paused once')
  const it = ws[Symbol.asyncIterator]()
  await it.next()
  t.equal(transport.resumes, 0, 'two messages left: still over half the mark')
  await it.next()
  t.equal(transport.resumes, 0, `one message left (${COST_60}): still over half the mark (${COST_60 - 0.5})`)
  await it.next()
  t.equal(transport.resumes, 1, 'resumed once read down to half the mark')
  t.same(transport.closes, [])
})

t.test('empty messages count their overhead, so they pause the transport too', async (t) => {
  t.equal(WEBSOCKET_MESSAGE_OVERHEAD, 128)
  const transport = new MemoryTransport()
  const ws = new TransportWebSocket('', transport, { readHighWater: 3 * WEBSOCKET_MESSAGE_OVERHEAD - 1, readLimit: 10_000 })
  ws.receive('')
  ws.receive(new Uint8Array(0))
  t.equal(transport.pauses, 0, 'two empty messages: under the mark')
  ws.receive('')
  t.equal(transport.pauses, 1, 'the third empty message goes over it')
})

/** A transport that cannot pause: only the hard bound holds its queue. */
function unpausable(transport: MemoryTransport): WebSocketTransport {
  return {
    send: (d) => transport.send(d),
    get bufferedAmount() {
      return transport.bufferedAmount
    },
    close: (c, r) => transport.close(c, r),
  }
}

t.test('over the hard bound the socket closes with 1008 (a transport that cannot pause)', async (t) => {
  const transport = new MemoryTransport()
  const cost = 30 + WEBSOCKET_MESSAGE_OVERHEAD
  const ws = new TransportWebSocket('', unpausable(transport), { readHighWater: 10, readLimit: 5 * cost - 1 })
  for (let i = 0; i < 4; i++) ws.receive('x'.repeat(30))
  t.same(transport.closes, [], `${4 * cost} counted: under the bound`)
  ws.receive('x'.repeat(30))
  t.same(transport.closes, [[1008, 'too many unread messages']], `${5 * cost} counted: over ${5 * cost - 1}`)
  t.ok(ws.closing)
  await t.rejects(ws.send('after'), /closed/)
})

t.test('empty messages reach the hard bound too', async (t) => {
  const transport = new MemoryTransport()
  const ws = new TransportWebSocket('', unpausable(transport), { readHighWater: 10, readLimit: 1000 })
  for (let i = 0; i < 7; i++) ws.receive(new Uint8Array(0))
  t.same(transport.closes, [], `7 × ${WEBSOCKET_MESSAGE_OVERHEAD} = 896 counted: under 1000`)
  ws.receive('')
  t.same(transport.closes, [[1008, 'too many unread messages']], `8 × ${WEBSOCKET_MESSAGE_OVERHEAD} = 1024 counted: over 1000`)
})

t.test('send() resolves under the high-water mark, waits for drained() above it, rejects when closed', async (t) => {
  const transport = new MemoryTransport()
  const ws = new TransportWebSocket('', transport, { sendHighWater: 10 })
  await ws.send('12345')
  t.equal(ws.bufferedAmount, 5)
  let done = false
  const waiting = ws.send(new Uint8Array(10)).then(() => (done = true))
  await tick()
  t.equal(done, false, 'over the mark: waits')
  ws.drained()
  await tick()
  t.equal(done, false, 'drained() while still over the mark: still waits')
  transport.buffered = 3
  ws.drained()
  await waiting
  t.equal(done, true)
  t.same(transport.sent, ['12345', new Uint8Array(10)])

  const pending = ws.send('x'.repeat(20))
  ws.ended(1006, '')
  await t.rejects(pending, /closed/, 'a send waiting for drain rejects when the socket closes')
  await t.rejects(ws.send('y'), /closed/)
  await t.rejects(ws.send(42 as unknown as string), TypeError)
})

t.test('a send dropped without await does not become an unhandled rejection', async (t) => {
  let unhandled = 0
  const onUnhandled = () => void unhandled++
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => void process.off('unhandledRejection', onUnhandled))
  const transport = new MemoryTransport()
  const ws = new TransportWebSocket('', transport, { sendHighWater: 1 })
  void ws.send('waiting for a drain that never comes')
  ws.close()
  void ws.send('after close')
  await tick()
  await tick()
  t.equal(unhandled, 0)
})

t.test('a transport without drain events: a waiting send polls', async (t) => {
  const transport = new MemoryTransport()
  const ws = new TransportWebSocket('', transport, { sendHighWater: 4, drainEvents: false })
  const sent = ws.send('123456')
  setTimeout(() => (transport.buffered = 0), 15)
  await sent
  t.pass('resolved once the buffer emptied, with no drained() call')
})

t.test('close(): the app codes only, reason bounded, idempotent; the server closes with its own codes', async (t) => {
  const transport = new MemoryTransport()
  const ws = new TransportWebSocket('', transport)
  for (const code of [999, 1002, 1004, 1005, 1006, 1010, 1015, 2999, 5000, 3000.5, Number.NaN]) {
    t.throws(() => ws.close(code), GatewayViolation, `code ${code} refused`)
  }
  t.throws(() => ws.close('1000' as unknown as number), GatewayViolation)
  t.throws(() => ws.close(1000, 'é'.repeat(62)), /123 UTF-8 bytes/)
  t.throws(() => ws.close(1000, 7 as unknown as string), GatewayViolation)
  t.same(transport.closes, [], 'nothing was sent for a refused close')
  ws.close(4000, 'done')
  ws.close(1000)
  ws.closeFromServer(1001, 'going away')
  t.same(transport.closes, [[4000, 'done']], 'only the first close goes out')
  const other = new MemoryTransport()
  const ws2 = new TransportWebSocket('', other)
  ws2.close()
  t.same(other.closes, [[1000, '']])
  const ws3 = new TransportWebSocket('', other)
  ws3.closeFromServer(1006 + 9, 'any code from the server')
  t.same(other.closes.at(-1), [1015, 'any code from the server'])
  for (const code of [1001, 1003, 1007, 1008, 1009, 1011, 3000, 4999]) {
    const one = new MemoryTransport()
    new TransportWebSocket('', one).close(code, 'fits an app')
    t.same(one.closes, [[code, 'fits an app']], `code ${code} is an app's`)
  }
})

t.test('leaving the loop closes the socket with 1000, one macrotask later', async (t) => {
  const transport = new MemoryTransport()
  const ws = new TransportWebSocket('', transport)
  ws.receive('a')
  ws.receive('b')
  for await (const m of ws) {
    t.equal(m, 'a')
    break
  }
  await ws.send('after the loop')
  t.same(transport.closes, [], 'a send right after the loop still goes out')
  await tick()
  t.same(transport.closes, [[1000, '']])
  t.same(transport.sent, ['after the loop'])
})

t.test('an error thrown out of the loop: a server closing with 1011 first wins', async (t) => {
  const transport = new MemoryTransport()
  const ws = new TransportWebSocket('', transport)
  ws.receive('boom')
  await t.rejects(
    (async () => {
      for await (const _m of ws) throw new Error('app bug')
    })().catch((error: unknown) => {
      ws.closeFromServer(1011, 'Internal Error') // what the runner does with the app's rejection
      throw error
    }),
    /app bug/,
  )
  await tick()
  t.same(transport.closes, [[1011, 'Internal Error']])
})

t.test('a transport attached after accept(): sends and a close made before are passed on', async (t) => {
  const ws = new TransportWebSocket('p', null, { sendHighWater: 4 })
  const small = ws.send('ab')
  await small
  let late = false
  const big = ws.send('cdefgh').then(() => (late = true))
  t.equal(ws.bufferedAmount, 8)
  await tick()
  t.equal(late, false, 'over the mark before the transport: waits')
  const transport = new MemoryTransport()
  ws.attach(transport)
  t.same(transport.sent, ['ab', 'cdefgh'])
  transport.buffered = 0
  ws.drained()
  await big
  t.throws(() => ws.attach(new MemoryTransport()), /attached once/)

  const early = new TransportWebSocket('', null)
  early.receive('x'.repeat(100_000)) // over the read mark before a transport: paused on attach
  early.close(4001, 'early')
  const t2 = new MemoryTransport()
  early.attach(t2)
  t.same(t2.closes, [[4001, 'early']])
})
