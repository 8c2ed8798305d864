/**
 * The supervisor of `postern --workers N` and the signals of a lone
 * process, run for real: bin/postern.js as a child process, workers as real
 * cluster processes, requests over real sockets. Each test checks, at the
 * end, that no worker process it saw is left running.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'

const root = fileURLToPath(new URL('../..', import.meta.url))
const bin = fileURLToPath(new URL('../../bin/postern.js', import.meta.url))
const APP = 'test/fixtures/sup-app.ts:app'

interface Postern {
  child: ChildProcess
  pid: number
  url: string
  output(): string
  /** Resolves the first match of `pattern` in the output (stdout and stderr), waiting for it. */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpExecArray>
  /** Every worker pid the supervisor logged as booting. */
  workerPids(): number[]
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
}

/** Starts the command; unless `serving` is false, waits for its "serving … on URL" line. */
async function start(t: Test, args: string[], serving = true): Promise<Postern> {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const waiters = new Set<() => void>()
  const onData = (d: Buffer) => {
    out += d.toString()
    for (const check of waiters) check()
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }))
  })
  const waitFor = (pattern: RegExp, ms = 15_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no ${pattern} within ${ms} ms in:\n${out}`)), ms)
      const check = () => {
        const match = pattern.exec(out)
        if (match !== null) done(null, match)
      }
      const done = (error: Error | null, match?: RegExpExecArray) => {
        clearTimeout(timer)
        waiters.delete(check)
        if (error !== null) reject(error)
        else resolve(match!)
      }
      waiters.add(check)
      void exit.then(() => setImmediate(() => waiters.has(check) && done(new Error(`postern exited before ${pattern}:\n${out}`))))
      check()
    })
  const workerPids = () => [...out.matchAll(/worker (\d+) booting/g)].map((m) => Number(m[1]))
  t.teardown(async () => {
    // A failed test must not leave processes behind for the next one.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exit
    }
    for (const pid of workerPids()) if (alive(pid)) process.kill(pid, 'SIGKILL')
  })
  const url = serving ? (await waitFor(/serving .* on (\S+)/))[1]! : ''
  return { child, pid: child.pid!, url, output: () => out, waitFor, workerPids, exit }
}

/** Whether `pid` is a running process (a zombie has ended: only its exit status is left to collect). */
function alive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`
  if (!existsSync(stat)) return false
  try {
    return readFileSync(stat, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z'
  } catch {
    return false
  }
}

/** Asserts every pid is gone, giving processes a moment to finish exiting. */
async function assertGone(t: Test, pids: number[], what = 'no worker process is left'): Promise<void> {
  const until = Date.now() + 3_000
  while (pids.some(alive) && Date.now() < until) await sleep(50)
  t.same(pids.filter(alive), [], what)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A new connection per request, so the primary hands each to a worker afresh. */
async function pidOf(url: string): Promise<number> {
  const res = await fetch(`${url}/`, { headers: { connection: 'close' } })
  // The body is the pid, or "<version> <pid>" for the reload test's app.
  return Number((await res.text()).split(' ').pop())
}

/** Asks until `want` distinct pids answered (bounded), and returns them. */
async function answeringPids(url: string, want: number): Promise<Set<number>> {
  const pids = new Set<number>()
  for (let i = 0; i < 40 && pids.size < want; i++) pids.add(await pidOf(url))
  return pids
}

t.test('a worker killed with kill -9 is replaced, and the log names it; SIGTERM then drains, exit 0', async (t) => {
  const p = await start(t, [APP, '--port', '0', '--workers', '2'])
  const before = await answeringPids(p.url, 2)
  t.equal(before.size, 2, 'both workers answer')
  const [victim, survivor] = [...before]
  process.kill(victim!, 'SIGKILL')
  await p.waitFor(new RegExp(`worker ${victim} died \\(killed by SIGKILL`))
  const fresh = Number((await p.waitFor(/worker (\d+) ready/))[1])
  t.not(fresh, victim)
  t.notOk(before.has(fresh), 'a new process')
  const after = await answeringPids(p.url, 2)
  t.same([...after].sort(), [fresh, survivor].sort(), 'the replacement and the survivor answer, the dead one never')

  // SIGTERM drains: a slow request in flight still gets its answer, and a clean stop exits 0.
  const pending = fetch(`${p.url}/slow`)
  await sleep(150)
  p.child.kill('SIGTERM')
  const res = await pending
  t.equal(res.status, 200)
  t.equal(await res.text(), 'slow done')
  const { code } = await p.exit
  t.equal(code, 0, 'exit 0 after a replaced worker and a clean drain')
  await assertGone(t, p.workerPids())
})

t.test('workers that cannot boot: back-off, then the supervisor gives up with exit 3', async (t) => {
  const started = Date.now()
  const p = await start(t, ['test/fixtures/sup-boot-crash.ts:app', '--port', '0', '--workers', '2'], false)
  const { code, at } = await p.exit
  t.equal(code, 3, 'exit 3: workers failed to boot')
  t.ok(at - started < 20_000, `gave up in bounded time (${at - started} ms)`)
  const out = p.output()
  t.match(out, /sup-boot-crash: the database at 127\.0\.0\.1:1 is not reachable/, "the app's error is shown")
  t.equal(out.match(/is not reachable/g)?.length, 1, 'the same error is shown in full once')
  t.match(out, /died \(exit code \d+, before it was ready\)/)
  t.match(out, /replacing worker \d+ in 100 ms/, 'the back-off starts small')
  t.match(out, /replacing worker \d+ in 200 ms/, 'and doubles')
  t.match(out, /replacing worker \d+ in 400 ms/)
  t.match(out, /5 workers in a row failed to boot; stopping \(exit 3\)/)
  t.notMatch(out, /serving/, 'never claimed to serve')
  t.equal(out.match(/before it was ready/g)?.length, 5, 'five boot failures, then no more')
  await assertGone(t, p.workerPids())
})

t.test('a mistake in the call is reported once by the supervisor, exit 2, no retries', async (t) => {
  const p = await start(t, ['test/fixtures/sup-app.ts:nope', '--port', '0', '--workers', '2'], false)
  const { code } = await p.exit
  t.equal(code, 2)
  t.match(p.output(), /postern: test\/fixtures\/sup-app\.ts has no export "nope" \(it exports: app\)/)
  t.equal(p.output().match(/has no export/g)?.length, 1, 'said once, not once per worker')
  t.notMatch(p.output(), /replacing/)
  await assertGone(t, p.workerPids())
})

t.test('SIGHUP under load: zero failed requests, then only new workers answer, running the new code', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-reload-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const module = join(dir, 'app.mts')
  const source = (version: string) =>
    `export const app = (_environ: unknown, startResponse: (status: string, headers: [string, string][]) => void) => {\n` +
    `  startResponse('200 OK', [['Content-Type', 'text/plain']])\n` +
    `  return ['${version} ' + process.pid]\n}\n`
  writeFileSync(module, source('v1'))
  const p = await start(t, [`${module}:app`, '--port', '0', '--workers', '2'])
  const old = await answeringPids(p.url, 2)
  t.equal(old.size, 2)

  // Eight clients, each sending its next request as soon as the last one is answered, over keep-alive.
  let running = true
  let ok = 0
  const failures: string[] = []
  const seen: Array<{ at: number; body: string }> = []
  const client = async () => {
    while (running) {
      try {
        const res = await fetch(`${p.url}/`)
        const body = await res.text()
        if (res.status !== 200) failures.push(`status ${res.status}`)
        else ok++
        seen.push({ at: Date.now(), body })
      } catch (error) {
        failures.push(String((error as Error).cause ?? error))
      }
    }
  }
  const clients = Array.from({ length: 8 }, client)
  await sleep(500)
  writeFileSync(module, source('v2'))
  p.child.kill('SIGHUP')
  await p.waitFor(/reload done: workers (\d+), (\d+)/)
  const reloadedAt = Date.now()
  await sleep(800)
  running = false
  await Promise.all(clients)

  t.same(failures, [], 'no request failed during the reload')
  t.ok(ok > 100, `requests kept being answered (${ok})`)
  const lastOld = Math.max(...seen.filter((s) => s.body.startsWith('v1 ')).map((s) => s.at))
  t.comment(`last v1 answer ${lastOld - reloadedAt} ms after reload done`)
  // The last old worker got its SIGTERM when "reload done" was logged; what it had in flight still ends there.
  const late = seen.filter((s) => s.at > reloadedAt + 300)
  t.ok(late.length > 0 && late.every((s) => s.body.startsWith('v2 ')), 'soon after the reload every answer comes from the new code')

  const fresh = await answeringPids(p.url, 2)
  const [, a, b] = await p.waitFor(/reload done: workers (\d+), (\d+)/)
  t.same([...fresh].sort(), [Number(a), Number(b)].sort(), 'the two new workers answer')
  for (const pid of old) t.notOk(fresh.has(pid), `old worker ${pid} no longer answers`)
  await assertGone(t, [...old], 'the old workers are gone')
  p.child.kill('SIGTERM')
  t.equal((await p.exit).code, 0)
  await assertGone(t, p.workerPids())
})

t.test('SIGTERM with a hung request and --drain-timeout 500: exit 1 within about a second', async (t) => {
  const p = await start(t, [APP, '--port', '0', '--workers', '2', '--drain-timeout', '500'])
  const pending = fetch(`${p.url}/hang`).then(
    () => 'answered',
    () => 'cut',
  )
  await sleep(150)
  const sent = Date.now()
  p.child.kill('SIGTERM')
  const { code, at } = await p.exit
  t.equal(code, 1, 'non-zero: a request was cut')
  t.ok(at - sent < 1_500, `exited ${at - sent} ms after SIGTERM`)
  t.equal(await pending, 'cut')
  t.match(p.output(), /cut 1 request still in flight at the 500 ms drain deadline/)
  await assertGone(t, p.workerPids())
})

t.test('SIGINT once drains; SIGINT again stops at once', async (t) => {
  const p = await start(t, [APP, '--port', '0', '--workers', '2'])
  void fetch(`${p.url}/hang`).catch(() => {})
  await sleep(150)
  p.child.kill('SIGINT')
  await sleep(300)
  t.equal(p.child.exitCode, null, 'still draining after the first SIGINT')
  const sent = Date.now()
  p.child.kill('SIGINT')
  const { code, at } = await p.exit
  t.not(code, 0, 'a forced stop is not a clean one')
  t.ok(at - sent < 1_000, `exited ${at - sent} ms after the second SIGINT`)
  await assertGone(t, p.workerPids())
})

t.test('if the supervisor is killed, its workers do not linger', async (t) => {
  const p = await start(t, [APP, '--port', '0', '--workers', '2'])
  const workers = p.workerPids()
  t.equal(workers.length, 2)
  process.kill(p.pid, 'SIGKILL')
  await p.exit
  await assertGone(t, workers, 'the workers exit when their supervisor is gone')
})

t.test('one process: SIGHUP is logged and ignored; SIGTERM with a hung request cuts it at the deadline', async (t) => {
  const p = await start(t, [APP, '--port', '0', '--drain-timeout', '500'])
  p.child.kill('SIGHUP')
  await p.waitFor(/SIGHUP: ignored: reloading needs --workers/)
  t.equal(await pidOf(p.url), p.pid, 'still serving, in the one process')
  const pending = fetch(`${p.url}/hang`).then(
    () => 'answered',
    () => 'cut',
  )
  await sleep(100)
  const sent = Date.now()
  p.child.kill('SIGTERM')
  const { code, at } = await p.exit
  t.equal(code, 1)
  t.ok(at - sent < 1_500, `exited ${at - sent} ms after SIGTERM`)
  t.equal(await pending, 'cut')
})

t.test('one process: SIGINT twice exits at once', async (t) => {
  const p = await start(t, [APP, '--port', '0'])
  void fetch(`${p.url}/hang`).catch(() => {})
  await sleep(100)
  p.child.kill('SIGINT')
  await sleep(300)
  t.equal(p.child.exitCode, null, 'draining')
  const sent = Date.now()
  p.child.kill('SIGINT')
  const { code, at } = await p.exit
  t.equal(code, 1)
  t.ok(at - sent < 1_000, `exited ${at - sent} ms after the second SIGINT`)
})

t.test('--server node drains to the same deadline: a hung request is cut, exit 1', async (t) => {
  const p = await start(t, [APP, '--server', 'node', '--port', '0', '--drain-timeout', '500'])
  const pending = fetch(`${p.url}/hang`).then(
    () => 'answered',
    () => 'cut',
  )
  await sleep(100)
  const sent = Date.now()
  p.child.kill('SIGTERM')
  const { code, at } = await p.exit
  t.equal(code, 1)
  t.ok(at - sent < 1_500, `exited ${at - sent} ms after SIGTERM`)
  t.equal(await pending, 'cut')
  t.match(p.output(), /cut 1 request/)
})

t.test('--server node: a slow request in flight completes, exit 0', async (t) => {
  const p = await start(t, [APP, '--server', 'node', '--port', '0'])
  const pending = fetch(`${p.url}/slow`)
  await sleep(100)
  p.child.kill('SIGTERM')
  const res = await pending
  t.equal(await res.text(), 'slow done')
  t.match(res.headers.get('connection') ?? '', /close/i, 'told the client the connection ends')
  t.equal((await p.exit).code, 0)
})
