/**
 * Memory benchmarks, run with `npm run bench -- --memory`:
 *
 * 1. RSS, heap and the memory outside the heap (`external`, of which
 *    `arrayBuffers` are Buffers) after start, after a warm-up, and after N,
 *    2N and 3N more requests (scenario 2), each read after a full GC in the
 *    server's own process (it runs with --expose-gc): a server that leaks
 *    grows by the same amount from N to 2N and from 2N to 3N; one whose
 *    allocator only settles grows less and less.
 * 2. RSS and heap per idle keep-alive connection: open K connections, send
 *    one request on each, leave them open, and divide the growth by K.
 *    The harness process holds the client ends, so K is bounded by its
 *    open-file limit (`ulimit -n`); the server raises its own to the hard
 *    limit. The report says when K had to be below 10,000.
 *
 * Options: --peers (default postern,node), --requests N (default 100000),
 * --connections K (default 10000), --warmup s, --quick (N 20000, K 2000),
 * --record, --out dir, --no-write. Reports go to bench/results/runs/
 * (git-ignored); only --record writes the tracked bench/results/memory-*.
 */
import { execFileSync } from 'node:child_process'
import net from 'node:net'
import os from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { autocannonTool, type LoadTool } from './load.js'
import { PEERS, missingFor, peerByName, type PeerInfo } from './peer.js'
import { findTaskset, startPeer, type MemoryUsage, type PeerProcess } from './peer-process.js'
import { machine, resultsDir, stamp, versions } from './report.js'
import { scenarioById } from './scenarios.js'
import { mkdirSync, writeFileSync } from 'node:fs'

const SCENARIO = scenarioById('2')
const KEEP_ALIVE_MS = 300_000

interface PeerMemory {
  peer: string
  label: string
  start: MemoryUsage
  warm: MemoryUsage
  afterN: MemoryUsage
  after2N: MemoryUsage
  after3N: MemoryUsage
  idle: { connections: number; before: MemoryUsage; after: MemoryUsage; rssPerConnection: number; heapPerConnection: number } | null
  problem?: string
}

function fdLimit(): number {
  try {
    const out = execFileSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()
    return out === 'unlimited' ? 1_000_000 : Number(out)
  } catch {
    return 1024
  }
}

/** Opens `count` connections, sends one request on each and waits for its answer; the sockets stay open. */
async function openIdle(port: number, count: number): Promise<net.Socket[]> {
  const request = `GET /hello HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: application/json\r\n\r\n`
  const sockets: net.Socket[] = []
  const batch = 250
  for (let i = 0; i < count; i += batch) {
    const opened = await Promise.all(
      Array.from(
        { length: Math.min(batch, count - i) },
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const socket = net.connect(port, '127.0.0.1', () => socket.write(request))
            socket.once('data', () => resolve(socket))
            socket.once('error', reject)
            socket.once('close', () => reject(new Error('connection closed before the response')))
          }),
      ),
    )
    for (const socket of opened) {
      socket.removeAllListeners('close')
      socket.removeAllListeners('error')
      socket.on('error', () => {})
      sockets.push(socket)
    }
  }
  return sockets
}

async function measure(
  peer: PeerInfo,
  tool: LoadTool,
  taskset: string | null,
  requests: number,
  connections: number,
  warmup: number,
  say: (s: string) => void,
): Promise<PeerMemory> {
  if (SCENARIO === undefined) throw new Error('scenario 2 is missing')
  const server: PeerProcess = await startPeer(peer, SCENARIO.route, { taskset, core: 0, exposeGc: true, raiseFdLimit: true, keepAliveTimeout: KEEP_ALIVE_MS })
  const job = { url: `http://127.0.0.1:${server.port}${SCENARIO.path}`, method: 'GET', headers: SCENARIO.headers, connections: 100, pipelining: 1, duration: warmup }
  try {
    const start = await server.memory()
    say(`${peer.name}: warm-up ${warmup} s`)
    await tool.run(job)
    const warm = await server.memory()
    say(`${peer.name}: ${requests} requests`)
    await tool.run({ ...job, duration: 600, amount: requests })
    const afterN = await server.memory()
    say(`${peer.name}: ${requests} more requests`)
    await tool.run({ ...job, duration: 600, amount: requests })
    const after2N = await server.memory()
    say(`${peer.name}: ${requests} more requests`)
    await tool.run({ ...job, duration: 600, amount: requests })
    const after3N = await server.memory()
    let idle: PeerMemory['idle'] = null
    if (connections > 0) {
      say(`${peer.name}: opening ${connections} idle keep-alive connections`)
      const before = await server.memory()
      const sockets = await openIdle(server.port, connections)
      await new Promise((r) => setTimeout(r, 500))
      const after = await server.memory()
      for (const socket of sockets) socket.destroy()
      idle = {
        connections,
        before,
        after,
        rssPerConnection: (after.rss - before.rss) / connections,
        heapPerConnection: (after.heapUsed + after.external - before.heapUsed - before.external) / connections,
      }
    }
    return { peer: peer.name, label: peer.label, start, warm, afterN, after2N, after3N, idle }
  } finally {
    await server.stop()
  }
}

const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1)
const kb = (bytes: number): string => (bytes / 1024).toFixed(2)
const signed = (text: string): string => (text.startsWith('-') ? text : `+${text}`)

function markdown(results: PeerMemory[], meta: Record<string, unknown>, requests: number, notes: string[]): string {
  const lines = [
    '# postern memory benchmarks',
    '',
    `- Date: ${String(meta['date'])} · Node ${String(meta['node'])} · ${String(meta['platform'])} · ${String(meta['cores'])} cores`,
    `- Scenario 2 (GET /hello JSON); every figure read after a full GC in the server's process`,
  ]
  for (const note of notes) lines.push(`- ${note}`)
  lines.push('', `## RSS, heap and off-heap memory (MB) after start, warm-up, N = ${requests.toLocaleString('en-US')}, 2N and 3N requests`, '')
  lines.push(
    '| peer | RSS start | RSS warm | RSS N | RSS 2N | RSS 3N | RSS growth N→2N | RSS growth 2N→3N | heap N | heap 3N | external N | external 3N | arrayBuffers 3N |',
    '| :-- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |',
  )
  for (const r of results) {
    if (r.problem !== undefined) {
      lines.push(`| ${r.label} | ${r.problem} | | | | | | | | | | | |`)
      continue
    }
    lines.push(
      `| ${r.label} | ${mb(r.start.rss)} | ${mb(r.warm.rss)} | ${mb(r.afterN.rss)} | ${mb(r.after2N.rss)} | ${mb(r.after3N.rss)} | ${signed(mb(r.after2N.rss - r.afterN.rss))} | ${signed(mb(r.after3N.rss - r.after2N.rss))} | ${mb(r.afterN.heapUsed)} | ${mb(r.after3N.heapUsed)} | ${mb(r.afterN.external)} | ${mb(r.after3N.external)} | ${mb(r.after3N.arrayBuffers)} |`,
    )
  }
  lines.push('', '## Idle keep-alive connections', '')
  lines.push('| peer | connections | RSS before (MB) | RSS after (MB) | RSS per connection (KB) | heap + external per connection (KB) |', '| :-- | --: | --: | --: | --: | --: |')
  for (const r of results) {
    if (r.idle === null) continue
    lines.push(
      `| ${r.label} | ${r.idle.connections.toLocaleString('en-US')} | ${mb(r.idle.before.rss)} | ${mb(r.idle.after.rss)} | ${kb(r.idle.rssPerConnection)} | ${kb(r.idle.heapPerConnection)} |`,
    )
  }
  return `${lines.join('\n')}\n`
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      peers: { type: 'string', default: 'postern,node' },
      requests: { type: 'string' },
      connections: { type: 'string' },
      warmup: { type: 'string' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      record: { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
    },
    strict: true,
  })
  const quick = values.quick === true
  // Checked before any peer starts: a bad combination should not cost a whole run.
  const dir = resultsDir({ record: values.record === true, out: values.out })
  const requests = Number(values.requests ?? (quick ? 20_000 : 100_000))
  const wanted = Number(values.connections ?? (quick ? 2_000 : 10_000))
  const warmup = Number(values.warmup ?? (quick ? 1 : 2))
  const notes: string[] = []
  const limit = fdLimit()
  const connections = Math.max(0, Math.min(wanted, limit - 500))
  if (connections < wanted)
    notes.push(`Only ${connections} idle connections (asked for ${wanted}): this process's open-file limit is ${limit}; raise it with \`ulimit -n\` before running.`)
  const peers: PeerInfo[] = []
  for (const name of (values.peers ?? '').split(',').filter(Boolean)) {
    const peer = peerByName(name)
    if (peer === undefined) throw new Error(`unknown peer ${JSON.stringify(name)}; known: ${PEERS.map((p) => p.name).join(', ')}`)
    const missing = missingFor(peer)
    if (missing === null) peers.push(peer)
    else notes.push(`${peer.label} skipped: ${missing}`)
  }
  const taskset = findTaskset(os.cpus().length)
  const tool = autocannonTool(taskset, 1)
  const say = (line: string): void => void process.stderr.write(`${line}\n`)
  const results: PeerMemory[] = []
  try {
    for (const peer of peers) {
      try {
        results.push(await measure(peer, tool, taskset, requests, connections, warmup, say))
      } catch (error) {
        const zero: MemoryUsage = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }
        results.push({
          peer: peer.name,
          label: peer.label,
          start: zero,
          warm: zero,
          afterN: zero,
          after2N: zero,
          after3N: zero,
          idle: null,
          problem: error instanceof Error ? error.message : String(error),
        })
      }
    }
  } finally {
    await tool.close()
  }
  const date = new Date()
  const meta = { date: date.toISOString(), ...machine(), versions: versions(), requests, connections, warmup, keepAliveTimeoutMs: KEEP_ALIVE_MS }
  const text = markdown(results, meta, requests, notes)
  console.log(text)
  if (values['no-write'] !== true) {
    mkdirSync(dir, { recursive: true })
    const base = join(dir, `memory-${stamp(date)}`)
    writeFileSync(`${base}.md`, text)
    writeFileSync(`${base}.json`, `${JSON.stringify({ meta, notes, results }, null, 2)}\n`)
    writeFileSync(join(dir, 'memory-latest.md'), text)
    say(`wrote ${base}.md, ${base}.json and ${join(dir, 'memory-latest.md')}`)
  }
}
