/**
 * A streamed answer's Content-Type (issue #11, defect 6): unless the handler
 * set one, it follows the stream's first chunk (a string is text, bytes are
 * bytes), decided without buffering the body. Over a real socket, through
 * validate(), so the late startResponse is checked against the interface.
 */
import t from 'tap'
import { postern } from '../../lib/framework/app.js'
import { GatewayError, type Body, type Chunk } from '../../lib/gateway/spec.js'
import { validate, type GatewayViolation } from '../../lib/gateway/validate.js'
import { inject } from '../../lib/gateway/inject.js'
import { text } from '../../plugins/text.js'
import { serve } from '../helpers/server.js'

const bytes = (s: string) => new TextEncoder().encode(s)

function streamingApp(log: string[]) {
  const app = postern()
  app.get('/strings', () =>
    (async function* () {
      yield 'one,'
      yield 'two'
    })(),
  )
  app.get('/bytes', () =>
    (async function* () {
      yield bytes('one,')
      yield bytes('two')
    })(),
  )
  app.get('/html', (_req, reply) => {
    reply.type('text/html; charset=utf-8')
    return (async function* () {
      yield '<p>'
      yield 'hi</p>'
    })()
  })
  app.get('/sync', () =>
    (function* () {
      yield 'a'
      yield 'b'
    })(),
  )
  app.get('/empty', () => (async function* () {})())
  app.get('/fails-first', () =>
    (async function* () {
      throw new Error('internal detail')
    })(),
  )
  app.get('/teapot-first', () =>
    (async function* () {
      throw new GatewayError(418, 'short and stout')
    })(),
  )
  app.get('/fails-later', () =>
    (async function* () {
      yield 'partial,'
      throw new Error('mid-stream')
    })(),
  )
  app.get('/endless', () =>
    (async function* () {
      try {
        for (;;) {
          yield 'x'.repeat(16384)
          await new Promise((resolve) => setTimeout(resolve, 1))
        }
      } finally {
        log.push('endless closed')
      }
    })(),
  )
  return app
}

t.test('a stream with no Content-Type set takes the type of its first chunk', async (t) => {
  const log: string[] = []
  const app = streamingApp(log)
  await app.ready()
  const violations: string[] = []
  const { port, errors } = await serve(t, validate(app, { onViolation: (v: GatewayViolation) => void violations.push(v.message) }))
  const base = `http://127.0.0.1:${port}`

  const s = await fetch(`${base}/strings`)
  t.equal(s.status, 200)
  t.equal(s.headers.get('content-type'), 'text/plain; charset=utf-8', 'strings → text')
  t.equal(await s.text(), 'one,two')

  const b = await fetch(`${base}/bytes`)
  t.equal(b.headers.get('content-type'), 'application/octet-stream', 'bytes → octet-stream')
  t.equal(await b.text(), 'one,two')

  const h = await fetch(`${base}/html`)
  t.equal(h.headers.get('content-type'), 'text/html; charset=utf-8', 'reply.type() wins')
  t.equal(await h.text(), '<p>hi</p>')

  const y = await fetch(`${base}/sync`)
  t.equal(y.headers.get('content-type'), 'text/plain; charset=utf-8', 'a sync iterable of strings → text')
  t.equal(y.headers.get('content-length'), '2', 'a sync body is still gathered, its length known')
  t.equal(await y.text(), 'ab')

  const e = await fetch(`${base}/empty`)
  t.equal(e.status, 200)
  t.equal(e.headers.get('content-type'), 'application/octet-stream', 'an empty stream has no first chunk: octet-stream')
  t.equal(await e.text(), '')

  const f = await fetch(`${base}/fails-first`)
  t.equal(f.status, 500, 'a throw before the first chunk is still an error answer')
  t.equal(f.headers.get('content-type'), 'application/json; charset=utf-8', "…answered by the framework's error path, not the server's plain text")
  t.same(await f.json(), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' }, 'a 5xx message is not shown')

  const tp = await fetch(`${base}/teapot-first`)
  t.equal(tp.status, 418, "…with the error's own status")
  t.same(await tp.json(), { statusCode: 418, error: "I'm a Teapot", message: 'short and stout' })

  const l = await fetch(`${base}/fails-later`)
  t.equal(l.status, 200, 'the response had started')
  t.equal(l.headers.get('content-type'), 'text/plain; charset=utf-8')
  await t.rejects(l.text(), 'a throw after the first chunk cuts the response')

  const controller = new AbortController()
  const n = await fetch(`${base}/endless`, { signal: controller.signal })
  t.equal(n.headers.get('content-type'), 'text/plain; charset=utf-8')
  const reader = n.body!.getReader()
  await reader.read()
  controller.abort()
  for (let i = 0; i < 200 && log.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(log, ['endless closed'], "the generator's return() runs when the client leaves")

  t.same(violations, [], 'no gateway rule broken')
  t.ok(errors.some((m) => m.includes('internal detail')))
})

t.test('the stream is not buffered: startResponse comes with the first chunk, close() is passed on', async (t) => {
  const events: string[] = []
  const source = {
    [Symbol.asyncIterator]() {
      let i = 0
      return {
        async next(): Promise<IteratorResult<Chunk>> {
          events.push(`next ${i}`)
          return i < 2 ? { done: false, value: `c${i++}` } : { done: true, value: undefined }
        },
      }
    },
    close() {
      events.push('close')
    },
  }
  const app = text(() => source)
  const body = app({} as never, (status, headers) => {
    events.push(`start ${status} ${JSON.stringify(headers)}`)
    return () => {}
  }) as Body
  t.same(events, [], 'nothing pulled, nothing started before the server iterates')
  const chunks: Chunk[] = []
  for await (const chunk of body as AsyncIterable<Chunk>) chunks.push(chunk)
  await body.close?.()
  t.same(chunks, ['c0', 'c1'])
  t.same(events, ['next 0', 'start 200 OK [["content-type","text/plain; charset=utf-8"]]', 'next 1', 'next 2', 'close'])

  const r = await inject(text(() => (async function* () {})()))
  t.equal(r.headers['content-type'], 'application/octet-stream')
  t.equal(r.body, '')
})

t.test('an onSend hook that swaps the stream for a string: the type follows the string', async (t) => {
  const app = postern()
  app.addHook('onSend', () => 'replaced')
  app.get('/', () =>
    (async function* () {
      yield bytes('b')
    })(),
  )
  const r = await app.inject('/')
  t.equal(r.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(r.body, 'replaced')
})

t.test("a stream failing before its first chunk goes through the app's onError hooks and error handler", async (t) => {
  const app = postern()
  const seen: string[] = []
  app.addHook('onError', (_req, _reply, error) => {
    seen.push(`hook: ${(error as Error).message}`)
  })
  app.setErrorHandler((error, _req, reply) => {
    seen.push(`handler: ${(error as Error).message}`)
    reply.status(503)
    return { retry: true }
  })
  app.get('/async', () =>
    (async function* () {
      throw new Error('async first')
    })(),
  )
  app.get('/sync', () =>
    (function* () {
      throw new Error('sync first')
    })(),
  )
  const { port } = await serve(t, app)
  for (const path of ['async', 'sync']) {
    const r = await fetch(`http://127.0.0.1:${port}/${path}`)
    t.equal(r.status, 503, `${path}: the error handler's status`)
    t.same(await r.json(), { retry: true })
  }
  t.same(seen, ['hook: async first', 'handler: async first', 'hook: sync first', 'handler: sync first'])
})
