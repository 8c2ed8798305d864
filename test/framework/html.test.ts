/**
 * HTML in the framework, over a real socket: returning an `html` template
 * renders a page (`text/html; charset=utf-8`), `reply.html()` sends a page
 * and can be returned, streamed pages, error and not-found pages, and a plain
 * string that stays text/plain.
 */
import t from 'tap'
import { postern } from '../../lib/framework/app.js'
import { html, htmlStream, raw } from '../../lib/index.js'
import { serve } from '../helpers/server.js'

const HTML = 'text/html; charset=utf-8'
const hostile = `<script>alert("pwned")</script>&'`
const escaped = '&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&amp;&#39;'

function pages() {
  const app = postern()
  app.get('/hello/:name', (req) => html`<h1 title="${req.params.name}">Hello, ${req.params.name}</h1>`)
  app.get('/list', (req) => {
    const items = String(req.query.items ?? '').split(',')
    return html`<ul>${items.map((item) => html`<li>${item}</li>`)}</ul>${raw('<hr>')}`
  })
  app.get('/reply-html', (_req, reply) => reply.status(201).html('<p>trusted markup</p>'))
  app.get('/reply-html-tag', async (req, reply) => reply.html(html`<p>${String(req.query.q)}</p>`))
  app.get('/reply-html-call', (_req, reply) => {
    reply.html(html`<p>sent</p>`)
  })
  app.get('/text', () => '<p>a string</p>')
  app.get('/json', () => ({ markup: '<p>' }))
  app.get('/stream', () =>
    htmlStream(
      (async function* () {
        yield html`<!doctype html><title>t</title><ol>`
        for (let i = 1; i <= 3; i++) yield html`<li>${i}</li>`
        yield html`</ol>`
      })(),
    ),
  )
  app.get('/fail', () => {
    throw Object.assign(new Error('teapot <here>'), { status: 418 })
  })
  app.setErrorHandler((error, _req, reply) => {
    reply.status((error as { status?: number }).status ?? 500)
    return html`<h1>Error</h1><p>${(error as Error).message}</p>`
  })
  app.setNotFoundHandler((req, reply) => reply.status(404).html(html`<h1>Not found: ${req.path}</h1>`))
  return app
}

t.test('returning an html template renders a page; interpolations are escaped', async (t) => {
  const { port, errors } = await serve(t, pages())
  const base = `http://127.0.0.1:${port}`
  const hello = await fetch(`${base}/hello/${encodeURIComponent(hostile)}`)
  t.equal(hello.status, 200)
  t.equal(hello.headers.get('content-type'), HTML)
  t.equal(await hello.text(), `<h1 title="${escaped}">Hello, ${escaped}</h1>`)

  const list = await fetch(`${base}/list?items=${encodeURIComponent('a&b,<c>')}`)
  t.equal(list.headers.get('content-type'), HTML)
  t.equal(await list.text(), '<ul><li>a&amp;b</li><li>&lt;c&gt;</li></ul><hr>')
  t.same(errors, [])
})

t.test('reply.html() sets the type and sends; returning the reply works', async (t) => {
  const { port, errors } = await serve(t, pages())
  const base = `http://127.0.0.1:${port}`
  const trusted = await fetch(`${base}/reply-html`)
  t.equal(trusted.status, 201)
  t.equal(trusted.headers.get('content-type'), HTML)
  t.equal(await trusted.text(), '<p>trusted markup</p>', 'a string given to reply.html() is markup')

  const tagged = await fetch(`${base}/reply-html-tag?q=${encodeURIComponent(hostile)}`)
  t.equal(tagged.headers.get('content-type'), HTML)
  t.equal(await tagged.text(), `<p>${escaped}</p>`)

  const called = await fetch(`${base}/reply-html-call`)
  t.equal(called.status, 200)
  t.equal(await called.text(), '<p>sent</p>', 'calling reply.html() without returning it sends too')
  t.same(errors, [])
})

t.test('a plain string stays text/plain and objects stay JSON', async (t) => {
  const { port } = await serve(t, pages())
  const text = await fetch(`http://127.0.0.1:${port}/text`)
  t.equal(text.headers.get('content-type'), 'text/plain; charset=utf-8')
  t.equal(await text.text(), '<p>a string</p>')
  const json = await fetch(`http://127.0.0.1:${port}/json`)
  t.match(json.headers.get('content-type'), /^application\/json/)
  t.same(await json.json(), { markup: '<p>' })
})

t.test('a streamed page, an error page and a not-found page are HTML', async (t) => {
  const { port, errors } = await serve(t, pages())
  const base = `http://127.0.0.1:${port}`
  const stream = await fetch(`${base}/stream`)
  t.equal(stream.headers.get('content-type'), HTML)
  t.equal(stream.headers.get('content-length'), null, 'streamed, not buffered')
  t.equal(await stream.text(), '<!doctype html><title>t</title><ol><li>1</li><li>2</li><li>3</li></ol>')

  const fail = await fetch(`${base}/fail`)
  t.equal(fail.status, 418)
  t.equal(fail.headers.get('content-type'), HTML)
  t.equal(await fail.text(), '<h1>Error</h1><p>teapot &lt;here&gt;</p>')

  const missing = await fetch(`${base}/no/${encodeURIComponent('<b>')}`)
  t.equal(missing.status, 404)
  t.equal(missing.headers.get('content-type'), HTML)
  t.equal(await missing.text(), '<h1>Not found: /no/&lt;b&gt;</h1>')
  t.same(errors, [])
})

t.test('an app format added in front still wins over the built-in HTML', async (t) => {
  const app = postern()
  app.addResponseFormat({
    name: 'shout',
    accepts: (value) => typeof value === 'object' && value !== null && 'html' in value,
    serialize: (value) => ({ type: 'text/x-shout', payload: String(value).toUpperCase() }),
  })
  app.get('/', () => html`<p>quiet</p>`)
  const r = await app.inject('/')
  t.equal(r.headers['content-type'], 'text/x-shout')
  t.equal(r.body, '<P>QUIET</P>')
})
