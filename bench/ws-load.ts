/**
 * The WebSocket load generator (wrk and autocannon speak no WebSocket). For
 * each job read from stdin (a {@link LoadJob} as one JSON line) it opens
 * `connections` sockets to the job's `ws://` URL, then for `duration`
 * seconds keeps `pipelining` messages (the job's body, a text message) in
 * flight on each: every echo received is
 * checked against what was sent, timed, and answered with the next message.
 * It answers with one JSON line, `{"result": LoadResult}` where `requests`
 * counts the echoes received in the measured window (or `{"error": …}`), and
 * closes its sockets; it exits when stdin closes.
 *
 * It runs on Node with the `ws` client, or on Bun with Bun's native client
 * (bench/ws-tool.ts picks the cheaper one per echo, so the client is not
 * the bottleneck, and pins the process to the load generator's core).
 */
import { createInterface } from 'node:readline'
import type { LoadJob, LoadResult } from './load.js'

/** The client side of one socket, the same on both runtimes. */
interface ClientSocket {
  send(message: string): void
  close(): void
}

interface Handlers {
  open(): void
  /** An echo: whether it is the message sent, byte for byte. */
  message(same: boolean): void
  /** The handshake was refused with a status other than 101. */
  refused(status: number): void
  /** An error or a close before the run ended. */
  failed(): void
}

type Connect = (url: string, message: string, handlers: Handlers) => ClientSocket

const bun = (globalThis as { Bun?: unknown }).Bun !== undefined

/** Bun's native client: text arrives as a string. */
const connectBun: Connect = (url, message, handlers) => {
  const socket = new (globalThis as unknown as { WebSocket: new (url: string) => BunSocket }).WebSocket(url)
  socket.onopen = () => handlers.open()
  socket.onmessage = (event) => handlers.message(event.data === message)
  socket.onerror = () => handlers.failed()
  socket.onclose = () => handlers.failed()
  return {
    send: (m) => socket.send(m),
    close: () => {
      socket.onclose = null
      socket.onerror = null
      socket.close()
    },
  }
}
interface BunSocket {
  onopen: (() => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onerror: (() => void) | null
  onclose: (() => void) | null
  send(data: string): void
  close(): void
}

/**
 * Node: the `ws` client, offering no compression (the servers' defaults then
 * decide nothing), and spending no client CPU on what does not change the
 * server's work: the masking key is fixed (the server unmasks all the same)
 * and the echo is compared byte for byte instead of UTF-8-validated.
 */
const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d])
const fixedMask = (mask: Buffer): void => void MASK.copy(mask)

async function nodeConnect(): Promise<Connect> {
  const { WebSocket } = await import('ws')
  return (url, message, handlers) => {
    const expected = Buffer.from(message)
    const socket = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, generateMask: fixedMask })
    socket.on('open', () => handlers.open())
    socket.on('message', (data: Buffer, isBinary: boolean) => handlers.message(!isBinary && expected.equals(data)))
    socket.on('unexpected-response', (_request, response) => {
      handlers.refused(response.statusCode ?? 0)
      socket.terminate()
    })
    socket.on('error', () => handlers.failed())
    socket.on('close', () => handlers.failed())
    return {
      send: (m) => socket.send(m),
      close: () => {
        socket.removeAllListeners('close')
        socket.removeAllListeners('error')
        socket.on('error', () => {})
        socket.terminate()
      },
    }
  }
}

/** Latency samples, milliseconds; past the cap every other sample is dropped (percentiles stay representative). */
class Samples {
  private data = new Float64Array(1 << 16)
  private n = 0
  private stride = 1
  private skip = 0
  add(value: number): void {
    if (++this.skip < this.stride) return
    this.skip = 0
    if (this.n === this.data.length) {
      if (this.n >= 1 << 22) {
        for (let i = 0; i < this.n >> 1; i++) this.data[i] = this.data[i * 2] ?? 0
        this.n >>= 1
        this.stride *= 2
      } else {
        const bigger = new Float64Array(this.data.length * 2)
        bigger.set(this.data)
        this.data = bigger
      }
    }
    this.data[this.n++] = value
  }
  percentile(p: number): number {
    if (this.n === 0) return NaN
    const sorted = this.data.subarray(0, this.n).sort()
    return sorted[Math.min(this.n - 1, Math.floor((p / 100) * this.n))] ?? NaN
  }
}

export async function run(job: LoadJob): Promise<LoadResult> {
  const connect = bun ? connectBun : await nodeConnect()
  const message = job.body ?? ''
  const window = Math.max(1, job.pipelining)
  const sockets: ClientSocket[] = []
  /** Send times of the messages in flight, per socket, oldest first. */
  const inFlight: number[][] = []
  const latency = new Samples()
  let opened = 0
  let running = false
  let finished = false
  let echoes = 0
  let bytes = 0
  let errors = 0
  let non2xx = 0
  let settled = 0

  let ready!: () => void
  const allOpen = new Promise<void>((resolve) => (ready = resolve))
  const settle = (): void => {
    if (++settled === job.connections) ready()
  }
  for (let i = 0; i < job.connections; i++) {
    const times: number[] = []
    inFlight.push(times)
    let open = false
    let gone = false
    const socket = connect(job.url, message, {
      open() {
        open = true
        opened++
        settle()
      },
      message(same) {
        const sent = times.shift()
        if (!running) return
        if (!same || sent === undefined) errors++
        else {
          echoes++
          bytes += message.length
          latency.add(performance.now() - sent)
        }
        times.push(performance.now())
        socket.send(message)
      },
      refused() {
        non2xx++
        gone = true
        settle()
      },
      failed() {
        if (gone) return
        gone = true
        if (!finished) errors++
        if (!open) settle()
      },
    })
    sockets.push(socket)
  }
  const timer = setTimeout(ready, 10_000)
  await allOpen
  clearTimeout(timer)

  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  if (opened > 0) {
    running = true
    for (const [i, socket] of sockets.entries()) {
      for (let k = 0; k < window; k++) {
        inFlight[i]?.push(performance.now())
        socket.send(message)
      }
    }
    await new Promise((resolve) => setTimeout(resolve, job.duration * 1000))
  }
  running = false
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  finished = true
  for (const socket of sockets) socket.close()
  return {
    requests: echoes,
    seconds: wallMs / 1000,
    bytes,
    p50: latency.percentile(50),
    p99: latency.percentile(99),
    errors,
    // Sockets that neither opened nor failed within 10 s.
    timeouts: job.connections - settled,
    non2xx,
    clientCpu: (cpu.user + cpu.system) / 1000 / wallMs,
  }
}

// One job per line on stdin, one answer per line on stdout, in order; exits when stdin closes.
let queue = Promise.resolve()
createInterface({ input: process.stdin })
  .on('line', (line) => {
    queue = queue.then(async () => {
      let answer: { result: LoadResult } | { error: string }
      try {
        answer = { result: await run(JSON.parse(line) as LoadJob) }
      } catch (error) {
        answer = { error: error instanceof Error ? error.message : String(error) }
      }
      process.stdout.write(`${JSON.stringify(answer)}\n`)
    })
  })
  .on('close', () => void queue.then(() => process.exit(0)))
