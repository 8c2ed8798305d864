/**
 * Static files in the framework, in one line:
 * `app.use(serveStatic(folder, { prefix: '/static' }))`. Files are served
 * beside the routes and never shadow one the folder has no file for; a
 * miss, another method or a path outside the prefix reaches the router
 * (and its 404).
 */
import { createHash } from 'node:crypto'
import t from 'tap'
import { postern } from '../../lib/framework/app.js'
import { serveStatic } from '../../plugins/static.js'
import { header, RawClient } from '../helpers/raw.js'
import { SERVERS, listen, rawRequest } from '../fixtures/proxy-client.js'
import { HAS_PROC_FD, INDEX, PLAIN, SECRET, eventually, fdCount, makeStaticFolder, openFilesUnder } from '../fixtures/static-folder.js'

const folder = makeStaticFolder(t)
const { root, base } = folder

/** An app with files under /static and routes beside and below that prefix. */
function withPrefix() {
  const app = postern()
  app.use(serveStatic(root, { prefix: '/static', maxAge: '1h' }))
  app.get('/', () => 'home route')
  app.get('/static/dynamic', () => ({ from: 'route' }))
  app.post('/static/upload', () => ({ uploaded: true }))
  app.get('/static/plain.txt/meta', () => 'meta route')
  app.get('/users/:id', (req) => ({ id: req.params.id }))
  return app
}

const get = (port: number, target: string, extra = '') => rawRequest({ port, head: `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1${extra}` })

for (const kind of SERVERS) {
  t.test(`${kind}: files under the prefix, routes everywhere else`, async (t) => {
    const { port, errors } = await listen(t, kind, withPrefix())
    const url = (path: string) => `http://127.0.0.1:${port}${path}`

    const css = await fetch(url('/static/style.css'))
    t.equal(css.status, 200)
    t.equal(css.headers.get('content-type'), 'text/css; charset=utf-8')
    t.equal(css.headers.get('cache-control'), 'public, max-age=3600')
    t.equal(await css.text(), 'body { color: red }\n')
    t.equal(await (await fetch(url('/static/'))).text(), INDEX, 'index.html for the folder')

    t.equal(await (await fetch(url('/'))).text(), 'home route')
    t.same(await (await fetch(url('/static/dynamic'))).json(), { from: 'route' }, 'a route under the prefix with no file is reached')
    t.same(await (await fetch(url('/static/upload'), { method: 'POST' })).json(), { uploaded: true }, 'POST under the prefix reaches the route')
    t.equal(await (await fetch(url('/static/plain.txt/meta'))).text(), 'meta route', 'a path below a file is no file')
    t.same(await (await fetch(url('/users/a%2Fb'))).json(), { id: 'a/b' })

    const missing = await fetch(url('/static/missing.txt'))
    t.equal(missing.status, 404, 'a miss gets the framework 404')
    t.same(await missing.json(), { statusCode: 404, error: 'Not Found', message: 'Route GET /static/missing.txt not found' })
    const post = await fetch(url('/static/style.css'), { method: 'POST' })
    t.equal(post.status, 404, 'POST to a file has no route')
    await post.arrayBuffer()

    const redirect = await get(port, '/static/sub?tab=2')
    t.equal(redirect.status, 301)
    t.equal(header(redirect, 'location'), '/static/sub/?tab=2')

    const etag = css.headers.get('etag')!
    const notModified = await get(port, '/static/style.css', `\r\nIf-None-Match: ${etag}`)
    t.equal(notModified.status, 304, 'conditional GET through the framework')
    t.equal(header(notModified, 'etag'), etag)
    const range = await get(port, '/static/plain.txt', '\r\nRange: bytes=0-4')
    t.equal(range.status, 206)
    t.equal(range.body.toString(), PLAIN.slice(0, 5))
    const head = await rawRequest({ port, head: 'HEAD /static/plain.txt HTTP/1.1\r\nHost: x' })
    t.equal(head.status, 200)
    t.equal(header(head, 'content-length'), String(Buffer.byteLength(PLAIN)))
    t.equal(head.body.length, 0)
    t.same(errors, [])
  })

  t.test(`${kind}: at the root, the folder and the routes share the URL space`, async (t) => {
    const app = postern()
    app.use(serveStatic(root))
    app.get('/api/hello', () => ({ hello: 'world' }))
    app.get('/sub/dynamic', () => 'dynamic under a folder')
    app.get('/plain.txt', () => 'the route')
    const { port, errors } = await listen(t, kind, app)
    t.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), INDEX)
    t.same(await (await fetch(`http://127.0.0.1:${port}/api/hello`)).json(), { hello: 'world' })
    t.equal(await (await fetch(`http://127.0.0.1:${port}/sub/dynamic`)).text(), 'dynamic under a folder')
    t.equal(await (await fetch(`http://127.0.0.1:${port}/plain.txt`)).text(), PLAIN, 'a file and a route on one path: the middleware, outermost, wins')
    t.same(errors, [])
  })

  t.test(`${kind}: hostile requests through the framework: refused, nothing leaked, no descriptor left`, async (t) => {
    const { port, errors } = await listen(t, kind, withPrefix())
    const baselineFds = HAS_PROC_FD ? fdCount() : 0
    const attempts: Array<[target: string, status: number]> = [
      ['/static/../../secret.txt', 403],
      ['/static/%2e%2e/%2e%2e/secret.txt', 403],
      ['/static/..%2f..%2fsecret.txt', 404],
      ['/static/link-out.txt', 404],
      ['/static/%00', 400],
      ['/static/.env', 404],
      ['/static/..\\..\\secret.txt', 403],
    ]
    for (const [target, status] of attempts) {
      const res = await get(port, target)
      t.equal(res.status, status, target)
      t.notOk(res.raw.toString('latin1').includes(SECRET), `${target}: no secret`)
      t.notOk(res.raw.toString('latin1').includes(base), `${target}: no path`)
    }
    for (let i = 0; i < 3; i++) {
      const client = await RawClient.connect(port)
      client.write('GET /static/big.bin HTTP/1.1\r\nHost: x\r\n\r\n')
      t.ok(await client.receivedText('\r\n\r\n'), 'the big file started')
      client.destroy()
    }
    if (HAS_PROC_FD) {
      t.ok(await eventually(() => openFilesUnder(base).length === 0), 'no file left open by clients that left')
      t.ok(await eventually(() => fdCount() <= baselineFds), `descriptors back to baseline ${baselineFds} (now ${fdCount()})`)
    }
    const whole = Buffer.from(await (await fetch(`http://127.0.0.1:${port}/static/big.bin`)).arrayBuffer())
    t.equal(createHash('sha256').update(whole).digest('hex'), folder.bigSha256, 'the 20 MB file arrives byte-identical after all that')
    t.same(errors, [])
  })
}

t.test('inject() serves files too', async (t) => {
  const app = withPrefix()
  const res = await app.inject({ url: '/static/plain.txt' })
  t.equal(res.status, 200)
  t.equal(res.body, PLAIN)
  t.equal(res.headers['content-type'], 'text/plain; charset=utf-8')
  const medium = await app.inject({ url: '/static/medium.bin' })
  t.equal(medium.headers['content-length'], String(folder.medium.length))
  const route = await app.inject({ url: '/static/dynamic' })
  t.same(route.json(), { from: 'route' })
})
