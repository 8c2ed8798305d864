/**
 * Request-smuggling shapes (RFC 9112 §6.1, §6.3, §11.2): wherever a front
 * proxy and this server could disagree on where a request ends, the server
 * must refuse rather than guess, and where the framing is unambiguous it must
 * follow it exactly — so the bytes after a body are the next request.
 */
import t from 'tap'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { expectRefused } from '../helpers/expect-error.js'
import { serve } from '../helpers/server.js'

/** Echoes method, path and the body it read; `/ok` is the bystander route. */
const app: GatewayApp = async (environ, startResponse) => {
  const body = await environ['gateway.input'].text()
  startResponse('200 OK', [['Content-Type', 'text/plain']])
  return [`${environ.REQUEST_METHOD} ${environ.PATH_INFO} [${body}]`]
}

const H = 'Host: x\r\n'

t.test('CL.TE: Content-Length and chunked together are refused', async (t) => {
  const s = await serve(t, app)
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`, 400, 'CL.TE')
  await expectRefused(
    t,
    s,
    `POST / HTTP/1.1\r\n${H}Content-Length: 35\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nX: y`,
    400,
    'CL.TE with smuggled request',
  )
})

t.test('TE.CL: chunked and Content-Length together are refused', async (t) => {
  const s = await serve(t, app)
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n`, 400, 'TE.CL')
})

t.test('obfuscated Transfer-Encoding is refused', async (t) => {
  const s = await serve(t, app)
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400, 'space before colon')
  // RFC 9112 §6.3 (4): chunked not the final coding in a request → 400, whatever the other coding.
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400, 'xchunked (chunked not final)')
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'duplicate TE: chunked twice')
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n`, 400, 'chunked then identity (chunked not final)')
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n`, 400, 'vertical tab before value')
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n ,identity\r\n\r\n0\r\n\r\n`, 400, 'folded TE')
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: "chunked"\r\n\r\n0\r\n\r\n`, 400, 'quoted coding (chunked not final)')
})

t.test('valid Transfer-Encoding spellings are accepted as chunked', async (t) => {
  const s = await serve(t, app)
  for (const [label, line] of [
    ['tab as OWS', 'Transfer-Encoding:\tchunked'],
    ['no OWS', 'Transfer-Encoding:chunked'],
    ['trailing OWS', 'Transfer-Encoding: chunked \t'],
    ['upper-case coding', 'Transfer-Encoding: CHUNKED'],
    ['mixed-case name', 'tRANSFER-eNCODING: Chunked'],
  ] as const) {
    const r = await s.exchange(`POST /te HTTP/1.1\r\n${H}${line}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)
    t.equal(r.responses[0]?.status, 200, `${label}: ${r.raw}`)
    t.equal(r.responses[0]?.body.toString(), 'POST /te [hello]', label)
  }
})

t.test('Transfer_Encoding (underscore) is just another field: Content-Length frames the body', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(`POST /u HTTP/1.1\r\n${H}Transfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\n${H}\r\n`, { responses: 2 })
  t.same(
    r.responses.map((x) => x.body.toString()),
    ['POST /u [hello]', 'GET /next []'],
    r.raw,
  )
})

t.test('Content-Length: 0 and bytes after it: they are the next request', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(`POST /first HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\nGET /second HTTP/1.1\r\n${H}\r\n`, { responses: 2 })
  t.same(
    r.responses.map((x) => [x.status, x.body.toString()]),
    [
      [200, 'POST /first []'],
      [200, 'GET /second []'],
    ],
    r.raw,
  )
})

t.test('bytes after a Content-Length body are the next request', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(`POST /first HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabcGET /second HTTP/1.1\r\n${H}\r\n`, { responses: 2 })
  t.same(
    r.responses.map((x) => x.body.toString()),
    ['POST /first [abc]', 'GET /second []'],
    r.raw,
  )
})

t.test('bytes after the last chunk and trailers are the next request', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(`POST /first HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\nGET /second HTTP/1.1\r\n${H}\r\n`, { responses: 2 })
  t.same(
    r.responses.map((x) => x.body.toString()),
    ['POST /first [abc]', 'GET /second []'],
    r.raw,
  )
})

t.test('a GET with a body: the body is the body, not a request', async (t) => {
  const s = await serve(t, app)
  const inner = `GET /inner HTTP/1.1\r\n${H}\r\n`
  const r = await s.exchange(`GET /outer HTTP/1.1\r\n${H}Content-Length: ${inner.length}\r\n\r\n${inner}`, { responses: 2 })
  t.equal(r.responses.length, 1, r.raw)
  t.equal(r.responses[0]?.body.toString(), `GET /outer [${inner}]`)
})

t.test('Content-Length with leading zeros is a plain decimal', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(`POST /z HTTP/1.1\r\n${H}Content-Length: 005\r\n\r\nhelloGET /next HTTP/1.1\r\n${H}\r\n`, { responses: 2 })
  t.same(
    r.responses.map((x) => x.body.toString()),
    ['POST /z [hello]', 'GET /next []'],
    r.raw,
  )
})

t.test('a Content-Length too large for a number is refused (413 over the limit, or 400)', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(`POST / HTTP/1.1\r\n${H}Content-Length: 99999999999999999999999999\r\n\r\n`, { waitClose: true })
  t.ok([400, 413].includes(r.responses[0]?.status ?? 0), `got ${r.raw}`)
  t.ok(r.closed)
})

t.test('chunk-size smuggling shapes are refused', async (t) => {
  const s = await serve(t, app)
  const pre = `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`
  await expectRefused(t, s, `${pre}5 \r\nhello\r\n0\r\n\r\n`, 400, 'trailing space after size')
  await expectRefused(t, s, `${pre} 5\r\nhello\r\n0\r\n\r\n`, 400, 'leading space before size')
  await expectRefused(t, s, `${pre}+5\r\nhello\r\n0\r\n\r\n`, 400, 'sign before size')
  await expectRefused(t, s, `${pre}5\rhello\r\n0\r\n\r\n`, 400, 'bare CR after size')
  await expectRefused(t, s, `${pre}10000000000000005\r\nhello\r\n0\r\n\r\n`, 400, 'size that wraps in 64 bits')
})

t.test('Content-Length with OWS around the value is the same length', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(`POST /w HTTP/1.1\r\n${H}Content-Length:\t 5 \t\r\n\r\nhelloGET /next HTTP/1.1\r\n${H}\r\n`, { responses: 2 })
  t.same(
    r.responses.map((x) => x.body.toString()),
    ['POST /w [hello]', 'GET /next []'],
    r.raw,
  )
})

t.test('two identical Content-Length fields frame the body once', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(`POST /d HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\n${H}\r\n`, { responses: 2 })
  // RFC 9110 §8.6 allows accepting identical values or refusing; either way no desync.
  if (r.responses[0]?.status === 400) t.ok(r.closed || r.responses.length === 1, 'refused and closed')
  else
    t.same(
      r.responses.map((x) => x.body.toString()),
      ['POST /d [hello]', 'GET /next []'],
      r.raw,
    )
})
