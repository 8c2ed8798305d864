/**
 * postern behind a real nginx: two `postern --workers 2` processes, trusting
 * the proxy (`--trust-proxy 127.0.0.1`) and answering health checks
 * (`--health /healthz`), balanced by an nginx the test configures and
 * starts on loopback. Requests reach both processes; the app sees the
 * client's address as nginx saw it, never one the client wrote; a rolling
 * reload (SIGHUP) and a stop (SIGTERM) of one process under load fail no
 * request; everything exits cleanly and nothing is left running.
 *
 * nginx is the Debian package `nginx`. Without it the test is skipped,
 * except in CI (`CI` set), where that is a failure.
 */
import http from 'node:http'
import t from 'tap'
import type { Test } from 'tap'
import type { Seen } from '../fixtures/proxy-app.js'
import { alive, childrenOf, descendantsOf, findNginx, freePort, startNginx, startPostern, waitFor, type Running } from '../fixtures/proxy-process.js'

const nginxBinary = findNginx()

/** What a load run saw. */
interface Load {
  ok: number
  /** Requests that got no response at all, with why. */
  failed: string[]
  /** Responses that were not 2xx. */
  non2xx: string[]
  /** Every response: which worker (and its supervisor) answered, and when. */
  answers: Array<{ pid: number; ppid: number; at: number }>
}

/** `concurrency` clients fetching `url` back to back until `stop()`; resolves with what they saw. */
function startLoad(url: string, concurrency: number): { stop(): Promise<Load>; readonly load: Load } {
  const load: Load = { ok: 0, failed: [], non2xx: [], answers: [] }
  let running = true
  const client = async () => {
    while (running) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(15_000) })
        const body = await res.text()
        if (res.status < 200 || res.status > 299) {
          load.non2xx.push(`${res.status} ${body.slice(0, 200)}`)
          continue
        }
        const seen = JSON.parse(body) as Seen
        load.ok++
        load.answers.push({ pid: seen.pid, ppid: seen.ppid, at: Date.now() })
      } catch (error) {
        const cause = (error as { cause?: unknown }).cause
        load.failed.push(String(cause ?? error))
      }
    }
  }
  const clients = Array.from({ length: concurrency }, client)
  return {
    load,
    async stop() {
      running = false
      await Promise.all(clients)
      return load
    },
  }
}

/** GET through nginx from a chosen local address with headers of the client's own, on a fresh connection. */
function getFrom(port: number, localAddress: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', localAddress, headers, agent: false, timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')))
    req.on('error', reject)
  })
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Asserts a load run failed nothing, with the first failures in the message when it did. */
/** `logs` gives nginx's error log and the processes' output, shown only when a request failed, to say why. */
function assertClean(t: Test, load: Load, what: string, logs: () => string): void {
  const bad = load.failed.length + load.non2xx.length
  t.equal(load.failed.length, 0, `${what}: no request failed`, { failed: load.failed.slice(0, 5), ...(bad > 0 ? { logs: logs() } : {}) })
  t.equal(load.non2xx.length, 0, `${what}: every response was 2xx`, { non2xx: load.non2xx.slice(0, 5) })
  t.ok(load.ok >= 50, `${what}: the load was real (${load.ok} requests)`)
}

t.test('postern behind nginx', { skip: nginxBinary === null && process.env['CI'] === undefined ? 'nginx is not installed (apt-get install nginx)' : false }, async (t) => {
  if (nginxBinary === null) {
    t.fail('nginx is required in CI: install the Debian package nginx (.ci/run does)')
    return
  }
  const baseline = descendantsOf(process.pid)
  const [portA, portB, nginxPort] = await Promise.all([freePort(), freePort(), freePort()])
  const args = (port: number) => [
    'test/fixtures/proxy-app.ts:app',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--trust-proxy',
    '127.0.0.1',
    '--health',
    '/healthz',
    '--workers',
    '2',
  ]

  const started: Running[] = []
  /** Every process this test started or saw, to prove at the end that none is left. */
  const seenPids = new Set<number>()
  // A safety net for a failed run: nothing may outlive the test.
  t.teardown(async () => {
    for (const running of started.reverse()) await running.stop('SIGKILL', 5000)
  })

  const [a, b] = await Promise.all([startPostern(args(portA)), startPostern(args(portB))])
  started.push(a, b)
  const nginx = await startNginx(nginxBinary, { port: nginxPort, upstreams: [portA, portB] })
  started.push(nginx)
  const remember = () => {
    for (const root of [a.pid, b.pid, nginx.pid]) for (const pid of [root, ...descendantsOf(root)]) seenPids.add(pid)
  }
  remember()
  const base = `http://127.0.0.1:${nginxPort}`
  const ready = await waitFor(() => childrenOf(a.pid).length === 2 && childrenOf(b.pid).length === 2, 10_000)
  t.ok(ready, 'each supervisor runs two workers', { a: childrenOf(a.pid), b: childrenOf(b.pid) })

  await t.test('requests reach both postern processes', async (t) => {
    const supervisors = new Set<number>()
    const workers = new Set<number>()
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all(Array.from({ length: 8 }, () => fetch(`${base}/?round=${round}`).then((r) => r.json() as Promise<Seen>)))
      for (const seen of answers) {
        supervisors.add(seen.ppid)
        workers.add(seen.pid)
      }
    }
    t.same([...supervisors].sort(), [a.pid, b.pid].sort(), 'answers came from workers of both processes')
    for (const pid of workers) t.ok([...childrenOf(a.pid), ...childrenOf(b.pid)].includes(pid), `pid ${pid} is a worker of one of them`)
  })

  await t.test('REMOTE_ADDR is the client nginx saw, not one the client wrote', async (t) => {
    // The client connects from 127.0.0.2: a different address from nginx's own 127.0.0.1, the one trusted peer.
    const res = await getFrom(nginxPort, '127.0.0.2', {
      'X-Forwarded-For': '6.6.6.6',
      Forwarded: 'for=6.6.6.7;proto=https;host=evil.example',
      'X-Forwarded-Proto': 'https',
      'X-Forwarded-Host': 'evil.example',
      'X-Forwarded-Port': '8443',
    })
    t.equal(res.status, 200)
    const seen = JSON.parse(res.body) as Seen
    t.equal(seen.remoteAddr, '127.0.0.2', 'the address nginx accepted the connection from')
    t.equal(seen.forwardedFor, '6.6.6.6, 127.0.0.2', 'nginx appended the client to what the client sent')
    t.equal(seen.scheme, 'http', 'the scheme nginx served, not the one the client claimed')
    t.equal(seen.host, `127.0.0.1:${nginxPort}`, 'the Host the client sent to nginx')
    t.ok([String(portA), String(portB)].includes(seen.serverPort), 'SERVER_PORT stays the port postern listens on: nginx sends no X-Forwarded-Port')
    t.match(seen.original, { REMOTE_ADDR: '127.0.0.1', SERVER_PORT: /^\d+$/ }, 'what postern itself saw: nginx')

    const plain = (await (await fetch(`${base}/`)).json()) as Seen
    t.equal(plain.remoteAddr, '127.0.0.1')
    t.equal(plain.forwardedFor, '127.0.0.1')
  })

  await t.test('the health path answers through nginx', async (t) => {
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${base}/healthz`)
      t.equal(res.status, 200)
      t.equal(await res.text(), 'ok')
      t.equal(res.headers.get('cache-control'), 'no-store')
    }
  })

  await t.test('a rolling reload (SIGHUP) of one process under load fails no request', async (t) => {
    const old = childrenOf(a.pid)
    t.equal(old.length, 2, 'two workers before the reload')
    const run = startLoad(`${base}/?delay=20`, 8)
    await sleep(300)
    a.child.kill('SIGHUP')
    const reloaded = await waitFor(() => {
      remember()
      const now = childrenOf(a.pid)
      return old.every((pid) => !alive(pid)) && now.length === 2 && now.every((pid) => !old.includes(pid))
    }, 25_000)
    t.ok(reloaded, 'both old workers were replaced by new ones', { old, now: childrenOf(a.pid), output: reloaded ? '' : a.output() })
    const fresh = childrenOf(a.pid)
    const servedByNew = await waitFor(() => run.load.answers.some((x) => fresh.includes(x.pid)), 5_000)
    await sleep(300)
    const load = await run.stop()
    t.ok(servedByNew, 'the new workers answer through nginx')
    assertClean(t, load, 'reload', () => `${nginx.output()}\n${a.output()}\n${b.output()}`)
    t.equal(a.child.exitCode, null, 'the reloaded process kept running')
    t.ok(load.answers.some((x) => x.ppid === a.pid) && load.answers.some((x) => x.ppid === b.pid), 'both processes served during the reload')
  })

  await t.test('stopping one process (SIGTERM) under load fails no request', async (t) => {
    remember()
    const workersB = childrenOf(b.pid)
    const run = startLoad(`${base}/?delay=20`, 8)
    await sleep(300)
    const exit = await b.stop('SIGTERM', 25_000)
    t.same(exit, { code: 0, signal: null, killed: false }, 'the stopped process drained and exited 0', { output: b.output() })
    const stoppedAt = Date.now()
    await sleep(500)
    const load = await run.stop()
    assertClean(t, load, 'stop', () => `${nginx.output()}\n${a.output()}\n${b.output()}`)
    const after = load.answers.filter((x) => x.at > stoppedAt)
    t.ok(after.length > 0, 'requests went on after the stop')
    t.ok(
      after.every((x) => x.ppid === a.pid),
      'after the stop, the other process answered them all',
    )
    t.same(workersB.filter(alive), [], "the stopped process's workers exited")
  })

  await t.test('nginx and postern stop cleanly and leave nothing running', async (t) => {
    remember()
    const nginxExit = await nginx.stop('SIGTERM', 10_000)
    t.same(nginxExit, { code: 0, signal: null, killed: false }, 'nginx exited 0', { output: nginxExit.code === 0 ? '' : nginx.output() })
    const aExit = await a.stop('SIGTERM', 25_000)
    t.same(aExit, { code: 0, signal: null, killed: false }, 'postern exited 0 after SIGTERM', { output: aExit.code === 0 ? '' : a.output() })
    t.same((await b.exited).code, 0)
    t.same([...seenPids].filter(alive), [], 'no process this test started or saw is still running')
    t.same(descendantsOf(process.pid), baseline, 'no child of the test is left')
  })
})
