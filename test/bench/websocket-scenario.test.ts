/**
 * Scenario 9 (WebSocket echo): every peer that serves it passes the check
 * through the real command line, a short measured run gets a msg/s number
 * per peer without errors, the check refuses a peer that echoes wrongly, and
 * the load client (bench/ws-load.ts, on Node and on Bun) counts echoes,
 * wrong echoes and refused handshakes. A runtime whose binary is missing is
 * skipped, saying so. Asserts nothing about speed.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WebSocketServer, type WebSocket } from 'ws'
import { PeerUnsupported } from '../../bench/peer.js'
import { WS_MESSAGE, WS_PATH, WS_PEERS, scenarioById, type Scenario } from '../../bench/scenarios.js'
import { verifyWebSocket } from '../../bench/ws-check.js'
import { pickWsClient, wsTool, type WsClient } from '../../bench/ws-tool.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** Peers of scenario 9 by runtime; Node's always run (postern's server and its adapters offer gateway.websocket). */
const BY_RUNTIME = {
  node: ['ws', 'fastify', 'postern', 'postern-app', 'postern-node'],
  bun: ['bun', 'bun-hono', 'bun-postern'],
  deno: ['deno', 'deno-hono', 'deno-postern'],
} as const

const missingBinary = (runtime: 'bun' | 'deno'): string | false => {
  const binary = join(ROOT, 'node_modules/.bin', runtime)
  return existsSync(binary) ? false : `${runtime} is not installed (${binary} missing): its peers are not covered`
}

/** The peers whose runtime is installed; a missing runtime is named in a comment. */
function availablePeers(t: Test): string[] {
  const peers: string[] = [...BY_RUNTIME.node]
  for (const runtime of ['bun', 'deno'] as const) {
    const missing = missingBinary(runtime)
    if (missing === false) peers.push(...BY_RUNTIME[runtime])
    else t.comment(`skipped: ${missing}`)
  }
  return peers
}

function bench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/run.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** A subtest, as tap passes it to `t.test` callbacks. */
type Test = Parameters<Parameters<typeof t.test>[0]>[0]

function scenario9(): Scenario {
  const s = scenarioById('9')
  if (s === undefined) throw new Error('scenario 9 is missing')
  return s
}

t.test('scenario 9 is the WebSocket echo of a 64-byte text message, served by the stacks with a WebSocket server', async (t) => {
  const s = scenario9()
  t.equal(s.route, 'ws')
  t.equal(s.protocol, 'websocket')
  t.equal(s.unit, 'msg/s')
  t.equal(s.path, WS_PATH)
  t.equal(s.body, WS_MESSAGE)
  t.equal(Buffer.byteLength(WS_MESSAGE), 64)
  t.same([...(s.peers ?? [])].sort(), [...BY_RUNTIME.node, ...BY_RUNTIME.bun, ...BY_RUNTIME.deno].sort())
  t.same(s.peers, WS_PEERS)
})

t.test('--check: the ws peer echoes correctly; peers without a WebSocket server are skipped for 9, the ws peer for the HTTP scenarios', async (t) => {
  // Every peer's check runs in the measured run below (a peer that fails it gets a problem, not a number).
  const { code, stdout, stderr } = await bench(['--check', '--only', '1,9', '--peers', 'ws,node,raw'])
  t.equal(code, 0, `--check exits 0 (stderr: ${stderr.slice(-500)})`)
  t.match(stdout, /^scenario 9 · ws: ok$/m, 'ws echoes text, binary and a burst, in order, and closes cleanly')
  for (const peer of ['raw', 'node']) t.match(stdout, new RegExp(`^scenario 9 · ${peer}: skipped \\(does not serve this scenario`, 'm'), `${peer} is skipped for 9, saying so`)
  t.match(stdout, /^scenario 1 · node: ok$/m)
  t.match(stdout, /^scenario 1 · ws: skipped \(serves only the ws route\)$/m, 'ws is skipped for 1, saying so')
})

t.test('a measured quick run: every peer passes the check and gets a msg/s number, no errors, p50 and p99, ratios to Fastify, ws and Hono', async (t) => {
  const peers = availablePeers(t)
  const out = mkdtempSync(join(tmpdir(), 'postern-bench-ws-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const { code, stderr } = await bench(['--quick', '--only', '9', '--peers', peers.join(','), '--duration', '0.5', '--rounds', '1', '--warmup', '0', '--out', out])
  t.equal(code, 0, `bench exits 0 (stderr: ${stderr.slice(-500)})`)
  const json = readdirSync(out).find((f) => f.endsWith('.json'))
  const report = JSON.parse(readFileSync(join(out, json ?? ''), 'utf8')) as {
    meta: { notes: string[] }
    cells: Array<{ scenario: string; peer: string; unit: string; median: number; p50: number; p99: number; problem?: string; rounds: Array<{ requests: number }> }>
  }
  t.same(report.cells.map((c) => c.peer).sort(), [...peers].sort(), 'one cell per peer')
  for (const cell of report.cells) {
    t.equal(cell.scenario, '9')
    t.equal(cell.unit, 'msg/s')
    t.equal(cell.problem, undefined, `${cell.peer}: no errors, wrong echoes or refused handshakes under load`)
    t.ok(cell.median > 0, `${cell.peer} has a positive msg/s (${cell.median})`)
    t.ok(cell.p50 > 0 && cell.p50 <= cell.p99, `${cell.peer}: 0 < p50 ≤ p99 (${cell.p50}, ${cell.p99})`)
  }
  t.ok(
    report.meta.notes.some((n) =>
      /^The WebSocket scenario is measured by bench\/ws-load\.ts \((Bun .* native client|ws .* client on Node)\), one process pinned to core 1/.test(n),
    ),
    'the report names the WebSocket client and where it ran',
  )
  const markdown = readFileSync(join(out, 'latest.md'), 'utf8')
  t.match(markdown, /^\| peer \| 9 · WebSocket echo 64 B \(msg\/s\) \|$/m, 'the summary names the unit')
  t.match(markdown, /^## 9 · WebSocket echo 64 B: msg\/s, 100 connections, pipelining 1$/m)
  t.match(
    markdown,
    /^\| peer \| median \| min–max \| p50 ms \| p99 ms \| vs Fastify \| vs ws \| client CPU \| server CPU \| server µs\/msg \|$/m,
    'the Node table compares with Fastify and ws',
  )
  t.match(markdown, /^\| ws · node:http \| [\d,]+ \| [\d,]+–[\d,]+ \| [\d.]+ \| [\d.]+ \| \d+\.\d\d× \| 1\.00× \|/m, 'ws is its own base')
  for (const [runtime, label] of [
    ['bun', 'Hono · Bun\\.serve'],
    ['deno', 'Hono · Deno\\.serve'],
  ] as const) {
    if (peers.includes(runtime))
      t.match(
        markdown,
        new RegExp(`^\\| ${label} \\| [\\d,]+ \\| [\\d,]+–[\\d,]+ \\| [\\d.]+ \\| [\\d.]+ \\| \\d+\\.\\d\\d× \\| 1\\.00× \\|`, 'm'),
        `${runtime}: Hono is its own base`,
      )
  }
})

// ── The check, against servers that echo wrongly ─────────────────────────────

type Behaviour = (socket: WebSocket, data: Buffer, isBinary: boolean) => void

/** A `ws` server on node:http at WS_PATH whose echo does `behaviour`; `status` answers the handshake with that status instead. */
async function peer(t: Test, behaviour: Behaviour, options: { status?: number } = {}): Promise<number> {
  const server = http.createServer((_req, res) => {
    res.writeHead(404)
    res.end()
  })
  const wss = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req, socket, head) => {
    if (options.status !== undefined) {
      socket.end(`HTTP/1.1 ${options.status} Nope\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope`)
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data: Buffer, isBinary: boolean) => behaviour(ws, data, isBinary))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate()
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  return (server.address() as AddressInfo).port
}

const echo: Behaviour = (socket, data, isBinary) => socket.send(data, { binary: isBinary })

t.test('the check passes a correct echo', async (t) => {
  t.equal(await verifyWebSocket(await peer(t, echo), scenario9()), null)
})

t.test('the check refuses an echo that is wrong, and says how', async (t) => {
  t.match(await verifyWebSocket(await peer(t, (s, d) => s.send(d, { binary: true })), scenario9()), /^sent text ".*", got binary "64 bytes"$/, 'text echoed as binary')
  t.match(await verifyWebSocket(await peer(t, (s, d) => s.send(d.toString('latin1'))), scenario9()), /^sent binary "64 bytes", got text/, 'binary echoed as text')
  t.match(
    await verifyWebSocket(await peer(t, (s, d, b) => s.send(Buffer.concat([d, Buffer.from('!')]), { binary: b })), scenario9()),
    /^sent text "postern websocket echo/,
    'a changed message',
  )
  let n = 0
  t.match(
    await verifyWebSocket(
      await peer(t, (s, d, b) => {
        if (++n !== 5) s.send(d, { binary: b })
      }),
      scenario9(),
      300,
    ),
    /^15 of 16 echoes within 300 ms$/,
    'a dropped message in the burst',
  )
  let held: Buffer | null = null
  t.match(
    await verifyWebSocket(
      await peer(t, (s, d, b) => {
        // Swaps the first two messages of the burst.
        if (d.toString().startsWith('00 ')) held = d
        else {
          s.send(d, { binary: b })
          if (held !== null) s.send(held, { binary: b })
          held = null
        }
      }),
      scenario9(),
    ),
    /^sent text "00 postern.*", got text "01 postern/,
    'a reordered burst',
  )
  t.match(await verifyWebSocket(await peer(t, (s) => s.close(1011, 'no')), scenario9()), /^closed \(1011 no\) before the check ended$/, 'a peer that closes')
})

t.test('the check refuses a handshake that is not 101, and skips a 426 as unsupported', async (t) => {
  t.match(await verifyWebSocket(await peer(t, echo, { status: 200 }), scenario9()), /^status 200, want 101 Switching Protocols \(body "nope"\)$/)
  t.match(await verifyWebSocket(await peer(t, echo, { status: 404 }), scenario9()), /^status 404, want 101/)
  await t.rejects(verifyWebSocket(await peer(t, echo, { status: 426 }), scenario9()), PeerUnsupported, 'a 426 says the stack cannot upgrade')
  t.match(await verifyWebSocket(1, scenario9()), /^handshake failed: connect ECONNREFUSED/, 'a peer that is not listening')
})

// ── The load client ──────────────────────────────────────────────────────────

const clients: Array<[WsClient, string | false]> = [
  ['node', false],
  ['bun', missingBinary('bun')],
]

for (const [client, skip] of clients) {
  t.test(`the load client on ${client}: counts echoes, wrong echoes and refused handshakes`, { skip }, async (t) => {
    const tool = wsTool(client, null, 1)
    t.teardown(() => tool.close())
    const job = (port: number, pipelining: number) => ({
      url: `ws://127.0.0.1:${port}${WS_PATH}`,
      method: 'GET',
      headers: {},
      body: WS_MESSAGE,
      connections: 4,
      pipelining,
      duration: 0.3,
    })
    for (const window of [1, 4]) {
      const good = await tool.run(job(await peer(t, echo), window))
      t.ok(good.requests > 0, `${window} in flight: echoes counted (${good.requests})`)
      t.equal(good.bytes, good.requests * 64, 'bytes are the echoes’ bytes')
      t.match(good, { errors: 0, timeouts: 0, non2xx: 0 })
      t.ok(good.p50 > 0 && good.p50 <= good.p99, `0 < p50 ≤ p99 (${good.p50}, ${good.p99})`)
      t.ok(good.seconds >= 0.25 && good.seconds < 1, `measured for the duration (${good.seconds} s)`)
      t.ok(good.clientCpu > 0, 'the client’s CPU share is measured')
    }
    const wrong = await tool.run(job(await peer(t, (s, d) => s.send(d.toString().toUpperCase())), 1))
    t.equal(wrong.requests, 0, 'a wrong echo is not counted as an echo')
    t.ok(wrong.errors > 0, `but as an error (${wrong.errors})`)
    const refused = await tool.run(job(await peer(t, echo, { status: 403 }), 1))
    t.match(refused, { requests: 0, timeouts: 0 })
    // Bun's client does not expose the refused handshake's status: there a refusal is an error.
    if (client === 'node') t.equal(refused.non2xx, 4, 'every refused handshake is counted as such')
    else t.equal(refused.errors + refused.non2xx, 4, 'every refused handshake is counted')
  })
}

t.test('--ws-client: bun by default when installed, node on request, anything else refused', async (t) => {
  t.equal(pickWsClient('node'), 'node')
  t.equal(pickWsClient(undefined), missingBinary('bun') === false ? 'bun' : 'node')
  t.throws(() => pickWsClient('deno'), /--ws-client must be bun or node/)
})
