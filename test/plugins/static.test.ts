/**
 * serveStatic() and staticApp() on real sockets, with no framework, on
 * postern's server and on node:http: what a browser, curl and a cache rely
 * on (types, validators, 304/412, ranges, index files, redirects), what an
 * attacker tries (every way out of the folder), and that no file descriptor
 * outlives its response, whatever the client does.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { validate } from '../../lib/gateway/validate.js'
import { serveStatic, staticApp, type StaticOptions } from '../../plugins/static.js'
import { parseRange, MAX_RANGES } from '../../plugins/static/range.js'
import { refusalOf } from '../../plugins/static/lookup.js'
import { header, RawClient, type RawResponse } from '../helpers/raw.js'
import { sleep } from '../helpers/server.js'
import { SERVERS, listen, rawRequest } from '../fixtures/proxy-client.js'
import { HAS_PROC_FD, INDEX, PLAIN, SECRET, SUB_INDEX, eventually, fdCount, makeStaticFolder, openFilesUnder } from '../fixtures/static-folder.js'

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const folder = makeStaticFolder(t)
const { root, base } = folder

/** The app behind the middleware: says it was reached. */
const fallback: GatewayApp = (environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']])
  return [`app ${environ.REQUEST_METHOD} ${environ.PATH_INFO}`]
}

/** One raw request (so nothing normalizes the path); `extra` are header lines. */
function request(port: number, method: string, target: string, extra: Record<string, string> = {}): Promise<RawResponse> {
  const lines = Object.entries(extra).map(([name, value]) => `\r\n${name}: ${value}`)
  return rawRequest({ port, head: `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1${lines.join('')}` })
}

const get = (port: number, target: string, extra?: Record<string, string>) => request(port, 'GET', target, extra)

/** Nothing of the folder's location or the secret in what the client got. */
function leaksNothing(t: Test, res: RawResponse, what: string): void {
  const raw = res.raw.toString('latin1')
  t.notOk(raw.includes(SECRET), `${what}: the secret is not in the response`)
  t.notOk(raw.includes(base), `${what}: the folder's path is not in the response`)
  t.notOk(raw.includes('hunter2'), `${what}: no dotfile content`)
}

/** No descriptor on a file of the folder is left open (after the server's own closes settle). */
async function noOpenFiles(t: Test, what: string): Promise<void> {
  if (!HAS_PROC_FD) return
  const closed = await eventually(() => openFilesUnder(base).length === 0)
  t.ok(closed, `${what}: no file of the folder left open (${openFilesUnder(base).join(', ')})`)
}

const lastModified = (path: string) => new Date(Math.floor(statSync(join(root, path)).mtimeMs / 1000) * 1000).toUTCString()
const etagOf = (path: string) => {
  const s = statSync(join(root, path))
  return `W/"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}"`
}

for (const kind of SERVERS) {
  const serve = (t: Test, options?: StaticOptions) => listen(t, kind, serveStatic(root, options)(fallback))
  const serveApp = (t: Test, options?: StaticOptions) => listen(t, kind, staticApp(root, options))

  t.test(`${kind}: files are served with their type, length, validators and cache headers`, async (t) => {
    const { port, errors } = await serve(t)
    const types: Array<[path: string, type: string]> = [
      ['/index.html', 'text/html; charset=utf-8'],
      ['/style.css', 'text/css; charset=utf-8'],
      ['/app.js', 'text/javascript; charset=utf-8'],
      ['/data.json', 'application/json; charset=utf-8'],
      ['/plain.txt', 'text/plain; charset=utf-8'],
      ['/image.png', 'image/png'],
      ['/blob.unknownext', 'application/octet-stream'],
      ['/README', 'application/octet-stream'],
    ]
    for (const [path, type] of types) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`)
      t.equal(res.status, 200, path)
      t.equal(res.headers.get('content-type'), type, `${path} is ${type}`)
      t.equal(res.headers.get('x-content-type-options'), 'nosniff', `${path}: browsers must not guess another type`)
      t.equal(res.headers.get('accept-ranges'), 'bytes')
      t.equal(res.headers.get('cache-control'), 'public, max-age=0', 'default Cache-Control as serve-static')
      t.equal(res.headers.get('etag'), etagOf(path.slice(1)), 'weak ETag from size and mtime, as send')
      t.equal(res.headers.get('last-modified'), lastModified(path.slice(1)))
      const body = Buffer.from(await res.arrayBuffer())
      t.equal(res.headers.get('content-length'), String(body.length))
    }
    t.equal(await (await fetch(`http://127.0.0.1:${port}/plain.txt`)).text(), PLAIN, 'UTF-8 text arrives intact')
    const empty = await fetch(`http://127.0.0.1:${port}/empty.txt`)
    t.equal(empty.status, 200)
    t.equal(empty.headers.get('content-length'), '0')
    t.equal(await empty.text(), '')
    const medium = await fetch(`http://127.0.0.1:${port}/medium.bin`)
    t.ok(Buffer.from(await medium.arrayBuffer()).equals(folder.medium), 'a streamed file (over 64 KiB) arrives byte-identical')
    t.same(errors, [])
    await noOpenFiles(t, 'after GETs')
  })

  t.test(`${kind}: HEAD has GET's headers and no body`, async (t) => {
    const { port, errors } = await serve(t)
    for (const path of ['/plain.txt', '/medium.bin', '/']) {
      const head = await request(port, 'HEAD', path)
      const full = await get(port, path)
      t.equal(head.status, 200, path)
      t.equal(head.body.length, 0)
      for (const name of ['content-type', 'content-length', 'etag', 'last-modified', 'cache-control', 'accept-ranges']) {
        t.equal(header(head, name), header(full, name), `${path}: HEAD ${name} as GET`)
      }
    }
    const range = await request(port, 'HEAD', '/plain.txt', { Range: 'bytes=0-1' })
    t.equal(range.status, 200, 'Range applies to GET only (RFC 9110 §14.2)')
    t.same(errors, [])
    await noOpenFiles(t, 'after HEADs')
  })

  t.test(`${kind}: as middleware, anything it has no file for reaches the app`, async (t) => {
    const { port, errors } = await serve(t, { prefix: '/static' })
    const cases: Array<[method: string, target: string, body: string]> = [
      ['GET', '/static/missing.txt', 'app GET /static/missing.txt'],
      ['GET', '/static/sub/missing', 'app GET /static/sub/missing'],
      ['POST', '/static/plain.txt', 'app POST /static/plain.txt'],
      ['DELETE', '/static/plain.txt', 'app DELETE /static/plain.txt'],
      ['OPTIONS', '/static/plain.txt', 'app OPTIONS /static/plain.txt'],
      ['GET', '/plain.txt', 'app GET /plain.txt'],
      ['GET', '/staticplain.txt', 'app GET /staticplain.txt'],
      ['GET', '/static/empty-dir/', 'app GET /static/empty-dir/'],
      ['GET', '/static/empty-dir', 'app GET /static/empty-dir'],
      ['GET', '/static/plain.txt/', 'app GET /static/plain.txt/'],
      ['GET', '/static/.env', 'app GET /static/.env'],
      ['GET', '/', 'app GET /'],
    ]
    for (const [method, target, body] of cases) {
      const res = await request(port, method, target)
      t.equal(res.status, 200, `${method} ${target}`)
      t.equal(res.body.toString(), body, `${method} ${target} reached the app`)
    }
    const file = await get(port, '/static/plain.txt')
    t.equal(file.body.toString(), PLAIN, 'files under the prefix are served')
    const withQuery = await get(port, '/static/plain.txt?v=3')
    t.equal(withQuery.body.toString(), PLAIN, 'the query does not change the file')
    t.same(errors, [])
  })

  t.test(`${kind}: as an app, a miss is 404 and other methods 405`, async (t) => {
    const { port, errors } = await serveApp(t, { prefix: '/files' })
    const missing = await get(port, '/files/missing.txt')
    t.equal(missing.status, 404)
    t.equal(missing.body.toString(), 'Not Found')
    t.equal(header(missing, 'content-type'), 'text/plain; charset=utf-8')
    t.equal((await get(port, '/elsewhere')).status, 404, 'outside the prefix')
    t.equal((await get(port, '/files/.env')).status, 404, 'an ignored dotfile is as absent')
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const res = await request(port, method, '/files/plain.txt')
      t.equal(res.status, 405, method)
      t.equal(header(res, 'allow'), 'GET, HEAD')
    }
    t.equal((await get(port, '/files/plain.txt')).body.toString(), PLAIN)
    t.same(errors, [])
  })

  t.test(`${kind}: conditional GET: 304 and 412 as RFC 9110 §13.2.2 orders them`, async (t) => {
    const { port, errors } = await serve(t)
    const etag = etagOf('style.css')
    const modified = lastModified('style.css')
    const earlier = new Date(Date.parse(modified) - 60_000).toUTCString()
    const later = new Date(Date.parse(modified) + 60_000).toUTCString()
    const cases: Array<[label: string, headers: Record<string, string>, status: number]> = [
      ['If-None-Match: the ETag', { 'If-None-Match': etag }, 304],
      ['If-None-Match: a list holding it', { 'If-None-Match': `"nope", ${etag}, "other"` }, 304],
      ['If-None-Match: its strong form (weak comparison)', { 'If-None-Match': etag.slice(2) }, 304],
      ['If-None-Match: *', { 'If-None-Match': '*' }, 304],
      ['If-None-Match: another tag', { 'If-None-Match': '"other"' }, 200],
      ['If-None-Match: malformed', { 'If-None-Match': 'not-a-tag' }, 200],
      ['If-Modified-Since: the Last-Modified', { 'If-Modified-Since': modified }, 304],
      ['If-Modified-Since: later', { 'If-Modified-Since': later }, 304],
      ['If-Modified-Since: earlier', { 'If-Modified-Since': earlier }, 200],
      ['If-Modified-Since: not a date', { 'If-Modified-Since': 'yesterday-ish' }, 200],
      ['If-Modified-Since is ignored beside If-None-Match', { 'If-None-Match': '"other"', 'If-Modified-Since': later }, 200],
      ['If-Match: *', { 'If-Match': '*' }, 200],
      ['If-Match: another tag', { 'If-Match': '"other"' }, 412],
      ['If-Match: the weak ETag (strong comparison never matches a weak tag)', { 'If-Match': etag }, 412],
      ['If-Unmodified-Since: later', { 'If-Unmodified-Since': later }, 200],
      ['If-Unmodified-Since: the Last-Modified', { 'If-Unmodified-Since': modified }, 200],
      ['If-Unmodified-Since: earlier', { 'If-Unmodified-Since': earlier }, 412],
      ['If-Unmodified-Since: not a date', { 'If-Unmodified-Since': 'soon' }, 200],
      ['If-Unmodified-Since is ignored beside If-Match', { 'If-Match': '*', 'If-Unmodified-Since': earlier }, 200],
      ['412 comes before 304', { 'If-Match': '"other"', 'If-None-Match': etag }, 412],
    ]
    for (const [label, headers, status] of cases) {
      for (const method of ['GET', 'HEAD']) {
        const res = await request(port, method, '/style.css', headers)
        t.equal(res.status, status, `${method} ${label}`)
        if (status === 304) {
          t.equal(res.body.length, 0)
          t.equal(header(res, 'etag'), etag, '304 repeats the validators')
          t.equal(header(res, 'last-modified'), modified)
          t.equal(header(res, 'cache-control'), 'public, max-age=0')
          t.equal(header(res, 'content-type'), undefined, 'a 304 describes no new body')
        }
        if (status === 412 && method === 'GET') t.equal(res.body.toString(), 'Precondition Failed')
      }
    }
    t.same(errors, [])
    await noOpenFiles(t, 'after 304s and 412s')
  })

  t.test(`${kind}: Range: 206, suffix and open ranges, 416, and what is ignored`, async (t) => {
    const { port, errors } = await serve(t)
    const text = Buffer.from(PLAIN)
    const size = text.length
    const ranged = async (range: string, extra: Record<string, string> = {}, path = '/plain.txt') => get(port, path, { Range: range, ...extra })

    const first = await ranged('bytes=0-4')
    t.equal(first.status, 206)
    t.equal(first.body.toString(), PLAIN.slice(0, 5))
    t.equal(header(first, 'content-range'), `bytes 0-4/${size}`)
    t.equal(header(first, 'content-length'), '5')
    t.equal(header(first, 'content-type'), 'text/plain; charset=utf-8')
    t.equal(header(first, 'etag'), etagOf('plain.txt'))

    const suffix = await ranged('bytes=-5')
    t.equal(suffix.status, 206)
    t.ok(suffix.body.equals(text.subarray(size - 5)), 'the last 5 bytes')
    t.equal(header(suffix, 'content-range'), `bytes ${size - 5}-${size - 1}/${size}`)

    const open = await ranged('bytes=6-')
    t.ok(open.body.equals(text.subarray(6)), 'from byte 6 to the end')
    t.equal(header(open, 'content-range'), `bytes 6-${size - 1}/${size}`)

    const clamped = await ranged('bytes=3-100000')
    t.equal(header(clamped, 'content-range'), `bytes 3-${size - 1}/${size}`, 'a last-pos past the end is the end')
    const longSuffix = await ranged('bytes=-100000')
    t.equal(header(longSuffix, 'content-range'), `bytes 0-${size - 1}/${size}`, 'a suffix longer than the file is the file')
    const merged = await ranged('bytes=0-3, 2-7,,8-9')
    t.equal(merged.status, 206, 'overlapping and adjacent ranges coalesce into one')
    t.equal(header(merged, 'content-range'), `bytes 0-9/${size}`)
    t.ok(merged.body.equals(text.subarray(0, 10)))
    const upper = await ranged('BYTES = 0-1')
    t.equal(upper.status, 206, 'the unit is case-insensitive')

    for (const range of [`bytes=${size}-`, 'bytes=100000-200000', 'bytes=-0', `bytes=${size}-${size + 5}, -0`]) {
      const res = await ranged(range)
      t.equal(res.status, 416, `${range}: no byte of it exists`)
      t.equal(header(res, 'content-range'), `bytes */${size}`)
      t.equal(res.body.toString(), 'Range Not Satisfiable')
    }

    for (const range of [
      'bytes=5-2',
      'items=0-5',
      'bytes=abc',
      'bytes=1-2-3',
      'bytes=',
      'bytes 0-5',
      'bytes=0x1-2',
      'bytes=-',
      `bytes=${Array.from({ length: MAX_RANGES + 1 }, (_, i) => `${i * 2}-${i * 2}`).join(',')}`,
    ]) {
      const res = await ranged(range)
      t.equal(res.status, 200, `${range.slice(0, 40)}: malformed, ignored: the whole file`)
      t.equal(res.body.toString(), PLAIN)
    }
    const disjoint = await ranged('bytes=0-1,5-6')
    t.equal(disjoint.status, 200, 'disjoint ranges: the whole file (no multipart/byteranges), as RFC 9110 allows')
    t.equal(disjoint.body.toString(), PLAIN)

    const emptyFile = await ranged('bytes=0-5', {}, '/empty.txt')
    t.equal(emptyFile.status, 200, 'an empty file has no ranges: Range is ignored')
    t.equal(emptyFile.body.length, 0)

    const mediumRange = await ranged('bytes=70000-150000', {}, '/medium.bin')
    t.equal(mediumRange.status, 206)
    t.ok(mediumRange.body.equals(folder.medium.subarray(70000, 150001)), 'a range of a streamed file has the right bytes')

    const modified = lastModified('plain.txt')
    t.equal((await ranged('bytes=0-1', { 'If-Range': modified })).status, 206, 'If-Range with the Last-Modified date: the range applies')
    const stale = await ranged('bytes=0-1', { 'If-Range': new Date(Date.parse(modified) - 1000).toUTCString() })
    t.equal(stale.status, 200, 'If-Range with another date: the whole file')
    t.equal(stale.body.toString(), PLAIN)
    t.equal((await ranged('bytes=0-1', { 'If-Range': '"other"' })).status, 200, 'If-Range with another tag: the whole file')
    t.equal((await ranged('bytes=0-1', { 'If-Range': etagOf('plain.txt') })).status, 200, 'If-Range needs a strong tag; the weak ETag sends the whole file')
    t.equal((await ranged('bytes=0-1', { 'If-Range': 'garbage' })).status, 200, 'If-Range that is neither: the whole file')

    const off = await listen(t, kind, serveStatic(root, { acceptRanges: false })(fallback))
    const noRanges = await get(off.port, '/plain.txt', { Range: 'bytes=0-1' })
    t.equal(noRanges.status, 200, 'acceptRanges: false ignores Range')
    t.equal(header(noRanges, 'accept-ranges'), undefined)
    t.same(errors, [])
    await noOpenFiles(t, 'after ranges')
  })

  t.test(`${kind}: index files and the redirect to a directory's slash`, async (t) => {
    const { port, errors } = await serve(t, { prefix: '/static' })
    const home = await get(port, '/static/')
    t.equal(home.status, 200)
    t.equal(home.body.toString(), INDEX)
    t.equal(header(home, 'content-type'), 'text/html; charset=utf-8')
    t.equal((await get(port, '/static/sub/')).body.toString(), SUB_INDEX)
    for (const [target, location] of [
      ['/static', '/static/'],
      ['/static/sub', '/static/sub/'],
      ['/static/sub?x=1&y=%20', '/static/sub/?x=1&y=%20'],
      ['/static//evil.example', '/static//evil.example/'],
    ] as const) {
      const res = await get(port, target)
      t.equal(res.status, 301, target)
      t.equal(header(res, 'location'), location, `${target} → ${location}`)
    }
    const plain = await listen(t, kind, serveStatic(root)(fallback))
    const open = await get(plain.port, '//evil.example')
    t.equal(open.status, 301)
    t.equal(header(open, 'location'), '/evil.example/', 'never a protocol-relative //host redirect')

    const none = await listen(t, kind, serveStatic(root, { index: false })(fallback))
    t.equal((await get(none.port, '/')).body.toString(), 'app GET /', 'index: false: a directory falls through')
    t.equal((await get(none.port, '/sub')).body.toString(), 'app GET /sub', 'and is not redirected')
    const custom = await listen(t, kind, serveStatic(root, { index: ['missing.html', 'deep.txt'] })(fallback))
    t.equal((await get(custom.port, '/sub/')).body.toString(), 'deep\n', 'the first index file that exists')
    const noRedirect = await listen(t, kind, serveStatic(root, { redirect: false })(fallback))
    t.equal((await get(noRedirect.port, '/sub')).body.toString(), 'app GET /sub', 'redirect: false falls through')
    t.same(errors, [])
    await noOpenFiles(t, 'after index files')
  })

  t.test(`${kind}: dotfiles are ignored, denied or allowed`, async (t) => {
    const ignore = await serve(t)
    t.equal((await get(ignore.port, '/.env')).body.toString(), 'app GET /.env', 'ignore (default): as if absent')
    t.equal((await get(ignore.port, '/.hidden/secret.txt')).body.toString(), 'app GET /.hidden/secret.txt', 'a dot folder too')
    // A symlink with a plain name leads to a dotfile: the policy holds for where it leads.
    t.equal((await get(ignore.port, '/sub/envlink')).body.toString(), 'app GET /sub/envlink', 'ignore: a symlink to a dotfile is as if absent')
    t.equal((await get(ignore.port, '/link-hidden/secret.txt')).body.toString(), 'app GET /link-hidden/secret.txt', 'ignore: a symlink to a dot folder')
    const deny = await serve(t, { dotfiles: 'deny' })
    for (const path of ['/.env', '/.hidden/secret.txt', '/.nothing', '/sub/envlink', '/link-hidden/secret.txt']) {
      const res = await get(deny.port, path)
      t.equal(res.status, 403, `deny: ${path}`)
      t.equal(res.body.toString(), 'Forbidden')
      leaksNothing(t, res, path)
    }
    const allow = await serve(t, { dotfiles: 'allow' })
    t.equal((await get(allow.port, '/.env')).body.toString(), 'PASSWORD=hunter2\n', 'allow: served')
    t.equal((await get(allow.port, '/.hidden/secret.txt')).body.toString(), 'hidden\n')
    t.equal((await get(allow.port, '/sub/envlink')).body.toString(), 'PASSWORD=hunter2\n', 'allow: through a symlink too')
    t.same([...ignore.errors, ...deny.errors, ...allow.errors], [])
  })

  t.test(`${kind}: no way out of the folder`, async (t) => {
    const { port, errors } = await serveApp(t, { dotfiles: 'allow' })
    const baselineFds = HAS_PROC_FD ? fdCount() : 0
    // `..`, `.` and backslashes 403, an encoded slash or a symlink out 404, NUL 400; an undecodable path is the server's 400.
    const attempts: Array<[target: string, status: number]> = [
      ['/../secret.txt', 403],
      ['/sub/../../secret.txt', 403],
      ['/%2e%2e/secret.txt', 403],
      ['/%2E%2E/%2e%2E/secret.txt', 403],
      ['/sub/%2e%2e/%2e%2e/secret.txt', 403],
      ['/..%2fsecret.txt', 404],
      ['/sub/..%2F..%2Fsecret.txt', 404],
      ['/a%2fb.txt', 404],
      ['/..%5csecret.txt', 403],
      ['/..\\secret.txt', 403],
      ['/sub\\..\\..\\secret.txt', 403],
      ['/%00', 400],
      ['/plain.txt%00.html', 400],
      ['/%252e%252e/secret.txt', 404],
      ['/./plain.txt', 403],
      [`${base}/secret.txt`, 404],
      [`/${base}/secret.txt`, 404],
      ['//etc/passwd', 404],
      ['/link-out.txt', 404],
      ['/link-dir-out/secret.txt', 404],
      ['/link-dir-out/', 404],
      [`/${'a/'.repeat(2100)}x`, 404],
      [`/${'x'.repeat(300)}`, 404],
      ['/%c0%ae%c0%ae/secret.txt', 400],
    ]
    for (const [target, status] of attempts) {
      const res = await get(port, target)
      t.equal(res.status, status, `${target.slice(0, 60)}: ${status}`)
      leaksNothing(t, res, target.slice(0, 60))
    }
    const nul = await get(port, '/%00')
    t.equal(nul.body.toString(), 'Bad Request: the path holds a NUL byte', 'a 400 that says what was wrong')
    t.equal((await get(port, '/a/b.txt')).body.toString(), 'a slash b\n', 'the same file through a real slash is served')
    t.equal((await get(port, '/link-in.txt')).body.toString(), PLAIN, 'a symlink inside the root that points inside is followed')
    if (folder.hasFifo) {
      const fifo = await get(port, '/fifo')
      t.equal(fifo.status, 404, 'a named pipe is no file to serve, and opening it does not hang')
    }
    t.same(errors, [], 'refusals are answers, not errors')
    await noOpenFiles(t, 'after traversal attempts')
    if (HAS_PROC_FD) t.ok(await eventually(() => fdCount() <= baselineFds), `descriptors back to baseline ${baselineFds} (now ${fdCount()})`)
    t.equal((await get(port, '/plain.txt')).body.toString(), PLAIN, 'and the server still serves')
  })

  t.test(`${kind}: a 20 MB file arrives byte-identical; a client that leaves early leaves no descriptor open`, async (t) => {
    const { port, errors } = await serve(t)
    const res = await fetch(`http://127.0.0.1:${port}/big.bin`)
    t.equal(res.headers.get('content-length'), String(folder.big.length))
    const body = Buffer.from(await res.arrayBuffer())
    t.equal(body.length, folder.big.length)
    t.equal(createHash('sha256').update(body).digest('hex'), folder.bigSha256, 'same bytes')
    await noOpenFiles(t, 'after the whole file')

    const baselineFds = HAS_PROC_FD ? fdCount() : 0
    for (const target of ['/big.bin', '/medium.bin']) {
      const client = await RawClient.connect(port)
      client.write(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`)
      t.ok(await client.receivedText('\r\n\r\n'), `${target}: the response started`)
      client.socket.pause()
      if (target === '/big.bin' && HAS_PROC_FD) {
        await sleep(300)
        t.equal(openFilesUnder(base).length, 1, 'while the client does not read, the file is still being read: no whole-file buffering')
      }
      client.destroy()
    }
    await noOpenFiles(t, 'after clients left mid-body')
    if (HAS_PROC_FD) t.ok(await eventually(() => fdCount() <= baselineFds), `descriptors back to baseline ${baselineFds} (now ${fdCount()})`)
    t.equal((await get(port, '/plain.txt')).body.toString(), PLAIN, 'and the server still serves')
    t.same(errors, [])
  })

  t.test(`${kind}: a file that shrinks while it is sent: the response is cut, never padded`, async (t) => {
    const victim = join(root, 'shrinking.bin')
    writeFileSync(victim, folder.big) // more than socket buffers hold, so most of it is still unread when it shrinks
    t.teardown(() => writeFileSync(victim, ''))
    const { port, errors } = await serve(t)
    const client = await RawClient.connect(port)
    t.teardown(() => client.destroy())
    client.write('GET /shrinking.bin HTTP/1.1\r\nHost: x\r\n\r\n')
    t.ok(await client.receivedText('\r\n\r\n'))
    client.socket.pause()
    await sleep(300)
    truncateSync(victim, 1000)
    client.socket.resume()
    const { responses, partial, closed } = await client.read(1, 10_000)
    t.equal(responses.length, 0, 'no complete response')
    t.ok(closed, 'the connection was cut')
    t.equal(partial?.complete, false, 'the client sees a truncated body, not a wrong one')
    t.ok(await eventually(() => errors.length > 0), 'the failure is logged')
    t.notOk(errors.join('').includes(base), 'the log message names no path')
    await noOpenFiles(t, 'after a shrinking file')
  })

  t.test(`${kind}: an error in setHeaders is a 500 that says nothing, and closes the file`, async (t) => {
    const { port, errors } = await serve(t, {
      setHeaders: (headers, file) => {
        if (file.path.endsWith('style.css')) throw new Error(`boom at ${file.path}`)
        headers.push(['X-Served-By', 'static'])
      },
    })
    const res = await get(port, '/style.css')
    t.equal(res.status, 500)
    t.equal(res.body.toString().trim(), 'Internal Server Error')
    leaksNothing(t, res, 'a 500')
    t.ok(await eventually(() => errors.some((e) => e.includes('boom'))), 'the error goes to the log')
    t.equal(header(await get(port, '/plain.txt'), 'x-served-by'), 'static', 'setHeaders adds headers')
    await noOpenFiles(t, 'after a 500')
  })

  t.test(`${kind}: cache options`, async (t) => {
    const cases: Array<[options: StaticOptions, cacheControl: string | undefined]> = [
      [{ maxAge: 3_600_000 }, 'public, max-age=3600'],
      [{ maxAge: '1d' }, 'public, max-age=86400'],
      [{ maxAge: '90s', immutable: true }, 'public, max-age=90, immutable'],
      [{ maxAge: '5y' }, 'public, max-age=31536000'],
      [{ maxAge: 1500 }, 'public, max-age=1'],
      [{ cacheControl: false }, undefined],
    ]
    for (const [options, cacheControl] of cases) {
      const { port } = await serve(t, options)
      t.equal(header(await get(port, '/plain.txt'), 'cache-control'), cacheControl, JSON.stringify(options))
    }
    const { port } = await serve(t, { etag: false, lastModified: false })
    const bare = await get(port, '/plain.txt')
    t.equal(header(bare, 'etag'), undefined, 'etag: false')
    t.equal(header(bare, 'last-modified'), undefined, 'lastModified: false')
    t.equal((await get(port, '/plain.txt', { 'If-Modified-Since': new Date(Date.now() + 60_000).toUTCString() })).status, 200, 'no validator, no 304')
  })
}

t.test('every kind of answer keeps the gateway rules (under validate())', async (t) => {
  const violations: string[] = []
  const app = validate(serveStatic(root, { prefix: '/s' })(fallback), { onViolation: (v) => void violations.push(v.message) })
  const { port, errors } = await listen(t, 'postern', app)
  const etag = etagOf('plain.txt')
  const requests: Array<[method: string, target: string, extra: Record<string, string>, status: number]> = [
    ['GET', '/s/plain.txt', {}, 200],
    ['GET', '/s/medium.bin', {}, 200],
    ['GET', '/s/empty.txt', {}, 200],
    ['HEAD', '/s/medium.bin', {}, 200],
    ['GET', '/s/plain.txt', { 'If-None-Match': etag }, 304],
    ['HEAD', '/s/plain.txt', { 'If-None-Match': etag }, 304],
    ['GET', '/s/plain.txt', { 'If-Match': '"x"' }, 412],
    ['GET', '/s/medium.bin', { Range: 'bytes=100-70000' }, 206],
    ['GET', '/s/plain.txt', { Range: 'bytes=999-' }, 416],
    ['GET', '/s/sub', {}, 301],
    ['GET', '/s/../x', {}, 403],
    ['GET', '/s/%00', {}, 400],
    ['GET', '/s/missing', {}, 200],
    ['POST', '/s/plain.txt', {}, 200],
  ]
  for (const [method, target, extra, status] of requests) t.equal((await request(port, method, target, extra)).status, status, `${method} ${target}`)
  const client = await RawClient.connect(port)
  client.write('GET /s/big.bin HTTP/1.1\r\nHost: x\r\n\r\n')
  t.ok(await client.receivedText('\r\n\r\n'))
  client.destroy()
  await noOpenFiles(t, 'under validate()')
  t.same(violations, [], 'no rule of the interface broken')
  t.same(errors, [])
})

t.test('options are checked when the middleware is made', async (t) => {
  const file = join(root, 'plain.txt')
  const bad: Array<[label: string, make: () => unknown, message: RegExp]> = [
    ['missing root', () => serveStatic(join(base, 'nope')), /root folder ".*nope" does not exist/],
    ['root is a file', () => serveStatic(file), /is not a folder/],
    ['empty root', () => serveStatic(''), /root must be a folder path/],
    ['http URL', () => serveStatic(new URL('http://example.com/')), /file: URL/],
    ['unknown option', () => serveStatic(root, { maxage: 1 } as StaticOptions), /unknown option "maxage"/],
    ['prefix without slash', () => serveStatic(root, { prefix: 'static' }), /prefix must be a path starting with "\/"/],
    ['prefix with dot segment', () => serveStatic(root, { prefix: '/a/../b' }), /dot segments/],
    ['index with a slash', () => serveStatic(root, { index: ['../x.html'] }), /plain file names/],
    ['index not a list', () => serveStatic(root, { index: 3 as unknown as string }), /index must be false/],
    ['dotfiles', () => serveStatic(root, { dotfiles: 'hide' as 'ignore' }), /dotfiles must be 'ignore', 'deny' or 'allow'/],
    ['maxAge negative', () => serveStatic(root, { maxAge: -1 }), /maxAge must be/],
    ['maxAge unit', () => serveStatic(root, { maxAge: '3 fortnights' }), /maxAge must be/],
    ['flag type', () => serveStatic(root, { etag: 'yes' as unknown as boolean }), /etag must be true or false/],
    ['setHeaders type', () => serveStatic(root, { setHeaders: 'x' as unknown as () => void }), /setHeaders must be a function/],
    ['staticApp too', () => staticApp(join(base, 'nope')), /^staticApp: root folder/],
  ]
  for (const [label, make, message] of bad) t.throws(make, message, label)
  t.doesNotThrow(() => serveStatic(pathToFileURL(`${root}/`)), 'a file: URL')
  t.doesNotThrow(() => serveStatic(root, { prefix: '/static/', index: 'home.html', maxAge: '2h' }))
})

t.test('Range parsing edge cases', async (t) => {
  t.same(parseRange('bytes=0-0', 10), [{ start: 0, end: 0 }])
  t.same(parseRange('bytes=9-', 10), [{ start: 9, end: 9 }])
  t.same(parseRange('bytes=99999999999999999999-', 10), 'unsatisfiable', 'huge numbers are unsatisfiable, not a crash')
  t.same(parseRange('bytes=0-99999999999999999999', 10), [{ start: 0, end: 9 }])
  t.same(parseRange('bytes= 1-2 ,\t4-5', 10), [
    { start: 1, end: 2 },
    { start: 4, end: 5 },
  ])
  t.same(parseRange('bytes=0-1', 0), null)
})

t.test('file-system errors: absent, forbidden, or a failure for the error policy', async (t) => {
  const err = (code: string) => Object.assign(new Error(code), { code })
  for (const code of ['ENOENT', 'ENOTDIR', 'ENAMETOOLONG', 'ELOOP']) t.equal(refusalOf(err(code)), 'miss', `${code}: as if absent (404, or on to the app)`)
  for (const code of ['EACCES', 'EPERM']) t.equal(refusalOf(err(code)), 'forbidden', `${code}: 403`)
  for (const code of ['EIO', 'EMFILE']) t.equal(refusalOf(err(code)), null, `${code}: thrown, so the gateway error policy answers 500`)
  t.equal(refusalOf('weird'), null)
})

t.test('a file the server may not read is a 403 (server run as an unprivileged user)', { skip: process.platform === 'win32' ? 'needs POSIX permissions' : false }, async (t) => {
  const here = dirname(fileURLToPath(import.meta.url))
  const fixture = join(here, '..', 'fixtures', 'static-server.ts')
  const locked = join(root, 'locked.txt')
  const lockedDir = join(root, 'locked-dir')
  writeFileSync(locked, 'locked')
  chmodSync(locked, 0o000)
  const { mkdirSync } = await import('node:fs')
  mkdirSync(lockedDir)
  writeFileSync(join(lockedDir, 'inside.txt'), 'inside')
  chmodSync(lockedDir, 0o000)
  t.teardown(() => chmodSync(lockedDir, 0o755))
  // The runner may be root, who reads everything: run the server as nobody then.
  const asRoot = process.getuid?.() === 0
  for (const dir of [base, root]) chmodSync(dir, 0o755)
  const child = spawn(process.execPath, ['--import=tsx', fixture, root], {
    cwd: join(here, '..', '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
  })
  t.teardown(() => void child.kill('SIGKILL'))
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0]!) as { port: number }).port)
    })
    child.once('exit', (code) => reject(new Error(`static server exited (${code}): ${stderr}`)))
  })
  for (const path of ['/locked.txt', '/locked-dir/inside.txt', '/locked-dir/']) {
    const res = await get(port, path)
    t.equal(res.status, 403, `${path}: permission denied is 403`)
    t.equal(res.body.toString(), 'Forbidden')
    leaksNothing(t, res, path)
  }
  t.equal((await get(port, '/plain.txt')).body.toString(), PLAIN, 'readable files are still served')
  t.equal(stderr, '', 'nothing logged: a refusal is not a failure')
})
