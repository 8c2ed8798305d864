/**
 * Scenario 8 (CORS + signed cookies + gzip): every peer that serves it
 * passes its check and probes through the real command line, a short
 * measured run gets a number per peer without errors, and the check refuses
 * what a peer could get wrong (a missing CORS header, an unchecked
 * signature, an uncompressed or different body), so no peer is measured
 * doing less work than the others. Asserts nothing about speed.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import type { IncomingHttpHeaders } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { verify } from '../../bench/harness.js'
import { PEERS } from '../../bench/peer.js'
import { CORS_ORIGIN, PLUGINS_PATH, SEEN_COOKIE, SESSION_COOKIE, SESSION_USER, checkPlugins, pluginsReply, scenarioById, type Scenario } from '../../bench/scenarios.js'
import { wrkVersion } from '../../bench/wrk.js'
import type { Environ, GatewayApp, Headers } from '../../lib/gateway/spec.js'
import { serve } from '../helpers/server.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const SERVED_BY = ['fastify', 'postern', 'postern-app', 'postern-node']

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

function scenario8(): Scenario {
  const s = scenarioById('8')
  if (s === undefined) throw new Error('scenario 8 is missing')
  return s
}

t.test('scenario 8 is the plugins scenario, served by the peers that have the three plugins', async (t) => {
  const s = scenario8()
  t.equal(s.route, 'plugins')
  t.equal(s.method, 'GET')
  t.equal(s.path, PLUGINS_PATH)
  t.same(s.peers, SERVED_BY)
  t.match(s.headers, { origin: CORS_ORIGIN, cookie: `session=${SESSION_COOKIE}; theme=dark`, 'accept-encoding': 'gzip' }, 'a credentialed cross-origin fetch, gzip only')
  t.ok(JSON.stringify(pluginsReply(SESSION_USER)).length >= 1024, 'the JSON is above the 1 KiB compression threshold')
})

t.test('--check: every serving peer answers correctly and refuses bad sessions; the others are skipped', async (t) => {
  const { code, stdout, stderr } = await bench(['--check', '--only', '8'])
  t.equal(code, 0, `bench --check exits 0 (stderr: ${stderr.slice(-500)})`)
  for (const peer of SERVED_BY) t.match(stdout, new RegExp(`^scenario 8 · ${peer}: ok$`, 'm'), `${peer} passed the check and the probes`)
  for (const peer of PEERS.map((p) => p.name).filter((name) => !SERVED_BY.includes(name))) {
    t.match(stdout, new RegExp(`^scenario 8 · ${peer}: skipped \\(does not serve this scenario`, 'm'), `${peer} is skipped, and the output says so`)
  }
})

/** A short measured run of scenario 8: every serving peer gets a number and no errors or non-2xx under load. */
async function measured(t: Test, tool: string): Promise<void> {
  const out = mkdtempSync(join(tmpdir(), 'postern-bench-plugins-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const { code, stderr } = await bench(['--only', '8', '--peers', 'fastify,postern-app', '--duration', '1', '--rounds', '1', '--warmup', '0', '--tool', tool, '--out', out])
  t.equal(code, 0, `bench exits 0 (stderr: ${stderr.slice(-500)})`)
  const json = readdirSync(out).find((f) => f.endsWith('.json'))
  const report = JSON.parse(readFileSync(join(out, json ?? ''), 'utf8')) as { cells: Array<{ scenario: string; peer: string; median: number; problem?: string }> }
  t.same(report.cells.map((c) => c.peer).sort(), ['fastify', 'postern-app'])
  for (const cell of report.cells) {
    t.equal(cell.scenario, '8')
    t.equal(cell.problem, undefined, `${cell.peer}: no errors, timeouts or non-2xx under load (the load generator sends the valid session)`)
    t.ok(cell.median > 0, `${cell.peer} has a positive req/s (${cell.median})`)
  }
  const markdown = readFileSync(join(out, 'latest.md'), 'utf8')
  t.match(markdown, /^## 8 · GET JSON: CORS \+ cookies \+ gzip: req\/s/m, 'the report has the scenario table')
}

t.test('a measured quick run with autocannon', (t) => measured(t, 'autocannon'))
t.test('a measured quick run with wrk, when installed', { skip: wrkVersion() === null ? 'wrk is not installed' : false }, (t) => measured(t, 'wrk'))

// ── The check itself, on crafted answers ────────────────────────────────────

const JSON_TYPE = 'application/json; charset=utf-8'
const GOOD_BODY = gzipSync(JSON.stringify(pluginsReply(SESSION_USER)))
const GOOD_HEADERS: IncomingHttpHeaders = {
  'content-type': JSON_TYPE,
  'content-encoding': 'gzip',
  vary: 'Accept-Encoding, Origin',
  'set-cookie': [SEEN_COOKIE],
  'access-control-allow-origin': CORS_ORIGIN,
  'access-control-allow-credentials': 'true',
}

function check(headers: IncomingHttpHeaders, body: Buffer = GOOD_BODY, status = 200): string | null {
  return checkPlugins(status, String(headers['content-type'] ?? ''), body, headers)
}

t.test('the check accepts what both plugin stacks send', async (t) => {
  t.equal(check(GOOD_HEADERS), null, "postern's headers")
  t.equal(check({ ...GOOD_HEADERS, vary: 'Origin, accept-encoding' }), null, "Fastify's Vary (order and case differ)")
  t.equal(check({ ...GOOD_HEADERS, 'set-cookie': ['seen=1; HttpOnly; SameSite=lax; path=/'] }), null, 'cookie attributes in any order and case')
})

t.test('the check refuses what a peer could get wrong, and says what', async (t) => {
  const without = (name: string): IncomingHttpHeaders => Object.fromEntries(Object.entries(GOOD_HEADERS).filter(([k]) => k !== name))
  t.equal(check(GOOD_HEADERS, GOOD_BODY, 401), 'status 401')
  t.match(check({ ...GOOD_HEADERS, 'content-type': 'text/plain' }), /^content-type "text\/plain"/)
  t.match(check(without('access-control-allow-origin')), /^access-control-allow-origin undefined/)
  t.match(check({ ...GOOD_HEADERS, 'access-control-allow-origin': '*' }), /^access-control-allow-origin "\*"/, 'a wildcard is wrong with credentials')
  t.match(check(without('access-control-allow-credentials')), /^access-control-allow-credentials/)
  t.match(check({ ...GOOD_HEADERS, vary: 'Accept-Encoding' }), /^vary .* lacks Origin/)
  t.match(check(without('vary')), /^vary undefined lacks/)
  t.match(check(without('set-cookie')), /^set-cookie \[\]/)
  t.match(check({ ...GOOD_HEADERS, 'set-cookie': ['seen=1; Path=/'] }), /^set-cookie /, 'a cookie without HttpOnly')
  t.match(check({ ...GOOD_HEADERS, 'set-cookie': [SEEN_COOKIE, SEEN_COOKIE] }), /^set-cookie /, 'the cookie set twice')
  t.match(check(without('content-encoding'), Buffer.from(JSON.stringify(pluginsReply(SESSION_USER)))), /^content-encoding undefined/, 'an uncompressed answer')
  t.match(check({ ...GOOD_HEADERS, 'content-encoding': 'br' }), /^content-encoding "br"/)
  t.match(check(GOOD_HEADERS, Buffer.from('not gzip at all')), /^body is not gzip/, 'a body that says gzip but is not')
  t.match(check(GOOD_HEADERS, gzipSync(JSON.stringify(pluginsReply('user-1')))), /^body /, 'another user')
  t.match(check(GOOD_HEADERS, gzipSync('{"user":')), /^body is not JSON/)
})

// ── verify(): the check and the probes against live servers ──────────────────

/** Answers scenario 8 with the right bytes; `checksSession: false` skips the signature check, `cors: false` the CORS headers. */
function fakePeer(options: { checksSession: boolean; cors: boolean }): GatewayApp {
  return (environ: Environ, startResponse) => {
    const cookie = environ.HTTP_COOKIE ?? ''
    if (options.checksSession && !cookie.includes(`session=${SESSION_COOKIE}`)) {
      startResponse('401 Unauthorized', [['Content-Type', JSON_TYPE]])
      return ['{"error":"invalid session"}']
    }
    const headers: Headers = [
      ['Content-Type', JSON_TYPE],
      ['Content-Encoding', 'gzip'],
      ['Vary', 'Origin, Accept-Encoding'],
      ['Set-Cookie', SEEN_COOKIE],
    ]
    if (options.cors) headers.push(['Access-Control-Allow-Origin', CORS_ORIGIN], ['Access-Control-Allow-Credentials', 'true'])
    startResponse('200 OK', headers)
    return [GOOD_BODY]
  }
}

t.test('verify() passes a peer that does all the work', async (t) => {
  const { port } = await serve(t, fakePeer({ checksSession: true, cors: true }))
  t.equal(await verify(port, scenario8()), null)
})

t.test('verify() fails a peer that does not check the signature, naming the probe', async (t) => {
  const { port } = await serve(t, fakePeer({ checksSession: false, cors: true }))
  t.equal(await verify(port, scenario8()), 'a session cookie signed with another secret is refused: status 200, want 401')
})

t.test('verify() fails a peer without CORS headers before any probe', async (t) => {
  const { port } = await serve(t, fakePeer({ checksSession: true, cors: false }))
  t.equal(await verify(port, scenario8()), 'access-control-allow-origin undefined')
})

t.test('verify() reports a peer that is not listening', async (t) => {
  const { port, close } = await serve(t, fakePeer({ checksSession: true, cors: true }))
  await close()
  t.match(await verify(port, scenario8()), /^request error: connect ECONNREFUSED/)
})
