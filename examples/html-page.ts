/**
 * A server-rendered page: a list of notes with a form to add one, and a
 * visit counter kept in a signed cookie. What you type is escaped by the
 * `html` tag, and a counter edited in the browser fails its signature and
 * starts again at 1.
 * Serve it with `postern examples/html-page.ts:app`, or run this file
 * directly (`npx tsx examples/html-page.ts`) to listen on :8888.
 */
import { cookies, html, postern } from '../lib/index.js'

export const app = postern()

// The first secret signs, all verify: put a new one first to rotate keys.
app.use(cookies({ secret: process.env.COOKIE_SECRET ?? 'change-me-in-production' }))

const notes: string[] = []

app.get('/', (req, reply) => {
  const seen = req.unsignCookie(req.cookies.visits)
  const visits = (seen.valid ? Number(seen.value) || 0 : 0) + 1
  reply.cookie('visits', String(visits), { signed: true, httpOnly: true, sameSite: 'lax', path: '/', maxAge: 365 * 24 * 3600 })
  return html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Notes</title></head>
<body>
  <h1>Notes</h1>
  <p id="visits">Visit number ${visits}</p>
  ${notes.length === 0 ? html`<p>No notes yet.</p>` : html`<ul>${notes.map((note) => html`<li>${note}</li>`)}</ul>`}
  <form method="post" action="/notes">
    <input name="note" maxlength="200" required>
    <button>Add</button>
  </form>
</body>
</html>`
})

app.post('/notes', async (req, reply) => {
  const note = (await req.form()).note
  if (typeof note === 'string' && note.trim() !== '') {
    notes.push(note.trim().slice(0, 200))
    if (notes.length > 50) notes.shift()
  }
  // 303: the browser follows with a GET, so reloading the page does not post again.
  return reply.redirect('/', 303)
})

export default app

if (import.meta.url === `file://${process.argv[1]}`) {
  const { port } = await app.listen({ port: 8888 })
  console.log(`listening on http://127.0.0.1:${port}`)
}
