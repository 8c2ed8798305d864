/**
 * examples/static-site.ts as a browser loads it, over a real socket and
 * under validate(): the page, its stylesheet and script from
 * examples/public/, the API route the script calls, and the conditional
 * GET that makes a reload cheap.
 */
import t from 'tap'
import { app as site } from '../../examples/static-site.js'
import { serveValidated } from '../helpers/server.js'

t.test('examples/static-site.ts: the page, its style and script, the API it calls, and a conditional GET', async (t) => {
  const { port, errors } = await serveValidated(t, site)
  const url = (path: string) => `http://127.0.0.1:${port}${path}`
  const page = await fetch(url('/'))
  t.equal(page.status, 200)
  t.equal(page.headers.get('content-type'), 'text/html; charset=utf-8')
  const html = await page.text()
  t.match(html, /<link rel="stylesheet" href="style.css">/)
  t.match(html, /<script src="app.js" defer><\/script>/)
  const css = await fetch(url('/style.css'))
  t.equal(css.headers.get('content-type'), 'text/css; charset=utf-8')
  t.equal(css.headers.get('cache-control'), 'public, max-age=60')
  await css.text()
  const js = await fetch(url('/app.js'))
  t.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8')
  t.match(await js.text(), /fetch\('\/api\/hello'\)/)
  t.same(await (await fetch(url('/api/hello'))).json(), { message: 'Hello from the API!' })
  const again = await fetch(url('/style.css'), { headers: { 'If-None-Match': css.headers.get('etag')! } })
  t.equal(again.status, 304, 'the browser revalidates the stylesheet for free')
  const since = await fetch(url('/style.css'), { headers: { 'If-Modified-Since': css.headers.get('last-modified')! } })
  t.equal(since.status, 304)
  t.equal((await fetch(url('/missing.png'))).status, 404)
  t.same(errors, [])
})
