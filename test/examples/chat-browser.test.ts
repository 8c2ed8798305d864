/**
 * examples/chat.ts in a real browser, on every server the issue names: the
 * `postern` command serves it on postern's server and on node:http
 * (`--server node`), and test/fixtures/chat-fetch-server.ts serves it
 * through `toFetch` on Bun.serve and on Deno.serve. Headless Chromium (the
 * Debian package, driven by playwright-core, launched once for the file)
 * opens the page three times, two in one room and one in another. What one
 * page of a room sends, both pages of that room show, and the page in the
 * other room does not; text stays text. SIGTERM closes the open sockets
 * with 1001 (each page shows it), the server exits 0 and leaves no process
 * behind. Bun or Deno is skipped only when its binary
 * (node_modules/.bin/bun, node_modules/.bin/deno) is missing.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { descendantsOf, startPostern, stillRunning, type Exit } from '../helpers/cli.js'
import { runtimeBinary } from '../fixtures/ws-scenarios.js'

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path)) ?? null
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))
const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url))
/** How long Bun or Deno may take from SIGTERM to its exit. */
const STOP_MS = 5_000

const skip = CHROMIUM === null && process.env['CI'] === undefined ? 'Chromium is not installed (apt-get install chromium)' : false

/** The chat served somewhere, seen from outside: its address, its output, its processes, and a SIGTERM. */
interface Served {
  url: string
  output(): string
  /** The server's process and every process it started. */
  pids(): number[]
  /** Sends SIGTERM and resolves how the process exited. */
  stop(): Promise<Exit>
}

/** The `postern` command serving the example on its own server or on node:http. */
async function servePostern(t: Test, server: 'postern' | 'node'): Promise<Served> {
  const postern = startPostern(t, ['examples/chat.ts:app', '--port', '0', '--server', server])
  const url = (await postern.waitFor(/serving .* on (\S+)/))[1]!.replace('127.0.0.1', 'localhost')
  return { url, output: postern.output, pids: () => [postern.pid, ...postern.descendants()], stop: postern.stop }
}

/** test/fixtures/chat-fetch-server.ts on Bun.serve or Deno.serve, through toFetch. */
async function serveRuntime(t: Test, binary: string, name: 'bun' | 'deno'): Promise<Served> {
  const entry = `${FIXTURES}chat-fetch-server.ts`
  const args = name === 'bun' ? ['run', entry] : ['run', '-A', '--quiet', '--unstable-sloppy-imports', '--no-lock', '--no-check', entry]
  const child = spawn(binary, args, { cwd: FIXTURES, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } })
  const exit = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const seen = new Set<number>([child.pid!])
  const pids = () => {
    for (const pid of descendantsOf(child.pid!)) seen.add(pid)
    return [...seen]
  }
  t.teardown(async () => {
    // A failed test must not leave the runtime (or anything it started) running.
    const all = pids()
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exit
    }
    for (const pid of await stillRunning(all, 0)) process.kill(pid, 'SIGKILL')
  })
  let out = ''
  const port = await new Promise<number>((resolve) => {
    const timer = setTimeout(() => resolve(0), 20_000)
    const onData = (d: Buffer) => {
      out += d.toString()
      const match = /^PORT (\d+)$/m.exec(out)
      if (match !== null) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    void exit.then(() => resolve(0))
  })
  if (port === 0) throw new Error(`${name} did not start: ${out.slice(0, 2000)}`)
  let stopping: Promise<Exit> | null = null
  const stop = () => {
    pids()
    if (stopping === null) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      // Bounded: a shutdown that waits on a socket nobody closes (Bun's server.stop() does) shows as SIGKILL, not as a hung file.
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_MS)
      stopping = exit.finally(() => clearTimeout(timer))
    }
    return stopping
  }
  return { url: `http://localhost:${port}`, output: () => out, pids, stop }
}

/** The messages a page shows, as text. */
function shown(page: Page): Promise<string[]> {
  return page.$$eval('#messages li', (items) => items.map((item) => item.textContent ?? ''))
}

/** Types into the page's form and sends it. */
async function say(page: Page, name: string, text: string): Promise<void> {
  await page.fill('#name', name)
  await page.fill('#text', text)
  await page.press('#text', 'Enter')
}

/** Waits until the page shows `count` messages. */
function showsCount(page: Page, count: number): Promise<unknown> {
  return page.waitForFunction(`document.querySelectorAll('#messages li').length >= ${count}`, undefined, { timeout: 10_000 })
}

/** The browser, launched once for every server; null when Chromium is missing. */
let browser: Browser | null = null
if (CHROMIUM !== null) {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(() => browser?.close())
}

const servers = [
  { name: 'postern’s server', key: 'postern', binary: null, serve: (t: Test) => servePostern(t, 'postern') },
  { name: 'node:http', key: 'node', binary: null, serve: (t: Test) => servePostern(t, 'node') },
  { name: 'Bun.serve through toFetch', key: 'bun', binary: runtimeBinary('bun'), serve: (t: Test, binary: string) => serveRuntime(t, binary, 'bun') },
  { name: 'Deno.serve through toFetch', key: 'deno', binary: runtimeBinary('deno'), serve: (t: Test, binary: string) => serveRuntime(t, binary, 'deno') },
] as const

for (const server of servers) {
  const runtimeMissing = server.key === 'bun' || server.key === 'deno' ? server.binary === null : false
  t.test(
    `on ${server.name}: two pages of one room talk; a page in another room hears nothing; SIGTERM closes with 1001`,
    { skip: skip || (runtimeMissing ? `${server.key} is not installed (node_modules/.bin/${server.key} is missing)` : false) },
    async (t) => {
      if (browser === null) {
        t.fail('Chromium is required in CI: install the Debian package chromium (.ci/run does)')
        return
      }
      const served = await server.serve(t, server.binary ?? '')
      const { url } = served

      // Each server gets its own browser context: no page, cache or socket is shared with the previous server's.
      const context = await browser.newContext()
      t.teardown(() => context.close())
      const pageErrors: string[] = []
      const newPage = async (room: string): Promise<Page> => {
        const page = await context.newPage()
        page.on('console', (message) => {
          if (message.type() === 'error') pageErrors.push(message.text())
        })
        page.on('pageerror', (error) => pageErrors.push(error.message))
        await page.goto(`${url}/?room=${room}`)
        await page.waitForSelector('#status.open', { timeout: 10_000 })
        return page
      }
      const [ann, bob, eve] = [await newPage('blue'), await newPage('blue'), await newPage('green')]
      t.equal(await ann.textContent('h1'), '#blue')
      t.equal(await eve.textContent('h1'), '#green')

      await say(ann, 'ann', 'hello bob')
      await showsCount(bob, 1)
      await showsCount(ann, 1)
      t.same(await shown(bob), ['ann: hello bob'], 'the other page of the room shows it')
      t.same(await shown(ann), ['ann: hello bob'], 'and the sender’s own page, once the server has it')

      await say(bob, 'bob', '<b>hi</b> ann')
      await showsCount(ann, 2)
      await showsCount(bob, 2)
      t.same(await shown(ann), ['ann: hello bob', 'bob: <b>hi</b> ann'], 'the other way too; markup in a message stays text')
      t.equal(await ann.$$eval('#messages b', (bold) => bold.length), 2, 'only the two names are bold')

      await say(eve, 'eve', 'anyone in green?')
      await showsCount(eve, 1)
      t.same(await shown(eve), ['eve: anyone in green?'], 'the green page saw nothing of blue')
      // The server handled eve's message before this one, and a socket delivers in order: had ann been sent eve's, it would show first.
      await say(bob, 'bob', 'still here')
      await showsCount(ann, 3)
      t.same(await shown(ann), ['ann: hello bob', 'bob: <b>hi</b> ann', 'bob: still here'], 'and blue nothing of green')
      mkdirSync(ARTIFACTS, { recursive: true })
      await ann.screenshot({ path: `${ARTIFACTS}chat-${server.key}.png`, fullPage: true })

      const pids = served.pids()
      const exit = await served.stop()
      t.same(exit, { code: 0, signal: null }, 'SIGTERM: exit 0')
      for (const page of [ann, bob, eve]) {
        await page.waitForSelector('#status.closed', { timeout: 10_000 })
        t.equal(await page.textContent('#status'), 'disconnected (1001)', 'the server went away: 1001')
      }
      t.same(await stillRunning(pids), [], 'no process is left')
      t.same(pageErrors, [], 'no error in the pages')
      if (server.key === 'bun' || server.key === 'deno') t.match(served.output(), /^STOPPED$/m, 'the sockets closed and the server stopped before the exit')
      t.notMatch(served.output(), /error|failed/i, 'nothing went wrong on the server')
    },
  )
}
