/**
 * examples/chat.ts in a real browser: the `postern` command serves it, on
 * postern's server and on node:http (`--server node`), headless Chromium (the Debian package, driven by
 * playwright-core) opens the page three times, two in one room and one in
 * another. What one page of a room sends, both pages of that room show, and
 * the page in the other room does not; text stays text. SIGTERM closes the
 * open sockets with 1001 (each page shows it) and the command exits 0.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startPostern, stillRunning } from '../helpers/cli.js'

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path)) ?? null
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))

const skip = CHROMIUM === null && process.env['CI'] === undefined ? 'Chromium is not installed (apt-get install chromium)' : false

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

for (const server of ['postern', 'node'] as const) {
  t.test(
    `on ${server === 'node' ? 'node:http' : 'postern’s server'}: two pages of one room talk; a page in another room hears nothing; SIGTERM closes with 1001`,
    { skip },
    async (t) => {
      if (CHROMIUM === null) {
        t.fail('Chromium is required in CI: install the Debian package chromium (.ci/run does)')
        return
      }
      const postern = startPostern(t, ['examples/chat.ts:app', '--port', '0', '--server', server])
      const url = (await postern.waitFor(/serving .* on (\S+)/))[1]!.replace('127.0.0.1', 'localhost')

      const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
      t.teardown(() => browser.close())
      const pageErrors: string[] = []
      const newPage = async (room: string): Promise<Page> => {
        const page = await browser.newPage()
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
      await ann.screenshot({ path: `${ARTIFACTS}chat-${server}.png`, fullPage: true })

      const pids = postern.descendants()
      const exit = await postern.stop()
      t.same(exit, { code: 0, signal: null }, 'SIGTERM: exit 0')
      for (const page of [ann, bob, eve]) {
        await page.waitForSelector('#status.closed', { timeout: 10_000 })
        t.equal(await page.textContent('#status'), 'disconnected (1001)', 'the server went away: 1001')
      }
      t.same(await stillRunning(pids), [], 'no process is left')
      t.same(pageErrors, [], 'no error in the pages')
      t.notMatch(postern.output(), /error|failed/i, 'nothing went wrong on the server')
    },
  )
}
