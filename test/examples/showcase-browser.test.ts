/**
 * examples/showcase.ts in a real browser (headless Chromium, the Debian
 * package, driven by playwright-core): the page renders from `html`, its
 * stylesheet applies, its script calls the API on a second origin with
 * `fetch` (CORS, credentials) and counts visits in a signed cookie, the page
 * comes compressed, and a reload revalidates the stylesheet (304). The same
 * app is served twice on postern's server: the page's port and the API's
 * port are two origins of one site, as a front end and its API often are.
 * A screenshot goes to test/artifacts/ (ignored by git).
 */
import { existsSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { chromium, type Browser } from 'playwright-core'
import { app } from '../../examples/showcase.js'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { serve } from '../helpers/server.js'

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path)) ?? null
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))

/** One response as the server sent it. */
interface Seen {
  method: string
  path: string
  status: number
  headers: Record<string, string>
}

/** Records what the app answered, status and headers, in front of it. */
function recorded(inner: GatewayApp, log: Seen[]): GatewayApp {
  return (environ, startResponse) =>
    inner(environ, (status, headers, error) => {
      const names: Record<string, string> = {}
      for (const [name, value] of headers) names[name.toLowerCase()] = value
      log.push({ method: environ.REQUEST_METHOD, path: environ.PATH_INFO, status: Number.parseInt(status, 10), headers: names })
      return startResponse(status, headers, error)
    })
}

const skip = CHROMIUM === null && process.env['CI'] === undefined ? 'Chromium is not installed (apt-get install chromium)' : false

t.test('the showcase page in headless Chromium', { skip }, async (t) => {
  if (CHROMIUM === null) {
    t.fail('Chromium is required in CI: install the Debian package chromium (.ci/run does)')
    return
  }
  await app.ready()
  const pageLog: Seen[] = []
  const apiLog: Seen[] = []
  const site = await serve(t, recorded(app, pageLog))
  const api = await serve(t, recorded(app, apiLog))
  const pageOrigin = `http://localhost:${site.port}`
  const apiOrigin = `http://localhost:${api.port}`

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const consoleErrors: string[] = []
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text())
  })

  await page.goto(`${pageOrigin}/?api=${encodeURIComponent(apiOrigin)}`)
  await page.waitForSelector('#visits.done, #visits.failed', { timeout: 15_000 })
  t.equal(await page.textContent('#visits'), 'Visits: 1', 'the script called the API on the other origin')
  t.equal(await page.textContent('#api'), `API at ${apiOrigin}, called from ${pageOrigin}`)
  t.equal(await page.evaluate<string>("getComputedStyle(document.querySelector('h1')).color"), 'rgb(0, 102, 204)', 'the static stylesheet applies')
  t.match(await page.textContent('body'), 'so <b>this</b> is shown as typed', 'interpolated text is escaped, not markup')

  await page.reload()
  await page.waitForSelector('#visits.done, #visits.failed', { timeout: 15_000 })
  t.equal(await page.textContent('#visits'), 'Visits: 2', 'the signed cookie went with the credentialed cross-origin fetch')
  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: `${ARTIFACTS}showcase.png`, fullPage: true })
  t.same(consoleErrors, [], 'no error in the page')

  const pages = pageLog.filter((s) => s.path === '/')
  t.equal(pages.length, 2)
  for (const p of pages) {
    t.equal(p.status, 200)
    t.equal(p.headers['content-type'], 'text/html; charset=utf-8')
    t.ok(['br', 'gzip'].includes(p.headers['content-encoding'] ?? ''), `the page came compressed (${p.headers['content-encoding']})`)
    t.match(p.headers.vary ?? '', /Accept-Encoding/i)
  }
  const styles = pageLog.filter((s) => s.path === '/assets/style.css')
  t.same(
    styles.map((s) => s.status),
    [200, 304],
    'the stylesheet was fetched, then revalidated on reload (If-None-Match → 304)',
  )
  t.ok(styles[0]!.headers.etag, 'it has an ETag')

  const calls = apiLog.filter((s) => s.path === '/api/visit' && s.method === 'GET')
  t.equal(calls.length, 2)
  for (const call of calls) {
    t.equal(call.headers['access-control-allow-origin'], pageOrigin, 'the page origin is echoed, not *')
    t.equal(call.headers['access-control-allow-credentials'], 'true')
    t.match(call.headers.vary ?? '', /Origin/)
  }
  t.same(site.errors, [])
  t.same(api.errors, [])
})

t.test('the showcase page is gzip-compressed for a client that asks for gzip only', async (t) => {
  await app.ready()
  const site = await serve(t, app)
  const r = await fetch(`http://127.0.0.1:${site.port}/`, { headers: { 'accept-encoding': 'gzip' } })
  t.equal(r.headers.get('content-encoding'), 'gzip')
  t.match(await r.text(), '<h1>postern</h1>', 'and decodes to the page')
  const css = await fetch(`http://127.0.0.1:${site.port}/assets/style.css`)
  const etag = css.headers.get('etag')
  t.ok(etag)
  const again = await fetch(`http://127.0.0.1:${site.port}/assets/style.css`, { headers: { 'if-none-match': etag! } })
  t.equal(again.status, 304, 'a conditional GET with the ETag is answered 304')
})
