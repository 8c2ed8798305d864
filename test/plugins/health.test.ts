/**
 * health() on real sockets, on postern's server and on node:http: GET and
 * HEAD on the path answer 200 `ok` (never cached), 503 `draining` while the
 * process drains, and every other request reaches the app.
 */
import t from 'tap'
import { health } from '../../plugins/health.js'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { header } from '../helpers/raw.js'
import { SERVERS, listen, rawRequest } from '../fixtures/proxy-client.js'

/** The app behind the middleware: says it was reached, and how. */
const app: GatewayApp = (environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']])
  return [`app ${environ.REQUEST_METHOD} ${environ.PATH_INFO}`]
}

for (const kind of SERVERS) {
  t.test(`${kind}: GET and HEAD on /healthz answer 200 ok`, async (t) => {
    const { port, errors } = await listen(t, kind, health()(app))
    const res = await fetch(`http://127.0.0.1:${port}/healthz`)
    t.equal(res.status, 200)
    t.equal(await res.text(), 'ok')
    t.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8')
    t.equal(res.headers.get('cache-control'), 'no-store', 'a cache between balancer and process must not answer for it')
    const withQuery = await fetch(`http://127.0.0.1:${port}/healthz?probe=kubelet`)
    t.equal(await withQuery.text(), 'ok', 'the query is ignored')

    const head = await rawRequest({ port, head: `HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}` })
    t.equal(head.status, 200)
    t.equal(head.body.length, 0, 'HEAD has no body')
    t.equal(header(head, 'content-length'), '2', "HEAD is framed as GET's answer")
    t.equal(header(head, 'cache-control'), 'no-store')
    t.same(errors, [])
  })

  t.test(`${kind}: everything else reaches the app`, async (t) => {
    const { port, errors } = await listen(t, kind, health()(app))
    const cases: Array<[method: string, path: string, body: string]> = [
      ['POST', '/healthz', 'app POST /healthz'],
      ['DELETE', '/healthz', 'app DELETE /healthz'],
      ['GET', '/healthz/', 'app GET /healthz/'],
      ['GET', '/healthzz', 'app GET /healthzz'],
      ['GET', '/', 'app GET /'],
      ['GET', '/HEALTHZ', 'app GET /HEALTHZ'],
    ]
    for (const [method, path, body] of cases) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { method })
      t.equal(res.status, 200, `${method} ${path}`)
      t.equal(await res.text(), body, `${method} ${path} reached the app`)
    }
    t.same(errors, [])
  })

  t.test(`${kind}: 503 draining while draining() is true, on a path of one's own`, async (t) => {
    let draining = false
    const { port, errors } = await listen(t, kind, health({ path: '/ready', draining: () => draining })(app))
    t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, 'the default path is not special any more')
    t.equal(await (await fetch(`http://127.0.0.1:${port}/healthz`)).text(), 'app GET /healthz')
    const ready = await fetch(`http://127.0.0.1:${port}/ready`)
    t.equal(ready.status, 200)
    t.equal(await ready.text(), 'ok')

    draining = true
    const drained = await fetch(`http://127.0.0.1:${port}/ready`)
    t.equal(drained.status, 503, 'a balancer stops routing here')
    t.equal(await drained.text(), 'draining')
    t.equal(drained.headers.get('cache-control'), 'no-store')
    const head = await rawRequest({ port, head: `HEAD /ready HTTP/1.1\r\nHost: 127.0.0.1:${port}` })
    t.equal(head.status, 503)
    t.equal(head.body.length, 0)
    const other = await fetch(`http://127.0.0.1:${port}/work`)
    t.equal(await other.text(), 'app GET /work', 'requests still in flight or arriving are served while draining')

    draining = false
    t.equal((await fetch(`http://127.0.0.1:${port}/ready`)).status, 200, 'back once draining() is false')
    t.same(errors, [])
  })
}

t.test('a bad path or draining option throws at construction', async (t) => {
  t.throws(() => health({ path: 'healthz' }), /must start with "\/"/)
  t.throws(() => health({ path: '/healthz?x=1' }), /must start with "\/"/)
  t.throws(() => health({ path: '/health z' }), /must start with "\/"/)
  t.throws(() => health({ draining: true as unknown as () => boolean }), /must be a function/)
  t.doesNotThrow(() => health({ path: '/-/health' }))
})
