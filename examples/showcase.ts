/**
 * Every plugin in one small app, as a browser meets it: a page rendered
 * with `html`, its stylesheet and script served as static files (ETag,
 * conditional GET), everything compressed, and a JSON API the script calls
 * with `fetch` from another origin, with CORS and a signed cookie counting
 * the visits.
 *
 * The page calls the API at its own origin, or at the one given as
 * `?api=http://localhost:8889` (the same app served on a second port is a
 * second origin, the case CORS is for). Serve it with
 * `postern examples/showcase.ts:app` and open http://localhost:8888/.
 */
import { cookies, html, postern } from '../lib/index.js'
import { compression } from '../plugins/compress.js'
import { cors } from '../plugins/cors.js'
import { serveStatic } from '../plugins/static.js'

export const app = postern()

app.use(compression())
// A page on any local port may call the API with its cookies (credentials): the origin is echoed, never `*`.
app.use(cors({ origin: /^http:\/\/(localhost|127\.0\.0\.1)(:\d+)?$/, credentials: true }))
app.use(cookies({ secret: process.env.COOKIE_SECRET ?? 'change-me-in-production' }))
app.use(serveStatic(new URL('./showcase/', import.meta.url), { prefix: '/assets' }))

app.get('/', () => {
  return html`<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>postern showcase</title>
  <link rel="icon" href="/assets/favicon.svg">
  <link rel="stylesheet" href="/assets/style.css">
  <script type="module" src="/assets/page.js"></script>
</head>
<body>
  <h1>postern</h1>
  <p>This page was rendered with <code>html\`…\`</code>, compressed on the way out, and styled by a static file.</p>
  <p id="visits" class="pending">Asking the API…</p>
  <p id="api"></p>
  <table>
    <caption>The plugins this page went through</caption>
    <tr><th>plugin</th><th>file</th><th>what it did here</th></tr>
    ${plugins.map(([name, file, what]) => html`<tr><td>${name}</td><td><code>${file}</code></td><td>${what}</td></tr>`)}
  </table>
  ${tips.map((tip) => html`<p class="tip">${tip}</p>`)}
</body>
</html>`
})

const plugins: ReadonlyArray<readonly [string, string, string]> = [
  ['compression', 'plugins/compress.ts', 'gzip or brotli, as your browser asked in Accept-Encoding'],
  ['cors', 'plugins/cors.ts', 'lets a page on another port call the API with its cookies'],
  ['cookies', 'plugins/cookies.ts', 'signs the visit counter, and checks it when it comes back'],
  ['serveStatic', 'plugins/static.ts', 'the stylesheet, the script and the icon, with ETags'],
  ['html', 'plugins/html.ts', 'this page, with everything interpolated escaped'],
]

/** A few words for the reader; the third shows the tag escaping: `<b>` there stays text. */
const tips = [
  'Every plugin here is gateway middleware: it works on postern’s server, on node:http and inside Bun or Deno.',
  'The visit counter lives in a signed cookie: edit it in the browser and the count starts again, since the signature no longer matches.',
  'Text you interpolate is escaped, so <b>this</b> is shown as typed, not as bold.',
  'Static files carry an ETag: a reload asks “If-None-Match” and gets a 304 with no body.',
]

app.get('/api/visit', (req, reply) => {
  const seen = req.unsignCookie(req.cookies.visits)
  const visits = (seen.valid ? Number(seen.value) || 0 : 0) + 1
  // SameSite=Lax: the API on another port of the same host is the same site, so the cookie goes with credentialed fetches.
  reply.cookie('visits', String(visits), { signed: true, httpOnly: true, sameSite: 'lax', path: '/' })
  return { visits, origin: req.header('origin') ?? null }
})

export default app
