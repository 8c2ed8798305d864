/**
 * A static site with an API beside it: the files of examples/public/
 * (index.html, style.css, app.js) are served at `/`, and `GET /api/hello`
 * is a route the page's script fetches. A path with no file falls through to
 * the routes, so the two never shadow each other.
 *
 * Serve it with `postern examples/static-site.ts:app`, or run this file
 * directly (`npx tsx examples/static-site.ts`) and open http://127.0.0.1:8888/.
 */
import { postern } from '../lib/framework/app.js'
import { serveStatic } from '../plugins/static.js'

export const app = postern()

// A file: URL finds the folder next to this file, whatever the working directory.
app.use(serveStatic(new URL('./public/', import.meta.url), { maxAge: '1m' }))

app.get('/api/hello', () => ({ message: 'Hello from the API!' }))

export default app

if (import.meta.url === `file://${process.argv[1]}`) {
  const { port } = await app.listen({ port: 8888 })
  console.log(`listening on http://127.0.0.1:${port}`)
}
