/**
 * The html tag and htmlApp() on real sockets, with no framework, on
 * postern's server and on node:http: interpolated values are escaped
 * (`<script>`, quotes, `&`), nested templates and raw() are not, a page goes
 * out as `text/html; charset=utf-8`, a streamed page arrives chunk by chunk,
 * and a plain string stays text.
 */
import net from 'node:net'
import t from 'tap'
import { escapeHtml, HTML_TYPE, Html, html, htmlApp, htmlFormat, htmlStream, MAX_ARRAY_DEPTH, raw, type HtmlValue } from '../../plugins/html.js'
import { SERVERS, listen, rawRequest } from '../fixtures/proxy-client.js'
import { header } from '../helpers/raw.js'

const hostile = `<script>alert("x")</script> & 'quoted'`

t.test('the tag escapes text and inserts markup', async (t) => {
  t.equal(escapeHtml(hostile), '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quoted&#39;')
  t.equal(html`<p title="${hostile}">${hostile}</p>`.html, `<p title="${escapeHtml(hostile)}">${escapeHtml(hostile)}</p>`)
  t.equal(html`<b>${'&amp;'}</b>`.html, '<b>&amp;amp;</b>', 'an entity in text is text: escaped again')
  t.equal(html`${0} ${1.5} ${-2n}`.html, '0 1.5 -2', 'numbers as they are')
  t.equal(html`[${null}${undefined}${false}${true}]`.html, '[]', 'null, undefined and booleans render nothing')
  t.equal(html`${''}`.html, '')
  const items = ['a<b', 'c&d']
  t.equal(html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`.html, '<ul><li>a&lt;b</li><li>c&amp;d</li></ul>', 'arrays of templates joined, no commas')
  t.equal(html`${['<', ['>', ['&']], 1]}`.html, '&lt;&gt;&amp;1', 'nested arrays flattened and escaped')
  t.equal(html`<div>${raw('<hr>')}${html`<i>${'<'}</i>`}</div>`.html, '<div><hr><i>&lt;</i></div>', 'raw and nested html are not escaped again')
  t.equal(html`${new Date(0) as unknown as string}`.html, escapeHtml(String(new Date(0))), 'other values as escaped text')
  t.equal(html`${{ toString: () => '<x>' } as unknown as string}`.html, '&lt;x&gt;')
  t.equal(String(html`<a>`), '<a>', 'an Html value is its markup as a string')
  t.ok(raw('x') instanceof Html)
  t.throws(() => html`${Promise.resolve('x') as unknown as string}`, { name: 'TypeError', message: /a promise was interpolated; await it/ })
  t.equal(html`line\nbreak ${'x'} \u00e9`.html, 'line\nbreak x \u00e9', 'escapes in the literal are cooked')
})

t.test('deeply nested or cyclic arrays are a TypeError, not a stack overflow', async (t) => {
  /** `depth` arrays, one inside the other, around `'x'`. */
  const nested = (depth: number): HtmlValue => {
    let value: HtmlValue = 'x'
    for (let i = 0; i < depth; i++) value = [value]
    return value
  }
  t.equal(MAX_ARRAY_DEPTH, 100)
  t.equal(html`<p>${nested(MAX_ARRAY_DEPTH)}</p>`.html, '<p>x</p>', 'as deep as the limit: rendered')
  t.throws(() => html`${nested(MAX_ARRAY_DEPTH + 1)}`, { name: 'TypeError', message: /arrays nested more than 100 deep/ })
  t.throws(() => html`${nested(20_000)}`, { name: 'TypeError', message: /arrays nested more than 100 deep/ }, '20,000 levels: no RangeError')
  const cycle: HtmlValue[] = ['a']
  cycle.push(cycle)
  t.throws(() => html`${cycle}`, { name: 'TypeError', message: /an array contains itself/ })
  const outer: HtmlValue[] = []
  const inner: HtmlValue[] = [outer]
  outer.push('b', [inner])
  t.throws(() => html`${outer}`, { name: 'TypeError', message: /an array contains itself/ }, 'a cycle through other arrays')
  const shared = ['<s>']
  t.equal(html`${[shared, [shared, shared]]}`.html, '&lt;s&gt;'.repeat(3), 'the same array twice is no cycle')
  const wide = Array.from({ length: 10_000 }, (_, i) => [i % 10])
  t.equal(html`${wide}`.html.length, 10_000, 'wide arrays have no limit')

  const chunks: string[] = []
  await t.rejects(
    (async () => {
      for await (const chunk of htmlStream([html`<ul>`, cycle])) chunks.push(chunk)
    })(),
    { name: 'TypeError', message: /an array contains itself/ },
    'a stream chunk too',
  )
  t.same(chunks, ['<ul>'], 'the chunks before it went out')
})

t.test('htmlFormat takes Html values and streams only', async (t) => {
  t.ok(htmlFormat.accepts(html`x`))
  t.ok(htmlFormat.accepts(htmlStream([])))
  t.notOk(htmlFormat.accepts('<p>x</p>'), 'a plain string is not HTML')
  t.notOk(htmlFormat.accepts({ html: '<p>' }), 'a look-alike object is not HTML')
  t.same(htmlFormat.serialize(html`<p>`, { status: 200, serializer: undefined }), { type: HTML_TYPE, payload: '<p>' })
})

const page = htmlApp((environ, reply) => {
  const query = new URLSearchParams(environ.QUERY_STRING)
  switch (environ.PATH_INFO) {
    case '/page': {
      const name = query.get('name') ?? 'world'
      return html`<!doctype html><title>Hi ${name}</title><p class="${name}">Hello, ${name}!</p>`
    }
    case '/stream':
      return htmlStream(
        (async function* () {
          yield html`<!doctype html><ul>`
          for (const item of ['<one>', 'two']) yield html`<li>${item}</li>`
          yield '& text'
          yield html`</ul>`
        })(),
      )
    case '/text':
      return '<p>not html</p>'
    case '/teapot':
      reply.status = 418
      reply.headers = [['x-kind', 'tea']]
      return html`<h1>I'm a teapot</h1>`
    case '/nothing':
      return undefined
    default:
      throw Object.assign(new Error('no such page'), { status: 404 })
  }
})

for (const kind of SERVERS) {
  t.test(`${kind}: a page renders with the right Content-Type and escaped input`, async (t) => {
    const { port, errors } = await listen(t, kind, page)
    const res = await fetch(`http://127.0.0.1:${port}/page?name=${encodeURIComponent(hostile)}`)
    t.equal(res.status, 200)
    t.equal(res.headers.get('content-type'), 'text/html; charset=utf-8')
    const body = await res.text()
    t.equal(body, `<!doctype html><title>Hi ${escapeHtml(hostile)}</title><p class="${escapeHtml(hostile)}">Hello, ${escapeHtml(hostile)}!</p>`)
    t.notMatch(body, '<script>', 'no script tag from the query')
    t.equal(res.headers.get('content-length'), String(Buffer.byteLength(body)), 'a one-chunk page has its length')

    const teapot = await fetch(`http://127.0.0.1:${port}/teapot`)
    t.equal(teapot.status, 418)
    t.equal(teapot.headers.get('content-type'), 'text/html; charset=utf-8')
    t.equal(teapot.headers.get('x-kind'), 'tea')
    t.equal(await teapot.text(), "<h1>I'm a teapot</h1>", 'the literal part is never escaped')
    t.same(errors, [])
  })

  t.test(`${kind}: a streamed page arrives whole, chunked, as HTML`, async (t) => {
    const { port, errors } = await listen(t, kind, page)
    const res = await rawRequest({ port, head: 'GET /stream HTTP/1.1\r\nHost: x' })
    t.equal(res.status, 200)
    t.equal(header(res, 'content-type'), 'text/html; charset=utf-8')
    t.equal(header(res, 'transfer-encoding'), 'chunked', 'streamed, not buffered')
    t.equal(res.body.toString(), '<!doctype html><ul><li>&lt;one&gt;</li><li>two</li>&amp; text</ul>')
    t.same(errors, [])
  })

  t.test(`${kind}: a plain string stays text; nothing is 204; errors keep their status`, async (t) => {
    const { port, errors } = await listen(t, kind, page)
    const text = await fetch(`http://127.0.0.1:${port}/text`)
    t.equal(text.headers.get('content-type'), 'text/plain; charset=utf-8')
    t.equal(await text.text(), '<p>not html</p>')
    t.equal((await fetch(`http://127.0.0.1:${port}/nothing`)).status, 204)
    const missing = await fetch(`http://127.0.0.1:${port}/missing`)
    t.equal(missing.status, 404)
    t.equal(await missing.text(), 'no such page')
    t.same(errors, [])
  })
}

for (const kind of SERVERS) {
  t.test(`${kind}: a streamed page whose client leaves ends its source (finally blocks run)`, async (t) => {
    let finished!: () => void
    const sourceEnded = new Promise<void>((resolve) => (finished = resolve))
    const endless = htmlApp(() =>
      htmlStream(
        (async function* () {
          try {
            for (let i = 0; ; i++) {
              yield html`<p>${i}</p>`
              await new Promise((resolve) => setImmediate(resolve))
            }
          } finally {
            finished()
          }
        })(),
      ),
    )
    const { port } = await listen(t, kind, endless)
    const socket = net.connect(port, '127.0.0.1')
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    const first = await new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString('latin1'))))
    t.match(first, /^HTTP\/1\.1 200 /)
    t.match(first, /content-type: text\/html; charset=utf-8/i)
    socket.destroy()
    await sourceEnded
    t.pass('the generator was returned when the client left')
  })
}
