/**
 * Requests the server must refuse (RFC 9112, RFC 9110), each with its exact
 * status, `Connection: close` and the connection closed, while another
 * connection goes on being served. Malformed heads must never reach the app.
 */
import t from 'tap'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { expectRefused } from '../helpers/expect-error.js'
import { serve } from '../helpers/server.js'

/** `/ok` answers 200; anything else reads the body and answers 200 too, so an accepted bad request shows. */
function makeApp(calls: string[]): GatewayApp {
  return async (environ, startResponse) => {
    if (environ.PATH_INFO !== '/ok') {
      calls.push(`${environ.REQUEST_METHOD} ${environ.REQUEST_URI}`)
      await environ['gateway.input'].bytes()
    }
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return ['accepted']
  }
}

const H = 'Host: x\r\n'

interface Case {
  name: string
  bytes: string
  status: number
  /** The error is in the body, found only while the app reads it. */
  inBody?: boolean
}

const headCases: Case[] = [
  // Request line (RFC 9112 §3)
  { name: 'double space after method', bytes: `GET  / HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'double space before version', bytes: `GET /  HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'trailing space after version', bytes: `GET / HTTP/1.1 \r\n${H}\r\n`, status: 400 },
  { name: 'leading space', bytes: ` GET / HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'tab as separator', bytes: `GET\t/ HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'missing version', bytes: `GET /\r\n${H}\r\n`, status: 400 },
  { name: 'missing target', bytes: `GET HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'lowercase http/1.1', bytes: `GET / http/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'malformed version HTTP/1', bytes: `GET / HTTP/1\r\n${H}\r\n`, status: 400 },
  { name: 'malformed version HTTP/1.1.1', bytes: `GET / HTTP/1.1.1\r\n${H}\r\n`, status: 400 },
  { name: 'method with "(" ', bytes: `G(T / HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'method with "@"', bytes: `GE@T / HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'method with a control character', bytes: `GE\x01T / HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'garbage line', bytes: `BROKEN\r\n${H}\r\n`, status: 400 },
  { name: 'target not origin-form', bytes: `GET abc HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'control character in target', bytes: `GET /a\x01b HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'DEL in target', bytes: `GET /a\x7fb HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'NUL in target', bytes: `GET /a\x00b HTTP/1.1\r\n${H}\r\n`, status: 400 },
  // Line endings
  { name: 'bare LF line endings', bytes: `GET / HTTP/1.1\n${H.replace('\r\n', '\n')}\n`, status: 400 },
  { name: 'bare LF ending one header line', bytes: `GET / HTTP/1.1\r\n${H}X-A: 1\n\r\n`, status: 400 },
  { name: 'bare CR in request line', bytes: `GET /\r HTTP/1.1\r\n${H}\r\n`, status: 400 },
  // Header fields (RFC 9112 §5, RFC 9110 §5.5)
  { name: 'CR in header value', bytes: `GET / HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`, status: 400 },
  { name: 'NUL in header value', bytes: `GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, status: 400 },
  { name: 'control character in header value', bytes: `GET / HTTP/1.1\r\n${H}X-A: a\x07b\r\n\r\n`, status: 400 },
  { name: 'obs-fold', bytes: `GET / HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`, status: 400 },
  { name: 'obs-fold with tab', bytes: `GET / HTTP/1.1\r\n${H}X-A: a\r\n\tb\r\n\r\n`, status: 400 },
  { name: 'whitespace before the first header', bytes: `GET / HTTP/1.1\r\n ${H}\r\n`, status: 400 },
  { name: 'space before colon', bytes: `GET / HTTP/1.1\r\n${H}X-A : 1\r\n\r\n`, status: 400 },
  { name: 'tab before colon', bytes: `GET / HTTP/1.1\r\n${H}X-A\t: 1\r\n\r\n`, status: 400 },
  { name: 'header line without colon', bytes: `GET / HTTP/1.1\r\n${H}NoColon\r\n\r\n`, status: 400 },
  { name: 'empty header name', bytes: `GET / HTTP/1.1\r\n${H}: value\r\n\r\n`, status: 400 },
  { name: 'invalid character in header name', bytes: `GET / HTTP/1.1\r\n${H}X(A): 1\r\n\r\n`, status: 400 },
  { name: 'non-ASCII byte in header name', bytes: `GET / HTTP/1.1\r\n${H}X-\xe9: 1\r\n\r\n`, status: 400 },
  // Host (RFC 9112 §3.2)
  { name: 'missing Host on HTTP/1.1', bytes: `GET / HTTP/1.1\r\nX-A: 1\r\n\r\n`, status: 400 },
  { name: 'two Host headers', bytes: `GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, status: 400 },
  { name: 'two identical Host headers', bytes: `GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n`, status: 400 },
  { name: 'Host with a space inside', bytes: `GET / HTTP/1.1\r\nHost: a b\r\n\r\n`, status: 400 },
  { name: 'Host with userinfo', bytes: `GET / HTTP/1.1\r\nHost: user@evil.test\r\n\r\n`, status: 400 },
  { name: 'Host with a path', bytes: `GET / HTTP/1.1\r\nHost: a/b\r\n\r\n`, status: 400 },
  // Content-Length (RFC 9112 §6.3, RFC 9110 §8.6)
  { name: 'Content-Length and Transfer-Encoding together', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'two differing Content-Length headers', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, status: 400 },
  { name: 'Content-Length list "5, 6"', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 5, 6\r\n\r\nhello!`, status: 400 },
  { name: 'Content-Length "+5"', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, status: 400 },
  { name: 'Content-Length "5a"', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 5a\r\n\r\nhello`, status: 400 },
  { name: 'Content-Length "-1"', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\nhello`, status: 400 },
  { name: 'Content-Length empty', bytes: `POST / HTTP/1.1\r\n${H}Content-Length:\r\n\r\nhello`, status: 400 },
  { name: 'Content-Length "0x5"', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 0x5\r\n\r\nhello`, status: 400 },
  { name: 'Content-Length "5.0"', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 5.0\r\n\r\nhello`, status: 400 },
  { name: 'Content-Length "5 5"', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 5 5\r\n\r\nhello`, status: 400 },
  // Transfer-Encoding (RFC 9112 §6.1)
  { name: 'Transfer-Encoding on HTTP/1.0', bytes: `POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, status: 400 },
  { name: 'chunked not the final coding', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'chunked applied twice', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'CONNECT in authority form (a tunnel postern does not offer)', bytes: `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n`, status: 501 },
  { name: 'CONNECT with a path: still no tunnel, never a normal request', bytes: `CONNECT /x HTTP/1.1\r\n${H}\r\n`, status: 501 },
  { name: 'unknown transfer-coding gzip, chunked', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, status: 501 },
  // RFC 9112 §6.3 (4): in a request, chunked not final is a MUST-400, even for a coding the server does not know.
  { name: 'unknown transfer-coding alone (chunked not final)', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: compress\r\n\r\n`, status: 400 },
  // Version (RFC 9110 §15.6.6)
  { name: 'HTTP/2.0 request line', bytes: `GET / HTTP/2.0\r\n${H}\r\n`, status: 505 },
  { name: 'HTTP/3.0 request line', bytes: `GET / HTTP/3.0\r\n${H}\r\n`, status: 505 },
]

const bodyCases: Case[] = [
  { name: 'chunk size "zz"', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`, status: 400, inBody: true },
  {
    name: 'chunk size of 20 hex digits (overflow)',
    bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${'f'.repeat(20)}\r\nhello\r\n0\r\n\r\n`,
    status: 400,
    inBody: true,
  },
  { name: 'chunk size "0x5"', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n`, status: 400, inBody: true },
  { name: 'chunk size "-5"', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n`, status: 400, inBody: true },
  { name: 'empty chunk size line', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n`, status: 400, inBody: true },
  { name: 'chunk data longer than its size', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n`, status: 400, inBody: true },
  { name: 'chunk size line ended by bare LF', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n`, status: 400, inBody: true },
  { name: 'chunk data ended by bare LF', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n`, status: 400, inBody: true },
  { name: 'space inside chunk size', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5 5\r\nhello\r\n0\r\n\r\n`, status: 400, inBody: true },
  { name: 'malformed trailer line', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nno colon\r\n\r\n`, status: 400, inBody: true },
]

t.test('malformed request heads: refused before the app is called', async (t) => {
  const calls: string[] = []
  const s = await serve(t, makeApp(calls))
  for (const c of headCases) {
    calls.length = 0
    await expectRefused(t, s, c.bytes, c.status, c.name)
    t.same(calls, [], `${c.name}: app not called`)
  }
})

t.test('malformed chunked bodies: 400', async (t) => {
  const calls: string[] = []
  const s = await serve(t, makeApp(calls))
  for (const c of bodyCases) await expectRefused(t, s, c.bytes, c.status, c.name)
})

t.test('414: request target over maxTargetLength', async (t) => {
  const calls: string[] = []
  const s = await serve(t, makeApp(calls), { maxTargetLength: 64 })
  await expectRefused(t, s, `GET /${'a'.repeat(100)} HTTP/1.1\r\n${H}\r\n`, 414, 'long target')
  await expectRefused(t, s, `GET /${'a'.repeat(64)} HTTP/1.1\r\n${H}\r\n`, 414, 'target one byte over')
  // A target exactly at the limit is fine.
  const r = await s.exchange(`GET /${'a'.repeat(63)} HTTP/1.1\r\n${H}\r\n`)
  t.equal(r.responses[0]?.status, 200, `target of exactly maxTargetLength accepted: ${r.raw}`)
  t.same(calls.length, 1)
})

t.test('414 when a long target arrives in small pieces (no head end yet)', async (t) => {
  const s = await serve(t, makeApp([]), { maxTargetLength: 64 })
  const c = await s.connect()
  await c.writeSplit(`GET /${'a'.repeat(200)}`, [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10])
  const r = await c.read()
  t.equal(r.responses[0]?.status, 414, `refused without waiting for the line end: ${r.raw}`)
  t.ok(await c.closed())
})

t.test('431: more header fields than maxHeaderCount', async (t) => {
  const s = await serve(t, makeApp([]), { maxHeaderCount: 10 })
  let headers = H
  for (let i = 0; i < 12; i++) headers += `X-H${i}: ${i}\r\n`
  await expectRefused(t, s, `GET / HTTP/1.1\r\n${headers}\r\n`, 431, 'too many headers')
  let exactly = H
  for (let i = 0; i < 9; i++) exactly += `X-H${i}: ${i}\r\n`
  const r = await s.exchange(`GET /few HTTP/1.1\r\n${exactly}\r\n`)
  t.equal(r.responses[0]?.status, 200, `exactly maxHeaderCount fields accepted: ${r.raw}`)
  await expectRefused(t, s, `GET / HTTP/1.1\r\n${exactly}X-One-More: 1\r\n\r\n`, 431, 'one field over')
})

t.test('431: trailer fields count towards maxHeaderCount', async (t) => {
  const s = await serve(t, makeApp([]), { maxHeaderCount: 5 })
  let trailers = ''
  for (let i = 0; i < 4; i++) trailers += `X-T${i}: ${i}\r\n`
  // 3 header fields + 4 trailer fields = 7 fields in one request (options.ts: "trailers count too").
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nX-A: 1\r\n\r\n1\r\na\r\n0\r\n${trailers}\r\n`, 431, 'headers + trailers over the count')
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n${trailers}X-T4: 4\r\nX-T5: 5\r\n\r\n`, 431, 'trailers alone over the count')
})

t.test('431: header block over maxHeaderSize', async (t) => {
  const s = await serve(t, makeApp([]), { maxHeaderSize: 1024 })
  await expectRefused(t, s, `GET / HTTP/1.1\r\n${H}X-Big: ${'v'.repeat(2000)}\r\n\r\n`, 431, 'one big header')
  let many = H
  for (let i = 0; i < 40; i++) many += `X-H${i}: ${'v'.repeat(30)}\r\n`
  await expectRefused(t, s, `GET / HTTP/1.1\r\n${many}\r\n`, 431, 'many medium headers')
  const r = await s.exchange(`GET /small HTTP/1.1\r\n${H}X-Small: ${'v'.repeat(500)}\r\n\r\n`)
  t.equal(r.responses[0]?.status, 200, 'under the size accepted')
})

t.test('431 when an endless head trickles in without CRLFCRLF', async (t) => {
  const s = await serve(t, makeApp([]), { maxHeaderSize: 1024 })
  const c = await s.connect()
  c.write(`GET / HTTP/1.1\r\n${H}`)
  for (let i = 0; i < 20 && c.isOpen; i++) c.write(`X-H${i}: ${'v'.repeat(100)}\r\n`)
  const r = await c.read()
  t.equal(r.responses[0]?.status, 431, r.raw)
  t.ok(await c.closed())
})

t.test('414 when the request line alone is over maxHeaderSize', async (t) => {
  const s = await serve(t, makeApp([]), { maxHeaderSize: 256, maxTargetLength: 4096 })
  await expectRefused(t, s, `GET /${'a'.repeat(600)} HTTP/1.1\r\n${H}\r\n`, 414, 'request line over head size')
})

t.test('413: declared Content-Length over maxBodySize', async (t) => {
  const s = await serve(t, makeApp([]), { maxBodySize: 100 })
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Content-Length: 1000\r\n\r\n${'x'.repeat(1000)}`, 413, 'CL over limit')
  const c = await s.connect()
  // Refused from the head alone: the server need not wait for the body.
  c.write(`POST / HTTP/1.1\r\n${H}Content-Length: 1000000\r\n\r\n`)
  const r = await c.read()
  t.equal(r.responses[0]?.status, 413, `answered without the body: ${r.raw}`)
  t.ok(await c.closed())
})

t.test('413: chunked body growing over maxBodySize', async (t) => {
  const s = await serve(t, makeApp([]), { maxBodySize: 100 })
  const chunk = `32\r\n${'x'.repeat(50)}\r\n`
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${chunk}${chunk}${chunk}0\r\n\r\n`, 413, 'chunked over limit')
})

t.test('400: chunk extensions over maxChunkExtensionSize', async (t) => {
  const s = await serve(t, makeApp([]), { maxChunkExtensionSize: 64 })
  await expectRefused(t, s, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1;ext=${'e'.repeat(200)}\r\na\r\n0\r\n\r\n`, 400, 'long chunk extension')
})

t.test('error bodies do not echo the request', async (t) => {
  const s = await serve(t, makeApp([]))
  const r = await s.exchange(`GET / HTTP/1.1\r\n${H}X-A: <script>alert(1)</script>\r\n X\r\n\r\n`, { waitClose: true })
  t.equal(r.responses[0]?.status, 400, r.raw)
  t.notMatch(r.responses[0]?.body.toString() ?? '', /<script>/)
})
