/**
 * `npm run soak [-- --requests N] [--fresh N] [--connections C] [--rss-growth MiB] [--heap-growth MiB]`
 *
 * A long, plain run against postern's server in its own process (the
 * benchmark's bench/serve.ts, `GET /hello` from a bare gateway app, default
 * limits and timeouts), to show it holds steady where a leak would show:
 *
 * 1. 1,000,000 requests over keep-alive connections (autocannon, C at a
 *    time, every body checked), in ten stages with new connections each;
 * 2. 100,000 requests with a new connection each (our own bounded client:
 *    half ask `Connection: close`, half leave by half-closing after their
 *    answer, the two ways a connection ends), in five stages.
 *
 * After each stage it reads the server's memory after a full GC and its
 * open file descriptors from /proc; a sampler also records the highest RSS
 * seen. The first keep-alive stage is the warm-up. It exits 1 when a bound is
 * broken: any error, timeout, reset, non-2xx or wrong body; RSS or heap
 * after GC grown past the stated bound from warm-up to the end; descriptors
 * not back to their baseline within 10 s of the last client leaving.
 */
import autocannon from 'autocannon'
import net from 'node:net'
import { parseArgs } from 'node:util'
import { peerByName } from './peer.js'
import { startPeer, type PeerProcess } from './peer-process.js'
import { TEXT_BODY } from './scenarios.js'
import { fdCount, MiB, rssBytes, settle } from './fuzz-process.js'

/** autocannon with the option and result field bench/autocannon.d.ts does not declare: every body is checked. */
const load = autocannon as unknown as (
  options: Parameters<typeof autocannon>[0] & { expectBody: string },
) => Promise<Awaited<ReturnType<typeof autocannon>> & { mismatches: number }>

interface Stage {
  phase: string
  /** Requests in this stage. */
  amount: number
  /** Requests so far. */
  requests: number
  connections: number
  ms: number
  rss: number
  heap: number
  fds: number
}

interface Fresh {
  ok: number
  errors: number
  firstError: string | null
}

const REQUEST_KEEP = Buffer.from('GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n')
const REQUEST_CLOSE = Buffer.from('GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')

/**
 * One request on a new connection. With `Connection: close` the server must
 * close after answering; without, the client half-closes after the answer
 * and the server must close in turn. Resolves with an error text, or null.
 */
function freshRequest(port: number, close: boolean): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' })
    let data = Buffer.alloc(0)
    let answered = false
    let failure: string | null = null
    const timer = setTimeout(() => {
      failure ??= `no answer and close within 10 s; got ${JSON.stringify(data.toString('latin1'))}`
      socket.destroy()
    }, 10_000)
    // No half-close before the answer: a FIN with a request unanswered means the client left.
    socket.on('connect', () => socket.write(close ? REQUEST_CLOSE : REQUEST_KEEP))
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d])
      const headEnd = data.indexOf('\r\n\r\n')
      if (answered || headEnd < 0) return
      const head = data.subarray(0, headEnd).toString('latin1')
      const length = /\r\ncontent-length: *(\d+)/i.exec(head)
      if (length === null) {
        failure ??= `no Content-Length in ${JSON.stringify(head)}`
        return
      }
      if (data.length < headEnd + 4 + Number(length[1])) return
      answered = true
      const body = data.subarray(headEnd + 4).toString('latin1')
      if (!head.startsWith('HTTP/1.1 200 ')) failure ??= `status line ${JSON.stringify(head.split('\r\n')[0])}`
      else if (body !== TEXT_BODY) failure ??= `body ${JSON.stringify(body)}`
      if (!close) socket.end()
    })
    socket.on('error', (error: Error) => {
      failure ??= `${error.message}`
    })
    socket.on('close', () => {
      clearTimeout(timer)
      if (!answered) failure ??= `closed before the answer; got ${JSON.stringify(data.toString('latin1'))}`
      resolve(failure)
    })
  })
}

/** `count` fresh-connection requests, `concurrency` at a time. */
async function freshRequests(port: number, count: number, concurrency: number, fresh: Fresh): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      const error = await freshRequest(port, i % 2 === 0)
      if (error === null) fresh.ok++
      else {
        fresh.errors++
        fresh.firstError ??= error
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const mib = (bytes: number) => (bytes / MiB).toFixed(1)

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '1000000' },
      fresh: { type: 'string', default: '100000' },
      connections: { type: 'string', default: '50' },
      'rss-growth': { type: 'string', default: '32' },
      'heap-growth': { type: 'string', default: '8' },
    },
  })
  const requests = Number(values.requests)
  const freshCount = Number(values.fresh)
  const connections = Number(values.connections)
  const rssBound = Number(values['rss-growth']) * MiB
  const heapBound = Number(values['heap-growth']) * MiB
  if (![requests, freshCount, connections].every((n) => Number.isSafeInteger(n) && n >= 0) || connections < 1 || !(rssBound > 0) || !(heapBound > 0)) {
    process.stderr.write('usage: npm run soak -- [--requests N] [--fresh N] [--connections C] [--rss-growth MiB] [--heap-growth MiB]\n')
    return 2
  }
  const peer = peerByName('postern')!
  const server: PeerProcess = await startPeer(peer, 'text', { taskset: null, core: 0, exposeGc: true })
  const url = `http://127.0.0.1:${server.port}/hello`
  const stages: Stage[] = []
  const problems: string[] = []
  let maxRss = 0
  const sampler = setInterval(() => {
    try {
      maxRss = Math.max(maxRss, rssBytes(server.pid))
    } catch {
      // the process is gone: the stages will say so
    }
  }, 250)
  const started = performance.now()
  const measure = async (phase: string, amount: number, done: number, conns: number, ms: number) => {
    const mem = await server.memory()
    stages.push({ phase, amount, requests: done, connections: conns, ms, rss: mem.rss, heap: mem.heapUsed, fds: fdCount(server.pid) })
  }
  try {
    const baselineFds = fdCount(server.pid)
    await measure('start', 0, 0, 0, 0)
    process.stdout.write(
      `postern soak · ${fmt(requests)} keep-alive requests on ${connections} connections at a time, ${fmt(freshCount)} on fresh connections · server pid ${server.pid}\n`,
    )

    // 1. Keep-alive, in ten stages.
    let done = 0
    let opened = 0
    const bad = { errors: 0, timeouts: 0, non2xx: 0, mismatches: 0, resets: 0 }
    for (let stage = 0; stage < 10 && done < requests; stage++) {
      const amount = stage === 9 ? requests - done : Math.floor(requests / 10)
      if (amount <= 0) continue
      const t0 = performance.now()
      const result = await load({ url, connections, amount, expectBody: TEXT_BODY, timeout: 10 })
      for (const key of Object.keys(bad) as Array<keyof typeof bad>) bad[key] += result[key]
      done += amount
      opened += connections
      await measure(`keep-alive ${stage + 1}`, amount, done, opened, performance.now() - t0)
    }
    if (Object.values(bad).some((n) => n > 0)) problems.push(`keep-alive: ${JSON.stringify(bad)}`)

    // 2. A new connection per request, in five stages.
    const fresh: Fresh = { ok: 0, errors: 0, firstError: null }
    let freshDone = 0
    for (let stage = 0; stage < 5 && freshDone < freshCount; stage++) {
      const amount = stage === 4 ? freshCount - freshDone : Math.floor(freshCount / 5)
      if (amount <= 0) continue
      const t0 = performance.now()
      await freshRequests(server.port, amount, connections, fresh)
      freshDone += amount
      await measure(`fresh ${stage + 1}`, amount, done + freshDone, opened + freshDone, performance.now() - t0)
    }
    if (fresh.errors > 0) problems.push(`fresh connections: ${fresh.errors} errors, first: ${fresh.firstError ?? ''}`)
    if (fresh.ok !== freshCount) problems.push(`fresh connections: ${fresh.ok} of ${freshCount} answered`)

    // 3. Everyone has left: descriptors back to baseline, memory against the warm-up.
    const fdsEnd = await settle(() => fdCount(server.pid), baselineFds, 10_000)
    await measure('end (idle)', 0, done + freshDone, opened + freshDone, 0)
    const last = stages[stages.length - 1]!
    last.fds = fdsEnd
    const warm = stages.find((s) => s.phase === 'keep-alive 1') ?? stages[0]!

    // ---- report ----
    const lines = ['', 'phase          requests    connections   req/s      RSS MiB  heap MiB  fds']
    for (const s of stages) {
      const rate = s.amount > 0 && s.ms > 0 ? fmt((s.amount * 1000) / s.ms) : '-'
      lines.push(
        `${s.phase.padEnd(14)} ${fmt(s.requests).padStart(10)}  ${fmt(s.connections).padStart(11)}  ${rate.padStart(8)}  ${mib(s.rss).padStart(8)}  ${mib(s.heap).padStart(8)}  ${String(s.fds).padStart(4)}`,
      )
    }
    const rssGrowth = last.rss - warm.rss
    const heapGrowth = last.heap - warm.heap
    lines.push(
      '',
      `memory after GC, warm-up (after ${fmt(warm.requests)} requests) → end: RSS ${mib(warm.rss)} → ${mib(last.rss)} MiB (${rssGrowth >= 0 ? '+' : ''}${mib(rssGrowth)}, bound +${mib(rssBound)}); heap ${mib(warm.heap)} → ${mib(last.heap)} MiB (${heapGrowth >= 0 ? '+' : ''}${mib(heapGrowth)}, bound +${mib(heapBound)}); highest RSS sampled ${mib(maxRss)} MiB`,
      `file descriptors: ${baselineFds} at start, ${fdsEnd} at the end`,
      `errors: keep-alive ${JSON.stringify(bad)}; fresh ${fresh.errors}`,
      `time: ${((performance.now() - started) / 1000).toFixed(1)} s`,
    )
    if (rssGrowth > rssBound) problems.push(`RSS after GC grew ${mib(rssGrowth)} MiB after warm-up (bound ${mib(rssBound)})`)
    if (heapGrowth > heapBound) problems.push(`heap after GC grew ${mib(heapGrowth)} MiB after warm-up (bound ${mib(heapBound)})`)
    if (fdsEnd > baselineFds) problems.push(`file descriptors ${fdsEnd} at the end, ${baselineFds} at start`)
    lines.push('', problems.length === 0 ? 'ok: every bound held' : `FAILED:\n  ${problems.join('\n  ')}`)
    process.stdout.write(`${lines.join('\n')}\n`)
    return problems.length === 0 ? 0 : 1
  } finally {
    clearInterval(sampler)
    await server.stop()
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
