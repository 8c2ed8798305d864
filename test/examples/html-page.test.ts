/**
 * examples/html-page.ts does what its doc comment says, over a real socket:
 * a page as HTML, a visit counter in a signed cookie (a forged counter starts
 * again), and a note posted through the form shown escaped; under validate(),
 * so the cookie middleware keeps the interface's rules.
 */
import t from 'tap'
import { app } from '../../examples/html-page.js'
import { serveValidated } from '../helpers/server.js'

t.test('the page counts visits in a signed cookie and lists posted notes, escaped', async (t) => {
  const { port, errors } = await serveValidated(t, app)
  const base = `http://127.0.0.1:${port}`

  const first = await fetch(`${base}/`)
  t.equal(first.status, 200)
  t.equal(first.headers.get('content-type'), 'text/html; charset=utf-8')
  const page = await first.text()
  t.match(page, '<p id="visits">Visit number 1</p>')
  t.match(page, '<p>No notes yet.</p>')
  t.match(page, '<form method="post" action="/notes">')
  const [setCookie] = first.headers.getSetCookie()
  t.match(setCookie, /^visits=1\.[^;]+; Max-Age=31536000; Path=\/; HttpOnly; SameSite=Lax$/)
  const cookie = setCookie!.split(';')[0]!

  const second = await fetch(`${base}/`, { headers: { cookie } })
  t.match(await second.text(), 'Visit number 2', 'the signed counter came back')
  const forged = await fetch(`${base}/`, { headers: { cookie: cookie.replace('visits=1', 'visits=99') } })
  t.match(await forged.text(), 'Visit number 1', 'a counter edited in the browser fails its signature')

  const posted = await fetch(`${base}/notes`, {
    method: 'POST',
    body: new URLSearchParams({ note: '<script>alert(1)</script> & "hi"' }),
    redirect: 'manual',
  })
  t.equal(posted.status, 303)
  t.equal(posted.headers.get('location'), '/')
  const after = await (await fetch(`${base}/`)).text()
  t.match(after, '<ul><li>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;hi&quot;</li></ul>')
  t.notMatch(after, '<script>')
  t.same(errors, [])
})
