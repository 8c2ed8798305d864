/**
 * `postern app.ts:app --watch`, run for real on an app in a temp folder:
 * an edit restarts the server with the new code on the same URL, a burst
 * of saves restarts once, a file that does not load is reported and the
 * next edit brings the server back, a request in flight during a restart
 * gets its answer from the old code, and a stop leaves no process behind.
 * Every wait is bounded; none asserts how long something took.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { type Postern, runPostern, sleep, startPostern, stillRunning, tempDir } from '../helpers/cli.js'

/** An app answering `<version> <pid>`; `/slow` marks `started` and answers once `release` exists. */
function appSource(version: string, dir: string): string {
  return `import { existsSync, writeFileSync } from 'node:fs'
type Start = (status: string, headers: [string, string][]) => void
export const app = async (environ: Record<string, unknown>, startResponse: Start) => {
  if (environ['PATH_INFO'] === '/slow') {
    writeFileSync(${JSON.stringify(join(dir, 'started.txt'))}, '')
    while (!existsSync(${JSON.stringify(join(dir, 'release.txt'))})) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  startResponse('200 OK', [['Content-Type', 'text/plain']])
  return [${JSON.stringify(version)} + ' ' + process.pid]
}
`
}

/** A temp folder with `app.ts` at `version`, CommonJS (its own package.json, whatever is above it). */
function project(t: Test): { dir: string; app: string; write(version: string): void } {
  const dir = tempDir(t, 'postern-watch-')
  writeFileSync(join(dir, 'package.json'), '{}\n')
  const app = join(dir, 'app.ts')
  const write = (version: string) => writeFileSync(app, appSource(version, dir))
  write('v1')
  return { dir, app, write }
}

async function get(url: string, path = '/'): Promise<string | null> {
  try {
    const res = await fetch(`${url}${path}`, { headers: { connection: 'close' } })
    return await res.text()
  } catch {
    return null // between two servers
  }
}

/** Asks until the answer starts with `prefix` (bounded); resolves the answer. */
async function until(url: string, prefix: string, ms = 60_000): Promise<string> {
  const deadline = Date.now() + ms
  let last: string | null = null
  while (Date.now() < deadline) {
    last = await get(url)
    if (last?.startsWith(prefix)) return last
    await sleep(50)
  }
  throw new Error(`no answer starting "${prefix}" within ${ms} ms; last: ${last}`)
}

async function serving(p: Postern, from = 0): Promise<string> {
  return (await p.waitFor(/serving .* on (\S+)/, { from }))[1]!
}

const restarts = (output: string) => output.match(/changed; restarting/g)?.length ?? 0

t.test('an edit restarts with the new code; a file that does not load waits for the next edit; SIGTERM leaves nothing behind', async (t) => {
  const { dir, write, app } = project(t)
  const p = startPostern(t, ['app.ts:app', '--port', '0', '--watch'], dir)
  const url = await serving(p)
  const first = await until(url, 'v1 ')

  let mark = p.output().length
  write('v2')
  const second = await until(url, 'v2 ')
  t.not(second.split(' ')[1], first.split(' ')[1], 'a new process serves the new code')
  t.equal(url, await serving(p, mark), 'on the same URL (the port --port 0 picked is kept)')
  t.match(p.output().slice(mark), /^postern: app\.ts changed; restarting$/m, 'one line says which file changed')

  mark = p.output().length
  writeFileSync(app, 'export const app = (environ: unknown => 1\n')
  await p.waitFor(/^postern: app\.ts:1:38: syntax error: Expected "\)" but found "=>"$/m, { from: mark })
  await p.waitFor(/waiting for a file change to restart/, { from: mark })
  t.equal(p.child.exitCode, null, 'the watcher keeps running')
  t.notMatch(p.output().slice(mark), /\n {4}at /, 'no stack trace for a syntax error')

  mark = p.output().length
  write('v3')
  await serving(p, mark)
  await until(url, 'v3 ')
  t.equal(restarts(p.output()), 3, 'one restart per edit')

  const pids = p.descendants()
  t.ok(pids.length >= 1, 'the server runs as a child process')
  const { code } = await p.stop()
  t.equal(code, 0, 'SIGTERM: exit 0')
  t.same(await stillRunning(pids), [], 'no child process is left')
})

t.test('a burst of saves restarts once; node_modules, .git, logs and scratch files do not count', async (t) => {
  const { dir, write } = project(t)
  mkdirSync(join(dir, 'node_modules'))
  mkdirSync(join(dir, '.git'))
  const p = startPostern(t, ['app.ts:app', '--port', '0', '--watch'], dir)
  const url = await serving(p)
  await until(url, 'v1 ')
  const mark = p.output().length
  // All in one go, as a save-all, a formatter or a checkout writes.
  writeFileSync(join(dir, 'node_modules', 'dep.js'), 'module.exports = 1\n')
  writeFileSync(join(dir, '.git', 'index.js'), '')
  writeFileSync(join(dir, 'server.log'), 'a log line\n')
  writeFileSync(join(dir, '.app.ts.swp'), '')
  for (const version of ['v2a', 'v2b', 'v2c', 'v2d', 'v2e']) write(version)
  await until(url, 'v2e ')
  const lines =
    p
      .output()
      .slice(mark)
      .match(/^postern: .* changed; restarting$/gm) ?? []
  t.same(lines, ['postern: app.ts changed; restarting'], 'one restart, for app.ts only')
  t.equal((await p.stop()).code, 0)
})

t.test('a request in flight during a restart gets its answer from the old code, while the new code serves', async (t) => {
  const { dir, write } = project(t)
  const p = startPostern(t, ['app.ts:app', '--port', '0', '--watch'], dir)
  const url = await serving(p)
  await until(url, 'v1 ')
  const slow = get(url, '/slow')
  const deadline = Date.now() + 30_000
  while (!existsSync(join(dir, 'started.txt')) && Date.now() < deadline) await sleep(20)
  t.ok(existsSync(join(dir, 'started.txt')), 'the slow request reached the app')

  write('v2')
  await until(url, 'v2 ')
  t.pass('the new server answers while the old one still has a request in flight')
  writeFileSync(join(dir, 'release.txt'), '')
  t.match(await slow, /^v1 \d+$/, 'the old server finished the request it had')
  const pids = p.descendants()
  t.equal((await p.stop()).code, 0)
  t.same(await stillRunning(pids), [], 'no child process is left')
})

t.test('--workers 2 --watch: every worker restarts with the new code', async (t) => {
  const { dir, write } = project(t)
  const p = startPostern(t, ['app.ts:app', '--port', '0', '--workers', '2', '--watch'], dir)
  const url = await serving(p)
  t.match(p.output(), /2 workers\) serving app\.ts:app/)
  const old = new Set<string>()
  for (let i = 0; i < 20 && old.size < 2; i++) old.add((await until(url, 'v1 ')).split(' ')[1]!)
  t.equal(old.size, 2, 'two workers answer')

  const mark = p.output().length
  write('v2')
  await serving(p, mark)
  const fresh = new Set<string>()
  for (let i = 0; i < 20 && fresh.size < 2; i++) fresh.add((await until(url, 'v2 ')).split(' ')[1]!)
  t.equal(fresh.size, 2, 'two new workers answer with the new code')
  t.same(
    [...fresh].filter((pid) => old.has(pid)),
    [],
    'none of the old workers',
  )

  const pids = p.descendants()
  t.ok(pids.length >= 3, 'a supervisor and its two workers')
  t.equal((await p.stop()).code, 0)
  t.same(await stillRunning(pids), [], 'no supervisor or worker is left')
})

t.test('--watch-path watches another folder too; a missing one is a usage error', async (t) => {
  const { dir } = project(t)
  mkdirSync(join(dir, 'server'))
  mkdirSync(join(dir, 'shared'))
  const message = (text: string) => writeFileSync(join(dir, 'shared', 'message.json'), JSON.stringify({ text }))
  message('hello')
  writeFileSync(
    join(dir, 'server', 'app.ts'),
    `import { readFileSync } from 'node:fs'
const { text } = JSON.parse(readFileSync(${JSON.stringify(join(dir, 'shared', 'message.json'))}, 'utf8')) as { text: string }
export const app = (_environ: unknown, startResponse: (status: string, headers: [string, string][]) => void) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']])
  return [text + ' ' + process.pid]
}
`,
  )
  const missing = startPostern(t, ['server/app.ts:app', '--port', '0', '--watch-path', 'nope'], dir)
  t.equal((await missing.exit).code, 2)
  t.equal(missing.output(), 'postern: --watch-path: no such folder: nope\n')
  const badOption = await runPostern(['server/app.ts:app', '--watch', '--health', 'healthz'], dir)
  t.equal(badOption.code, 2, 'a mistake in the call exits, as without --watch (no waiting for a change that cannot fix it)')
  t.match(badOption.stderr, /^postern: --health: /)

  const p = startPostern(t, ['server/app.ts:app', '--port', '0', '--watch-path', 'shared'], dir)
  const url = await serving(p)
  await until(url, 'hello ')
  message('bonjour')
  await until(url, 'bonjour ')
  t.match(p.output(), /^postern: shared\/message\.json changed; restarting$/m)
  t.equal((await p.stop()).code, 0)
})

t.test('a watcher killed with SIGKILL takes its server with it', async (t) => {
  const { dir } = project(t)
  const p = startPostern(t, ['app.ts:app', '--port', '0', '--watch'], dir)
  const url = await serving(p)
  await until(url, 'v1 ')
  const pids = p.descendants()
  t.ok(pids.length >= 1)
  p.child.kill('SIGKILL')
  await p.exit
  t.same(await stillRunning(pids, 15_000), [], 'the server noticed and stopped')
})

t.test('--help documents --watch and --watch-path', async (t) => {
  const r = await runPostern(['--help'])
  t.equal(r.code, 0)
  t.match(r.stdout, /^ {6}--watch {2,}for development: restart when a \.ts, \.js/m)
  t.match(r.stdout, /^ {6}--watch-path <dir> {2,}watch this folder too \(repeatable; implies --watch\)$/m)
  t.match(r.stdout, /SIGHUP {2,}.*with --watch: restart now/s)
})
