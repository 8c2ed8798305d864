/**
 * Returning the reply, Fastify's style (`return reply.code(201).send(x)`),
 * over a real socket on postern's server: the client gets what was given to
 * `send()`. It used to be serialized as the Reply object itself (a 500 with
 * "Converting circular structure to JSON" in the log).
 */
import t from 'tap'
import { postern } from '../../lib/framework/app.js'
import type { ErrorStream } from '../../lib/gateway/spec.js'
import { validate } from '../../lib/gateway/validate.js'
import { serve } from '../helpers/server.js'

function appWith(errors: string[]) {
  const app = postern()
  app.get('/created', (_req, reply) => reply.status(201).send({ ok: 1 }))
  app.get('/created-async', async (_req, reply) => reply.status(201).send({ ok: 2 }))
  app.get('/text', (_req, reply) => reply.type('text/plain; charset=utf-8').send('plain'))
  app.get('/redirect', (_req, reply) => reply.redirect('/x'))
  app.get('/redirect-async', async (_req, reply) => reply.redirect('/y', 301))
  app.get('/both', (_req, reply) => {
    reply.send('a')
    return 'b'
  })
  app.get('/both-same', (_req, reply) => {
    reply.send('same')
    return 'same'
  })
  const stream: ErrorStream = { write: (m) => void errors.push(m), flush() {} }
  return validate((environ, startResponse) => app({ ...environ, 'gateway.errors': stream }, startResponse))
}

t.test('a returned reply sends what was given to send()', async (t) => {
  const errors: string[] = []
  const { port } = await serve(t, appWith(errors))
  const base = `http://127.0.0.1:${port}`

  for (const [path, body] of [
    ['/created', { ok: 1 }],
    ['/created-async', { ok: 2 }],
  ] as const) {
    const res = await fetch(base + path)
    t.equal(res.status, 201, `${path}: the status set on the reply`)
    t.match(res.headers.get('content-type'), /^application\/json/, `${path}: JSON`)
    t.same(await res.json(), body, `${path}: the value given to send()`)
  }

  const text = await fetch(`${base}/text`)
  t.equal(text.status, 200)
  t.equal(text.headers.get('content-type'), 'text/plain; charset=utf-8')
  t.equal(await text.text(), 'plain')

  for (const [path, status, location] of [
    ['/redirect', 302, '/x'],
    ['/redirect-async', 301, '/y'],
  ] as const) {
    const res = await fetch(base + path, { redirect: 'manual' })
    t.equal(res.status, status, `${path}: the redirect status`)
    t.equal(res.headers.get('location'), location, `${path}: its Location`)
    t.equal(await res.text(), '', `${path}: no body`)
  }
  t.same(errors, [], 'nothing was logged: no circular JSON, no 500')
})

t.test('send() and a different returned value: send() wins, and the mistake is logged', async (t) => {
  const errors: string[] = []
  const { port } = await serve(t, appWith(errors))
  const both = await fetch(`http://127.0.0.1:${port}/both`)
  t.equal(both.status, 200)
  t.equal(await both.text(), 'a', "send()'s value is sent")
  t.equal(errors.length, 1, 'one message in the error log')
  t.match(errors[0], /GET \/both called reply\.send\(\) and also returned a value/)
  const same = await fetch(`http://127.0.0.1:${port}/both-same`)
  t.equal(await same.text(), 'same')
  t.equal(errors.length, 1, 'returning the value given to send() is no mistake')
})
