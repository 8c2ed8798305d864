/**
 * `postern … --access-log`, run for real: the command writes one JSON line
 * per request to its stdout (pino's, through requestLogger), errors the app
 * reports are logged with their request, `--log-level` filters, and with
 * `--workers` each worker logs the requests it answered.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { serveLogged as serve } from '../fixtures/log-process.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const bin = fileURLToPath(new URL('../../bin/postern.js', import.meta.url))
const APP = 'test/fixtures/log-app.ts:app'
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** Runs the command to its end (a usage error). */
async function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  const [code] = (await once(child, 'exit')) as [number | null]
  clearTimeout(timer)
  return { code, stderr }
}

t.test('--access-log: one JSON line per request on stdout, with the request id from the header', async (t) => {
  const s = await serve(t, [APP, '--port', '0', '--access-log'])
  const res = await fetch(`${s.url}/orders?page=2`, { headers: { 'x-request-id': 'cli-req-1' } })
  t.equal(res.status, 200)
  t.equal(await res.text(), String(s.pid))
  const line = await s.line((l) => l.reqId === 'cli-req-1', 'the access line')
  t.match(line, { level: 30, msg: 'request completed', pid: s.pid, req: { method: 'GET', url: '/orders?page=2', remoteAddress: '127.0.0.1' }, res: { statusCode: 200 } })
  t.type(line.responseTime, 'number')
  t.ok(line.responseTime! >= 0)

  await (await fetch(`${s.url}/`, { headers: { 'x-request-id': 'bad id' } })).text()
  const generated = await s.line((l) => l.msg === 'request completed' && l.req?.url === '/', 'the second access line')
  t.match(generated.reqId, UUID, 'an id with a space is replaced by a UUID')
  t.equal(s.lines.filter((l) => l.msg === 'request completed').length, 2, 'one line per request')
})

t.test('--access-log: an error the app reports, and one it throws, name their request', async (t) => {
  const s = await serve(t, [APP, '--port', '0', '--access-log'])
  t.equal((await fetch(`${s.url}/boom`, { method: 'POST', headers: { 'x-request-id': 'cli-boom' } })).status, 500)
  const error = await s.line((l) => l.level === 50, 'the error line')
  t.match(error, { reqId: 'cli-boom', req: { method: 'POST', url: '/boom' } })
  t.match(error.msg, /^postern: request failed: Error: kaboom\n\s+at /, 'with the stack')
  const done = await s.line((l) => l.msg === 'request completed' && l.reqId === 'cli-boom', 'its access line')
  t.same(done.res, { statusCode: 500 })

  t.equal((await fetch(`${s.url}/throw`, { headers: { 'x-request-id': 'cli-throw' } })).status, 500)
  const thrown = await s.line((l) => l.reqId === 'cli-throw', 'the thrown error’s access line')
  t.match(thrown, { res: { statusCode: 500 }, err: { message: 'thrown kaboom' } })
  t.match(thrown.err!.stack, /^Error: thrown kaboom\n\s+at /)
})

t.test('--log-level warn: request lines are left out, error lines kept', async (t) => {
  const s = await serve(t, [APP, '--port', '0', '--access-log', '--log-level', 'warn'])
  await (await fetch(`${s.url}/`)).text()
  await (await fetch(`${s.url}/boom`, { headers: { 'x-request-id': 'warned' } })).text()
  await s.line((l) => l.reqId === 'warned', 'the error line')
  // Lines are written in order by one process: had the first request been logged, it would be here by now.
  t.same(
    s.lines.map((l) => [l.level, l.reqId]),
    [[50, 'warned']],
  )
})

t.test('--access-log with --workers: each worker logs the requests it answered', async (t) => {
  const s = await serve(t, [APP, '--port', '0', '--workers', '2', '--access-log'])
  const answeredBy = new Map<string, number>()
  for (let i = 0; i < 6; i++) {
    const id = `w-${i}`
    const res = await fetch(`${s.url}/`, { headers: { 'x-request-id': id, connection: 'close' } })
    answeredBy.set(id, Number(await res.text()))
  }
  for (const [id, pid] of answeredBy) {
    const line = await s.line((l) => l.reqId === id, `the line of ${id}`)
    t.equal(line.pid, pid, `${id} is logged by the worker that answered it (${pid})`)
    t.not(line.pid, s.pid, 'not by the supervisor')
  }
  t.equal(s.lines.filter((l) => l.msg === 'request completed').length, 6)
})

t.test('--log-level without --access-log, or an unknown level, is a usage error', async (t) => {
  const alone = await run([APP, '--log-level', 'debug'])
  t.equal(alone.code, 2)
  t.match(alone.stderr, 'postern: --log-level goes with --access-log')
  const unknown = await run([APP, '--access-log', '--log-level', 'loud'])
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, 'postern: --log-level must be one of trace, debug, info, warn, error, fatal, silent, got "loud"')
})

t.test('--help documents --access-log and --log-level', async (t) => {
  const child = spawn(process.execPath, [bin, '--help'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  await once(child, 'exit')
  t.match(out, /--access-log\s+log one JSON line per request to stdout/)
  t.match(out, /--log-level <level>\s+with --access-log/)
})
