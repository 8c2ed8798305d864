/**
 * The `postern` command, run for real: a child process serving an example,
 * answered over a socket, stopped with SIGTERM; and each mistake a user can
 * make gets a message that says what to do.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'

const root = fileURLToPath(new URL('../..', import.meta.url))
const bin = fileURLToPath(new URL('../../bin/postern.js', import.meta.url))

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the command to completion (for the calls that must fail fast). */
async function run(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  // A call that was meant to fail but serves instead is killed, not left running.
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  const [code] = (await once(child, 'exit')) as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** Starts the command and waits for its "serving … on URL" line. */
async function serve(t: Test, args: string[]): Promise<{ url: string; stop(): Promise<number | null>; output(): string }> {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const match = /serving .* on (\S+)/.exec(out)
      if (match !== null) resolve(match[1]!)
    })
    child.on('exit', (code) => reject(new Error(`postern exited (${code}) before serving:\n${out}`)))
  })
  let exited: Promise<number | null> | null = null
  const stop = () => {
    exited ??= new Promise((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode)
      child.once('exit', (code) => resolve(code))
      child.kill('SIGTERM')
    })
    return exited
  }
  t.teardown(() => void stop())
  return { url, stop, output: () => out }
}

t.test('serves examples/hello.ts:app and stops gracefully on SIGTERM', async (t) => {
  const server = await serve(t, ['examples/hello.ts:app', '--host', '127.0.0.1', '--port', '0'])
  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  const res = await fetch(`${server.url}/hello`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8')
  t.equal(res.headers.get('content-length'), '13')
  t.equal(await res.text(), 'Hello, world!')
  t.equal(await server.stop(), 0, 'exits 0 after closing')
})

t.test('the default export is used when no export is named', async (t) => {
  const server = await serve(t, ['examples/hello.ts', '--port', '0'])
  t.equal(await (await fetch(`${server.url}/`)).text(), 'Hello, world!')
})

t.test('a request in flight when SIGTERM arrives still gets its response', async (t) => {
  const server = await serve(t, ['test/fixtures/slow-app.ts:app', '--port', '0'])
  const pending = fetch(`${server.url}/slow`)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const exit = server.stop()
  const res = await pending
  t.equal(res.status, 200)
  t.equal(await res.text(), 'finally')
  t.equal(await exit, 0)
})

t.test('--help lists every option, each limit with its default, the signals and the exit codes', async (t) => {
  const r = await run(['--help'])
  t.equal(r.code, 0)
  for (const option of ['--host', '--port', '--workers', '--server', '--interface', '--tls-key', '--tls-cert', '--trust-proxy', '--health']) {
    t.match(r.stdout, option, `mentions ${option}`)
  }
  const defaults: Record<string, number> = {
    '--max-body-size': 1048576,
    '--max-chunk-count': 16384,
    '--max-connections': 10000,
    '--headers-timeout': 10000,
    '--keep-alive-timeout': 5000,
    '--send-timeout': 30000,
    '--handshake-timeout': 10000,
    '--drain-timeout': 20000,
  }
  for (const [option, value] of Object.entries(defaults)) {
    t.match(r.stdout, new RegExp(`${option} [^\\n]*(\\n {30,}[^\\n]*)?\\(default ${value}\\)`), `${option} shows its default, ${value}`)
  }
  t.match(r.stdout, /SIGHUP +with --workers: reload/)
  t.match(r.stdout, /SIGINT twice +stop at once/)
  for (const code of ['0  stopped cleanly', '1  requests were cut', '2  a mistake in the call', '3  workers failed to boot 5 times in a row']) t.match(r.stdout, code)
})

t.test('--version prints the package version', async (t) => {
  const r = await run(['--version'])
  t.equal(r.code, 0)
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
  t.equal(r.stdout, `postern ${version}\n`)
})

t.test('clear messages for the mistakes users make', async (t) => {
  const missingModule = await run(['examples/nope.ts:app'])
  t.equal(missingModule.code, 2)
  t.match(missingModule.stderr, /cannot find module "examples\/nope\.ts"/)

  const missingExport = await run(['examples/hello.ts:nope'])
  t.equal(missingExport.code, 2)
  t.match(missingExport.stderr, /has no export "nope" \(it exports: app, default\)/)

  const notFunction = await run(['test/fixtures/not-an-app.ts:config'])
  t.equal(notFunction.code, 2)
  t.match(notFunction.stderr, /export "config" of test\/fixtures\/not-an-app\.ts is not an app/)

  const noTarget = await run([])
  t.equal(noTarget.code, 2)
  t.match(noTarget.stderr, /expected one app/)

  const badPort = await run(['examples/hello.ts:app', '--port', 'eighty'])
  t.equal(badPort.code, 2)
  t.match(badPort.stderr, /--port must be a whole number/)

  const unknown = await run(['examples/hello.ts:app', '--frobnicate'])
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /^postern: unknown option --frobnicate \(run "postern --help" for the options\)$/m)

  const badDrain = await run(['examples/hello.ts:app', '--drain-timeout', '0'])
  t.equal(badDrain.code, 2)
  t.match(badDrain.stderr, /--drain-timeout must be a whole number ≥ 1, got "0"/)

  const badConnections = await run(['examples/hello.ts:app', '--max-connections', 'lots'])
  t.equal(badConnections.code, 2)
  t.match(badConnections.stderr, /--max-connections must be a whole number/)

  const badTrust = await run(['examples/hello.ts:app', '--trust-proxy', '10.0.0.0/99'])
  t.equal(badTrust.code, 2)
  t.match(badTrust.stderr, /^postern: --trust-proxy: .*10\.0\.0\.0\/99/m)

  const badFamily = await run(['examples/hello.ts:app', '--trust-proxy', 'loopback', '--proxy-headers', 'both'])
  t.equal(badFamily.code, 2)
  t.match(badFamily.stderr, /--proxy-headers must be "x-forwarded" or "forwarded"/)
  const familyAlone = await run(['examples/hello.ts:app', '--proxy-headers', 'forwarded'])
  t.equal(familyAlone.code, 2)
  t.match(familyAlone.stderr, /--proxy-headers goes with --trust-proxy/)

  const badHealth = await run(['examples/hello.ts:app', '--health', 'healthz'])
  t.equal(badHealth.code, 2)
  t.match(badHealth.stderr, /^postern: --health: .*must start with "\/"/m)
})

t.test('a port out of range is a usage error, not a RangeError stack', async (t) => {
  for (const port of ['99999', '65536', '-1', 'abc', '1.5', '']) {
    const r = await run(['examples/hello.ts:app', '--port', port])
    t.equal(r.code, 2, `--port ${JSON.stringify(port)} exits 2`)
    t.equal(r.stderr, `postern: --port must be a whole number 0-65535, got ${JSON.stringify(port)}\n`, `--port ${JSON.stringify(port)}: one line`)
  }
  const short = await run(['examples/hello.ts:app', '-p', '-1'])
  t.equal(short.stderr, 'postern: --port must be a whole number 0-65535, got "-1"\n', '-p -1 too')
  const fromEnv = spawn(process.execPath, [bin, 'examples/hello.ts:app'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PORT: '70000' } })
  let stderr = ''
  fromEnv.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const [code] = (await once(fromEnv, 'exit')) as [number | null]
  t.equal(code, 2)
  t.equal(stderr, 'postern: $PORT must be a whole number 0-65535, got "70000"\n', 'a bad $PORT is named as such')
})

t.test('an unknown option gets one clean line, with the nearest option when one is close', async (t) => {
  const typo = await run(['examples/hello.ts:app', '--prot', '1'])
  t.equal(typo.code, 2)
  t.equal(typo.stderr, 'postern: unknown option --prot, did you mean --port? (run "postern --help" for the options)\n')
  const inline = await run(['examples/hello.ts:app', '--wrokers=2'])
  t.equal(inline.stderr, 'postern: unknown option --wrokers, did you mean --workers? (run "postern --help" for the options)\n')
  const far = await run(['examples/hello.ts:app', '--frobnicate'])
  t.equal(far.code, 2)
  t.equal(far.stderr, 'postern: unknown option --frobnicate (run "postern --help" for the options)\n', 'no suggestion when none is near')
  const short = await run(['examples/hello.ts:app', '-x'])
  t.equal(short.stderr, 'postern: unknown option -x (run "postern --help" for the options)\n')
})

t.test('with --workers, "serving" is printed only once every worker is ready', async (t) => {
  // The app's module makes whichever worker imports it second take a second to boot.
  const dir = mkdtempSync(join(tmpdir(), 'postern-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const marker = join(dir, 'first')
  writeFileSync(
    join(dir, 'app.mjs'),
    `import { writeFileSync } from 'node:fs'
try { writeFileSync(${JSON.stringify(marker)}, '', { flag: 'wx' }) } catch { await new Promise((resolve) => setTimeout(resolve, 1000)) }
export const app = (environ, startResponse) => { startResponse('200 OK', [['Content-Type', 'text/plain']]); return [String(process.pid)] }
`,
  )
  const server = await serve(t, [`${join(dir, 'app.mjs')}:app`, '--port', '0', '--workers', '2'])
  const workers = [...server.output().matchAll(/worker (\d+) booting/g)].map((m) => m[1]!)
  t.equal(workers.length, 2)
  // Asked the moment the line is out: round robin hands the two connections to two different
  // workers only if both already listen, the slow one included.
  const pids = new Set<string>()
  for (let i = 0; i < 2; i++) pids.add(await (await fetch(`${server.url}/`, { headers: { connection: 'close' } })).text())
  t.same([...pids].sort(), [...workers].sort(), 'the first two requests are answered by both workers')
  t.equal(await server.stop(), 0)
})

t.test('a port in use is reported as such', async (t) => {
  const blocker = net.createServer()
  blocker.listen(0, '127.0.0.1')
  await once(blocker, 'listening')
  t.teardown(() => blocker.close())
  const { port } = blocker.address() as net.AddressInfo
  const r = await run(['examples/hello.ts:app', '--port', String(port)])
  t.equal(r.code, 2)
  t.match(r.stderr, `port ${port} on 127.0.0.1 is already in use`)
})

t.test('--workers 2 serves from two processes sharing the port', async (t) => {
  const server = await serve(t, ['test/fixtures/pid-app.ts:app', '--port', '0', '--workers', '2'])
  // "serving" comes once both workers listen, so both can answer from the first request on.
  t.match(server.output(), /postern \(postern server, 2 workers\) serving test\/fixtures\/pid-app\.ts:app on /)
  const workers = [...server.output().matchAll(/worker (\d+) booting/g)].map((m) => m[1]!)
  t.equal(workers.length, 2)
  const pids = new Set<string>()
  for (let i = 0; i < 4; i++) {
    // a new connection each time: the primary hands connections to the workers in turn
    const res = await fetch(`${server.url}/`, { headers: { connection: 'close' } })
    t.equal(res.headers.get('x-multiprocess'), 'true', 'gateway.multiprocess is set')
    pids.add(await res.text())
  }
  t.same([...pids].sort(), [...workers].sort(), 'both workers answered')
  t.equal(await server.stop(), 0)
  t.same(
    workers.filter((pid) => existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))),
    [],
    'no worker is left',
  )
})

t.test('--trust-proxy believes X-Forwarded-* from the listed peers only', async (t) => {
  const trusting = await serve(t, ['test/fixtures/sup-app.ts:app', '--port', '0', '--trust-proxy', '10.0.0.0/8, 127.0.0.1'])
  const forwarded = { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https' }
  t.equal(await (await fetch(`${trusting.url}/remote`, { headers: forwarded })).text(), '203.0.113.7 https', 'from 127.0.0.1, trusted')
  const other = await serve(t, ['test/fixtures/sup-app.ts:app', '--port', '0', '--trust-proxy', '10.0.0.0/8'])
  t.equal(await (await fetch(`${other.url}/remote`, { headers: forwarded })).text(), '127.0.0.1 http', 'from an unlisted peer: ignored')
})

t.test('--health answers 200 ok, then 503 draining once SIGTERM arrived', async (t) => {
  const server = await serve(t, ['test/fixtures/sup-app.ts:app', '--port', '0', '--health', '/healthz'])
  const res = await fetch(`${server.url}/healthz`)
  t.equal(res.status, 200)
  t.equal(await res.text(), 'ok')
  t.equal(await (await fetch(`${server.url}/`)).status, 200, 'other paths reach the app')
  // A keep-alive connection that asks again just after SIGTERM (a balancer's next probe) is told to go away.
  const socket = net.connect(Number(new URL(server.url).port), '127.0.0.1')
  let got = ''
  socket.on('data', (d: Buffer) => (got += d.toString()))
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  while (!got.endsWith('\r\n\r\nok')) await new Promise((resolve) => setTimeout(resolve, 1))
  const exit = server.stop()
  while (!/SIGTERM: draining/.test(server.output())) await new Promise((resolve) => setImmediate(resolve))
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  await once(socket, 'close')
  const second = got.slice(got.indexOf('\r\n\r\nok') + 6)
  t.match(second, /^HTTP\/1\.1 503 Service Unavailable\r\n/)
  t.match(second, /\r\nConnection: close\r\n/i)
  t.match(second, /\r\n\r\ndraining$/)
  t.equal(await exit, 0)
})

t.test('recognises a Fetch handler (Hono) and a node:http listener (Express) by their shape', async (t) => {
  const hono = await serve(t, ['examples/hono-app.ts:hono', '--port', '0'])
  t.equal(await (await fetch(`${hono.url}/hello`)).text(), 'Hello from Hono!')
  const express = await serve(t, ['examples/express-app.ts:expressApp', '--port', '0'])
  t.equal(await (await fetch(`${express.url}/hello`)).text(), 'Hello from Express!')
})

t.test('--interface says the kind when the shape cannot', async (t) => {
  const server = await serve(t, ['test/fixtures/fetch-function.ts:handler', '--interface', 'fetch', '--port', '0'])
  const res = await fetch(`${server.url}/some/where?x=1`)
  t.equal(res.status, 200)
  t.equal(await res.text(), 'GET /some/where?x=1')
})

t.test('--server node serves the same app on the reference node:http server', async (t) => {
  const server = await serve(t, ['examples/framework-hello.ts:app', '--server', 'node', '--port', '0'])
  t.match(server.output(), 'node server')
  const res = await fetch(`${server.url}/hello.json`)
  t.equal(res.status, 200)
  t.same(await res.json(), { hello: 'world' })
})
