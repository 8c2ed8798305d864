/**
 * compression() on real sockets: on the bare server with no framework
 * (postern's server and node:http) and in the framework with
 * `app.use(compression())`. Every encoding decodes to the bytes the app
 * produced; q-values, threshold, skipped types, `no-transform`, HEAD, 204,
 * 206 and 304 are honoured; a large stream arrives whole, is pulled only as
 * fast as the client reads, and is flushed when the app pauses; a client
 * that leaves gets the app's body closed once and no zlib stream left open.
 */
import { execFile } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import zlib from 'node:zlib'
import t from 'tap'
import { compression, type CompressionOptions } from '../../plugins/compress.js'
import { cors } from '../../plugins/cors.js'
import { postern } from '../../lib/framework/app.js'
import type { Body, Chunk, Environ, GatewayApp, Headers } from '../../lib/gateway/spec.js'
import { exchange, header, type RawResponse } from '../helpers/raw.js'
import { sleep, type Teardown } from '../helpers/server.js'
import { SERVERS, listen, rawRequest } from '../fixtures/proxy-client.js'

type Encoding = 'gzip' | 'br' | 'deflate'

function decode(encoding: string | undefined, body: Buffer): Buffer {
  if (encoding === 'gzip') return zlib.gunzipSync(body)
  if (encoding === 'br') return zlib.brotliDecompressSync(body)
  if (encoding === 'deflate') return zlib.inflateSync(body)
  if (encoding === undefined) return body
  throw new Error(`unexpected Content-Encoding ${encoding}`)
}

/** Text that compresses like real pages do: repeated words with numbers that change. */
function text(bytes: number): string {
  let out = ''
  for (let i = 0; out.length < bytes; i++) out += `<li id="row-${i}">item ${i} of the list, price ${(i * 7919) % 1000}</li>\n`
  return out.slice(0, bytes)
}

const PAGE = text(20_000)

/** One raw request (adding Connection: close) with extra header lines. */
function request(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const lines = Object.entries(headers).map(([name, value]) => `\r\n${name}: ${value}`)
  return rawRequest({ port, head: `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}${lines.join('')}` })
}

/** An app that answers each path with a body built by `routes`. */
function routes(table: Record<string, (environ: Environ) => { status?: string; headers: Headers; body: Body }>): GatewayApp {
  return (environ, startResponse) => {
    const route = table[environ.PATH_INFO]
    if (route === undefined) {
      startResponse('404 Not Found', [['Content-Type', 'text/plain']])
      return ['no route']
    }
    const { status = '200 OK', headers, body } = route(environ)
    startResponse(status, headers)
    return body
  }
}

/** An async generator of `count` chunks from `make(i)`, counting how many it produced and whether close() was called. */
function counted(count: number, make: (i: number) => Chunk) {
  const counter = { produced: 0, closed: 0, finished: false }
  const body = Object.assign(
    (async function* () {
      try {
        for (let i = 0; i < count; i++) {
          counter.produced++
          yield make(i)
        }
      } finally {
        counter.finished = true
      }
    })(),
    {
      close() {
        counter.closed++
      },
    },
  )
  return { body, counter }
}

/**
 * Records every zlib compression stream made while the test runs, to check
 * none is left open. It wraps node:zlib's factories (the middleware calls
 * them through the module object) and changes nothing they do.
 */
function zlibStreams(t: Teardown): Array<zlib.Gzip | zlib.Deflate | zlib.BrotliCompress> {
  const made: Array<zlib.Gzip | zlib.Deflate | zlib.BrotliCompress> = []
  const z = zlib as unknown as Record<string, (...args: unknown[]) => zlib.Gzip>
  for (const name of ['createGzip', 'createDeflate', 'createBrotliCompress']) {
    // The module's properties are read-only but configurable: redefine, and put back.
    const original = z[name]!
    const spy = (...args: unknown[]) => {
      const stream = original(...args)
      made.push(stream)
      return stream
    }
    Object.defineProperty(zlib, name, { value: spy, writable: false, enumerable: true, configurable: true })
    t.teardown(() => Object.defineProperty(zlib, name, { value: original, writable: false, enumerable: true, configurable: true }))
  }
  return made
}

/** A zlib stream is done with its native handle once it ended or was destroyed. */
function released(stream: zlib.Gzip | zlib.Deflate | zlib.BrotliCompress): boolean {
  return stream.destroyed || (stream.readableEnded && stream.writableFinished)
}

async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > ms) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

for (const kind of SERVERS) {
  t.test(`${kind}: each encoding decodes to the app's bytes, whole or streamed`, async (t) => {
    const big = text(4 * 1024 * 1024 + 17)
    const app = routes({
      '/page': () => ({ headers: [['Content-Type', 'text/html; charset=utf-8']], body: [PAGE] }),
      '/json': () => ({ headers: [['Content-Type', 'application/json']], body: ['{"items":[', ...Array.from({ length: 500 }, (_, i) => `${i ? ',' : ''}{"id":${i}}`), ']}'] }),
      '/large-array': () => ({ headers: [['Content-Type', 'text/plain']], body: [text(300_000)] }),
      '/stream': () => ({
        headers: [['Content-Type', 'text/plain; charset=utf-8']],
        body: (async function* () {
          for (let i = 0; i < big.length; i += 50_000) yield big.slice(i, i + 50_000)
        })(),
      }),
      '/sync-stream': () => ({
        headers: [['Content-Type', 'text/css']],
        body: (function* () {
          for (let i = 0; i < 200; i++) yield Buffer.from(`.c${i} { color: red }\n`)
        })(),
      }),
    })
    const { port, errors } = await listen(t, kind, compression()(app))
    const json = `{"items":[${Array.from({ length: 500 }, (_, i) => `{"id":${i}}`).join(',')}]}`
    const expected: Record<string, string> = {
      '/page': PAGE,
      '/json': json,
      '/large-array': text(300_000),
      '/stream': big,
      '/sync-stream': Array.from({ length: 200 }, (_, i) => `.c${i} { color: red }\n`).join(''),
    }
    for (const encoding of ['gzip', 'br', 'deflate'] as const) {
      for (const [path, original] of Object.entries(expected)) {
        const res = await request(port, 'GET', path, { 'Accept-Encoding': encoding })
        t.equal(res.status, 200)
        t.equal(header(res, 'content-encoding'), encoding, `${encoding} ${path}`)
        t.equal(header(res, 'vary'), 'Accept-Encoding')
        t.ok(res.body.length < Buffer.byteLength(original), `${encoding} ${path}: ${Buffer.byteLength(original)} bytes sent as ${res.body.length}`)
        t.equal(decode(encoding, res.body).toString('utf8'), original, `${encoding} ${path} decodes to the original`)
        if (path === '/page' || path === '/json') {
          t.equal(header(res, 'content-length'), String(res.body.length), `${path}: a whole body keeps a (compressed) length`)
        }
      }
    }
    const plain = await request(port, 'GET', '/stream')
    t.equal(header(plain, 'content-encoding'), undefined, 'no Accept-Encoding: sent as is')
    t.equal(header(plain, 'vary'), 'Accept-Encoding', 'with Vary all the same')
    t.equal(plain.body.toString('utf8'), big)
    t.same(errors, [])
  })

  t.test(`${kind}: Accept-Encoding q-values pick the encoding; on a tie br, then gzip, then deflate`, async (t) => {
    const app = routes({ '/': () => ({ headers: [['Content-Type', 'text/plain']], body: [PAGE] }) })
    const { port, errors } = await listen(t, kind, compression()(app))
    const cases: Array<[accept: string | null, chosen: Encoding | undefined]> = [
      ['gzip, deflate, br', 'br'],
      ['gzip, deflate, br, zstd', 'br'],
      ['gzip;q=0.5, br;q=0.9', 'br'],
      ['br;q=0.1, gzip', 'gzip'],
      ['deflate, gzip;q=0.8', 'deflate'],
      ['gzip;q=0.5, deflate;q=0.5', 'gzip'],
      ['*', 'br'],
      ['br;q=0, *', 'gzip'],
      ['GZIP', 'gzip'],
      ['x-gzip, compress', undefined],
      ['identity', undefined],
      ['identity;q=1, gzip;q=0.5', undefined],
      ['gzip;q=0', undefined],
      [null, undefined],
      ['', undefined],
      // Nothing acceptable and identity refused: the body is sent as is, not a 406.
      ['identity;q=0', undefined],
      ['*;q=0', undefined],
      ['zstd, identity;q=0', undefined],
    ]
    for (const [accept, chosen] of cases) {
      const res = await request(port, 'GET', '/', accept === null ? {} : { 'Accept-Encoding': accept })
      t.equal(res.status, 200, `${JSON.stringify(accept)} answered 200`)
      t.equal(header(res, 'content-encoding'), chosen, `${JSON.stringify(accept)} → ${chosen ?? 'identity'}`)
      t.equal(decode(chosen, res.body).toString('utf8'), PAGE)
      t.equal(header(res, 'vary'), 'Accept-Encoding')
    }
    t.same(errors, [])
  })

  t.test(`${kind}: malformed or huge Accept-Encoding values never crash and get a readable answer`, async (t) => {
    const app = routes({ '/': () => ({ headers: [['Content-Type', 'text/plain']], body: [PAGE] }) })
    const { port, errors } = await listen(t, kind, compression()(app))
    const cases: Array<[string, Encoding | undefined]> = [
      ['gzip;q=abc', undefined],
      ['gzip;q=', 'gzip'],
      ['gzip;q=1e9', 'gzip'],
      ['gzip;q=-1, br', 'br'],
      [';;;,,,', undefined],
      ['"', undefined],
      ['gzip;q="0.5"', 'gzip'],
      [',,gzip,,', 'gzip'],
      ['\u00ffgzip', undefined],
      ['gzip,'.repeat(2000), undefined],
      [`br;q=0.5, ${'x'.repeat(1100)}`, undefined],
      [`${'a;b=c,'.repeat(150)}gzip`, 'gzip'],
    ]
    for (const [accept, chosen] of cases) {
      const label = JSON.stringify(accept.length > 40 ? `${accept.slice(0, 40)}… (${accept.length} chars)` : accept)
      const res = await rawRequest({ port, head: `GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: ${accept}` })
      t.equal(res.status, 200, `${label} answered`)
      t.equal(header(res, 'content-encoding'), chosen, `${label} → ${chosen ?? 'identity'}`)
      t.equal(decode(chosen, res.body).toString('utf8'), PAGE, `${label}: the client can read it`)
    }
    t.same(errors, [])
  })

  t.test(`${kind}: threshold: a small whole body is sent as is, a stream of unknown length is compressed`, async (t) => {
    const app = routes({
      '/1023': () => ({ headers: [['Content-Type', 'text/plain']], body: ['a'.repeat(1000), 'b'.repeat(23)] }),
      '/1024': () => ({ headers: [['Content-Type', 'text/plain']], body: ['a'.repeat(1000), 'b'.repeat(24)] }),
      '/declared-small': () => ({
        headers: [
          ['Content-Type', 'text/plain'],
          ['Content-Length', '11'],
        ],
        body: (async function* () {
          yield 'hello world'
        })(),
      }),
      '/declared-large': () => ({
        headers: [
          ['Content-Type', 'text/plain'],
          ['Content-Length', String(PAGE.length)],
        ],
        body: (async function* () {
          yield PAGE
        })(),
      }),
      '/small-stream': () => ({
        headers: [['Content-Type', 'text/plain']],
        body: (async function* () {
          yield 'tiny'
        })(),
      }),
      '/empty': () => ({ headers: [['Content-Type', 'text/plain']], body: [] }),
      '/empty-stream': () => ({ headers: [['Content-Type', 'text/plain']], body: (async function* () {})() }),
    })
    const { port, errors } = await listen(t, kind, compression()(app))
    const gz = { 'Accept-Encoding': 'gzip' }
    const small = await request(port, 'GET', '/1023', gz)
    t.equal(header(small, 'content-encoding'), undefined, '1023 bytes: under the default threshold of 1024')
    t.equal(header(small, 'content-length'), '1023')
    t.equal(header(small, 'vary'), 'Accept-Encoding')
    const at = await request(port, 'GET', '/1024', gz)
    t.equal(header(at, 'content-encoding'), 'gzip', '1024 bytes: compressed')
    t.equal(decode('gzip', at.body).length, 1024)

    const declaredSmall = await request(port, 'GET', '/declared-small', gz)
    t.equal(header(declaredSmall, 'content-encoding'), undefined, 'a declared length under the threshold is trusted')
    t.equal(declaredSmall.body.toString(), 'hello world')
    const declaredLarge = await request(port, 'GET', '/declared-large', gz)
    t.equal(header(declaredLarge, 'content-encoding'), 'gzip')
    t.equal(header(declaredLarge, 'content-length'), undefined, 'the app\u2019s Content-Length is dropped when compressing')
    t.equal(decode('gzip', declaredLarge.body).toString(), PAGE)
    const tiny = await request(port, 'GET', '/small-stream', gz)
    t.equal(header(tiny, 'content-encoding'), 'gzip', 'a stream\u2019s length is unknown: compressed')
    t.equal(decode('gzip', tiny.body).toString(), 'tiny')

    const empty = await request(port, 'GET', '/empty', gz)
    t.equal(header(empty, 'content-encoding'), undefined)
    t.equal(empty.body.length, 0)

    const zero = await listen(t, kind, compression({ threshold: 0 })(app))
    const now = await request(zero.port, 'GET', '/declared-small', gz)
    t.equal(header(now, 'content-encoding'), 'gzip', 'threshold 0 compresses any body')
    t.equal(decode('gzip', now.body).toString(), 'hello world')
    const none = await request(zero.port, 'GET', '/empty', gz)
    t.equal(header(none, 'content-encoding'), undefined, 'but never an empty one')
    const noneStream = await request(zero.port, 'GET', '/empty-stream', gz)
    t.equal(noneStream.status, 200)
    t.equal(header(noneStream, 'content-encoding'), undefined, 'nor an empty stream')
    t.equal(header(noneStream, 'vary'), 'Accept-Encoding')
    t.equal(noneStream.body.length, 0)
    t.same([...errors, ...zero.errors], [])
  })

  t.test(`${kind}: types not worth compressing, already encoded bodies and no-transform are left alone`, async (t) => {
    const png = randomBytes(5000)
    const gzipped = zlib.gzipSync(PAGE)
    const app = routes({
      '/png': () => ({ headers: [['Content-Type', 'image/png']], body: [png] }),
      '/zip': () => ({ headers: [['Content-Type', 'application/zip']], body: [png] }),
      '/bytes': () => ({ headers: [['Content-Type', 'application/octet-stream']], body: [png] }),
      '/untyped': () => ({ headers: [], body: [PAGE] }),
      '/svg': () => ({ headers: [['Content-Type', 'image/svg+xml']], body: [PAGE] }),
      '/vendor-json': () => ({ headers: [['Content-Type', 'application/vnd.api+json']], body: [PAGE] }),
      '/encoded': () => ({
        headers: [
          ['Content-Type', 'text/plain'],
          ['Content-Encoding', 'gzip'],
          ['Vary', 'Accept-Encoding'],
        ],
        body: [gzipped],
      }),
      '/no-transform': () => ({
        headers: [
          ['Content-Type', 'text/plain'],
          ['Cache-Control', 'public, No-Transform'],
        ],
        body: [PAGE],
      }),
    })
    const { port, errors } = await listen(t, kind, compression()(app))
    const gz = { 'Accept-Encoding': 'gzip, br' }
    for (const path of ['/png', '/zip', '/untyped']) {
      const res = await request(port, 'GET', path, gz)
      t.equal(header(res, 'content-encoding'), undefined, `${path} is not compressed`)
      t.equal(header(res, 'vary'), undefined, `${path}: not compressible, so the answer does not vary`)
      t.equal(res.body.length, path === '/untyped' ? PAGE.length : png.length)
    }
    // mime-db (through `compressible`) counts these as compressible; so does @fastify/compress.
    for (const path of ['/svg', '/vendor-json', '/bytes']) {
      const res = await request(port, 'GET', path, gz)
      t.equal(header(res, 'content-encoding'), 'br', `${path} is compressible`)
    }
    const encoded = await request(port, 'GET', '/encoded', gz)
    t.equal(header(encoded, 'content-encoding'), 'gzip', 'the app\u2019s own encoding is kept')
    t.equal(header(encoded, 'vary'), 'Accept-Encoding', 'and its Vary not doubled')
    t.same(encoded.body, gzipped, 'its bytes untouched (not compressed twice)')
    const keep = await request(port, 'GET', '/no-transform', gz)
    t.equal(header(keep, 'content-encoding'), undefined, 'Cache-Control: no-transform is obeyed')
    t.equal(keep.body.toString(), PAGE)
    t.same(errors, [])
  })

  t.test(`${kind}: HEAD, 204, 206 and 304 are never compressed; 206 and 304 carry the Vary the 200 would`, async (t) => {
    const app = routes({
      '/page': () => ({ headers: [['Content-Type', 'text/plain']], body: [PAGE] }),
      '/204': () => ({ status: '204 No Content', headers: [['Content-Type', 'text/plain']], body: [] }),
      '/304': () => ({
        status: '304 Not Modified',
        headers: [
          ['Content-Type', 'text/plain'],
          ['ETag', '"v1"'],
        ],
        body: [],
      }),
      '/206': () => ({
        status: '206 Partial Content',
        headers: [
          ['Content-Type', 'text/plain'],
          ['Content-Range', `bytes 0-1999/${PAGE.length}`],
        ],
        body: [PAGE.slice(0, 2000)],
      }),
      '/304-untyped': () => ({ status: '304 Not Modified', headers: [['ETag', 'W/"v2"']], body: [] }),
      '/304-no-transform': () => ({
        status: '304 Not Modified',
        headers: [
          ['Content-Type', 'text/plain'],
          ['Cache-Control', 'no-transform'],
        ],
        body: [],
      }),
      '/206-image': () => ({
        status: '206 Partial Content',
        headers: [
          ['Content-Type', 'image/png'],
          ['Content-Range', 'bytes 0-1999/20000'],
        ],
        body: [Buffer.alloc(2000)],
      }),
      '/206-vary': () => ({
        status: '206 Partial Content',
        headers: [
          ['Content-Type', 'text/plain'],
          ['Vary', 'Accept-Language'],
          ['Content-Range', `bytes 0-1999/${PAGE.length}`],
        ],
        body: [PAGE.slice(0, 2000)],
      }),
    })
    const { port, errors } = await listen(t, kind, compression()(app))
    const gz = { 'Accept-Encoding': 'gzip' }
    const head = await request(port, 'HEAD', '/page', gz)
    t.equal(head.status, 200)
    t.equal(header(head, 'content-encoding'), undefined, 'HEAD: not compressed')
    t.equal(header(head, 'content-length'), String(PAGE.length), 'HEAD: the length of the body GET would send as is')
    t.equal(header(head, 'vary'), 'Accept-Encoding')
    t.equal(head.body.length, 0)
    const noContent = await request(port, 'GET', '/204', gz)
    t.equal(noContent.status, 204)
    t.equal(header(noContent, 'content-encoding'), undefined)
    const notModified = await request(port, 'GET', '/304', gz)
    t.equal(notModified.status, 304)
    t.equal(header(notModified, 'content-encoding'), undefined)
    t.equal(header(notModified, 'etag'), '"v1"')
    t.equal(header(notModified, 'vary'), 'Accept-Encoding', 'a 304 carries the Vary its 200 would have (RFC 9110 \u00a715.4.5)')
    const partial = await request(port, 'GET', '/206', gz)
    t.equal(partial.status, 206)
    t.equal(header(partial, 'content-encoding'), undefined, 'a range is of the identity bytes: never compressed')
    t.equal(partial.body.toString(), PAGE.slice(0, 2000))
    t.equal(header(partial, 'vary'), 'Accept-Encoding', 'a 206 of a compressible type says it varies too')
    const joined = await request(port, 'GET', '/206-vary', gz)
    t.equal(header(joined, 'vary'), 'Accept-Language, Accept-Encoding', 'joined to the app\u2019s own Vary')
    t.equal(header(joined, 'content-encoding'), undefined)
    const untyped = await request(port, 'GET', '/304-untyped', gz)
    t.equal(header(untyped, 'vary'), 'Accept-Encoding', 'a 304 that names no type (a static file’s) may stand for a compressed 200: it varies too')
    const kept = await request(port, 'GET', '/304-no-transform', gz)
    t.equal(header(kept, 'vary'), undefined, 'no-transform: its 200 would not vary either')
    const image = await request(port, 'GET', '/206-image', gz)
    t.equal(header(image, 'vary'), undefined, 'a type not worth compressing gets no Vary')
    t.equal(image.body.length, 2000)
    t.equal(header(noContent, 'vary'), undefined, 'a 204 has no representation to vary')
    t.same(errors, [])
  })

  t.test(`${kind}: a compressed response drops Content-Length and Accept-Ranges, weakens a strong ETag and joins the app's Vary`, async (t) => {
    const shared: Headers = [
      ['Content-Type', 'text/html'],
      ['ETag', '"abc"'],
      ['Accept-Ranges', 'bytes'],
      ['Vary', 'Accept-Language'],
      ['Content-Length', String(PAGE.length)],
    ]
    for (const pair of shared) Object.freeze(pair)
    Object.freeze(shared)
    const app: GatewayApp = (_environ, startResponse) => {
      startResponse('200 OK', shared)
      return [PAGE]
    }
    const { port, errors } = await listen(t, kind, compression()(app))
    const res = await request(port, 'GET', '/', { 'Accept-Encoding': 'gzip' })
    t.equal(header(res, 'content-encoding'), 'gzip')
    t.equal(header(res, 'etag'), 'W/"abc"', 'the compressed bytes are another representation: a weak validator')
    t.equal(header(res, 'accept-ranges'), undefined, 'ranges of the compressed bytes are not offered')
    t.equal(header(res, 'vary'), 'Accept-Language, Accept-Encoding')
    t.equal(header(res, 'content-length'), String(res.body.length), 'the compressed length, not the app\u2019s')
    const plain = await request(port, 'GET', '/')
    t.equal(header(plain, 'etag'), '"abc"', 'uncompressed: the app\u2019s headers as they were')
    t.equal(header(plain, 'accept-ranges'), 'bytes')
    t.equal(header(plain, 'vary'), 'Accept-Language, Accept-Encoding')
    t.same(shared[1], ['ETag', '"abc"'], 'the app\u2019s shared, frozen header list was not touched')
    t.same(errors, [])
  })

  t.test(`${kind}: a stream the app produces slowly reaches the client as it is produced`, async (t) => {
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    const app: GatewayApp = (_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/event-stream']])
      return (async function* () {
        yield 'data: first\n\n'
        await released
        yield 'data: second\n\n'
      })()
    }
    const { port, errors } = await listen(t, kind, compression()(app))
    for (const encoding of ['gzip', 'br', 'deflate'] as const) {
      const received = await new Promise<string>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { 'accept-encoding': encoding } }, (res) => {
          t.equal(res.headers['content-encoding'], encoding)
          const decoder = encoding === 'gzip' ? zlib.createGunzip() : encoding === 'br' ? zlib.createBrotliDecompress() : zlib.createInflate()
          let got = ''
          decoder.on('data', (d: Buffer) => {
            got += d.toString()
            // Only once the first event arrived does the app produce the second: without a flush this waits forever.
            if (got === 'data: first\n\n') release()
          })
          decoder.on('end', () => resolve(got))
          decoder.on('error', reject)
          res.pipe(decoder)
        })
        req.on('error', reject)
        req.setTimeout(5000, () => req.destroy(new Error(`${encoding}: the first event never arrived on its own`)))
      })
      t.equal(received, 'data: first\n\ndata: second\n\n', `${encoding}: each event arrived`)
    }
    t.same(errors, [])
  })

  for (const encoding of ['gzip', 'br'] as const) {
    t.test(`${kind}: backpressure (${encoding}): a client that stops reading stops the app's stream, then gets it whole`, async (t) => {
      const CHUNK = 64 * 1024
      const TOTAL = 320 // 20 MiB of bytes zlib cannot shrink, so the socket buffers fill as they would without compression
      let counter = { produced: 0, closed: 0, finished: false }
      const app: GatewayApp = (_environ, startResponse) => {
        startResponse('200 OK', [['Content-Type', 'application/json']])
        const made = counted(TOTAL, () => randomBytes(CHUNK))
        counter = made.counter
        return made.body
      }
      const { port, errors } = await listen(t, kind, compression()(app))
      const socket = net.connect({ port, host: '127.0.0.1' })
      t.teardown(() => socket.destroy())
      await new Promise<void>((resolve) => socket.once('connect', resolve))
      socket.pause()
      socket.write(`GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: ${encoding}\r\nConnection: close\r\n\r\n`)
      // Wait until the stream is stuck on the full socket.
      let last = -1
      let stable = 0
      while (stable < 300) {
        await sleep(50)
        stable = counter.produced === last ? stable + 50 : 0
        last = counter.produced
      }
      t.ok(counter.produced > 0, 'the response started')
      t.ok(counter.produced < TOTAL / 2, `the app was pulled only as far as the socket buffers hold: ${counter.produced} of ${TOTAL} chunks`)

      const parts: Buffer[] = []
      socket.on('data', (d: Buffer) => parts.push(d))
      await new Promise<void>((resolve) => {
        socket.once('end', resolve)
        socket.resume()
      })
      const raw = Buffer.concat(parts)
      const headEnd = raw.indexOf('\r\n\r\n')
      const head = raw.subarray(0, headEnd).toString('latin1')
      t.match(head, /^HTTP\/1\.1 200 /)
      t.match(head, new RegExp(`content-encoding: ${encoding}`, 'i'))
      // Undo the chunked framing, then the encoding.
      const body: Buffer[] = []
      let pos = headEnd + 4
      for (;;) {
        const lineEnd = raw.indexOf('\r\n', pos)
        const size = Number.parseInt(raw.subarray(pos, lineEnd).toString('latin1'), 16)
        if (size === 0) break
        body.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size))
        pos = lineEnd + 2 + size + 2
      }
      t.equal(decode(encoding, Buffer.concat(body)).length, CHUNK * TOTAL, 'every byte arrived once the client read')
      t.equal(counter.produced, TOTAL)
      await until(() => counter.closed > 0, 'close()')
      t.equal(counter.closed, 1, 'close() forwarded once')
      t.same(errors, [])
    })
  }

  t.test(`${kind}: a client that leaves mid-stream: the app's body is closed once, zlib released, the server keeps answering`, async (t) => {
    const streams = zlibStreams(t)
    const bodies: Array<{ produced: number; closed: number; finished: boolean }> = []
    const app: GatewayApp = (environ, startResponse) => {
      if (environ.PATH_INFO === '/ok') {
        startResponse('200 OK', [['Content-Type', 'text/plain']])
        return [PAGE]
      }
      startResponse('200 OK', [['Content-Type', 'text/plain']])
      const made = counted(100_000, () => randomBytes(16 * 1024))
      bodies.push(made.counter)
      return made.body
    }
    const { port, errors } = await listen(t, kind, compression()(app))
    for (const encoding of ['gzip', 'br', 'deflate'] as const) {
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/endless', headers: { 'accept-encoding': encoding } }, (res) => {
          let got = 0
          res.on('data', (d: Buffer) => {
            got += d.length
            if (got > 256 * 1024) {
              req.destroy()
              resolve()
            }
          })
          res.on('error', () => {})
        })
        req.on('error', (error) => (error.message === 'socket hang up' ? undefined : reject(error)))
      })
      const body = bodies.at(-1)!
      await until(() => body.closed > 0 && body.finished, `${encoding}: the body closed`)
      t.ok(body.produced < 1000, `${encoding}: the app stopped early (${body.produced} chunks)`)
    }
    // Another round for anything late to show up, then count.
    const ok = await request(port, 'GET', '/ok', { 'Accept-Encoding': 'gzip' })
    t.equal(decode(header(ok, 'content-encoding'), ok.body).toString(), PAGE, 'the server keeps answering')
    t.same(
      bodies.map((b) => b.closed),
      [1, 1, 1],
      'close() was called exactly once per body',
    )
    t.ok(streams.length >= 3, `${streams.length} zlib streams were made`)
    await until(() => streams.every(released), 'every zlib stream to be released')
    t.ok(streams.every(released), 'none is left open')
    t.same(errors, [])
  })

  t.test(`${kind}: an app stream that fails midway cuts the response; its body is closed once`, async (t) => {
    let closed = 0
    const app: GatewayApp = (_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']])
      const gen = (async function* () {
        yield PAGE
        yield PAGE
        throw new Error('database went away')
      })()
      return Object.assign(gen, { close: () => void closed++ })
    }
    const { port, errors } = await listen(t, kind, compression()(app))
    const { responses, partial, closed: cut } = await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n', { waitClose: true })
    t.same(responses, [], 'no complete response')
    t.equal(partial?.status, 200)
    t.notOk(partial?.complete, 'the client sees a truncated response, never a wrong one')
    t.ok(cut, 'and the connection closed')
    await until(() => closed > 0, 'close()')
    t.equal(closed, 1)
    await until(() => errors.length > 0, 'the error log')
    t.match(errors.join(''), /database went away/)
  })
}

t.test('curl --compressed reads every encoding, whole and streamed', async (t) => {
  const big = text(3 * 1024 * 1024)
  const app = routes({
    '/page': () => ({ headers: [['Content-Type', 'text/html']], body: [PAGE] }),
    '/stream': () => ({
      headers: [['Content-Type', 'text/plain']],
      body: (async function* () {
        for (let i = 0; i < big.length; i += 100_000) yield big.slice(i, i + 100_000)
      })(),
    }),
  })
  const { port, errors } = await listen(t, 'postern', compression()(app))
  const run = promisify(execFile)
  for (const encoding of ['br', 'gzip', 'deflate']) {
    for (const [path, original] of [
      ['/page', PAGE],
      ['/stream', big],
    ] as const) {
      const url = `http://127.0.0.1:${port}${path}`
      const { stdout } = await run('curl', ['-s', '--compressed', '-H', `Accept-Encoding: ${encoding}`, '--max-time', '20', url], {
        encoding: 'buffer',
        maxBuffer: 64 * 1024 * 1024,
      })
      t.equal(stdout.toString('utf8'), original, `curl --compressed (${encoding}) ${path}`)
    }
  }
  const headers = await run('curl', ['-s', '--compressed', '-o', '/dev/null', '-D', '-', `http://127.0.0.1:${port}/page`], { encoding: 'utf8' })
  t.match(headers.stdout, /content-encoding: br/i, 'curl offers br; the server prefers it')
  t.same(errors, [])
})

t.test('options: encodings, level, brotliQuality and filter', async (t) => {
  const app = routes({
    '/page': () => ({ headers: [['Content-Type', 'text/plain']], body: [PAGE] }),
    '/bytes': () => ({ headers: [['Content-Type', 'image/bmp']], body: [PAGE] }),
  })
  const gzipOnly = await listen(t, 'postern', compression({ encodings: ['gzip'] })(app))
  const br = await request(gzipOnly.port, 'GET', '/page', { 'Accept-Encoding': 'br' })
  t.equal(header(br, 'content-encoding'), undefined, 'br not offered')
  const both = await request(gzipOnly.port, 'GET', '/page', { 'Accept-Encoding': 'br, gzip' })
  t.equal(header(both, 'content-encoding'), 'gzip')

  const deflateFirst = await listen(t, 'postern', compression({ encodings: ['deflate', 'gzip'] })(app))
  const tie = await request(deflateFirst.port, 'GET', '/page', { 'Accept-Encoding': 'gzip, deflate' })
  t.equal(header(tie, 'content-encoding'), 'deflate', 'the listed order breaks ties')

  const fast = await listen(t, 'postern', compression({ level: 0, brotliQuality: 0 })(app))
  const best = await listen(t, 'postern', compression({ level: 9, brotliQuality: 11 })(app))
  for (const encoding of ['gzip', 'br'] as const) {
    const a = await request(fast.port, 'GET', '/page', { 'Accept-Encoding': encoding })
    const b = await request(best.port, 'GET', '/page', { 'Accept-Encoding': encoding })
    t.ok(b.body.length < a.body.length, `${encoding}: the level is used: 0 gives ${a.body.length} bytes, the best ${b.body.length}`)
    t.equal(decode(encoding, a.body).toString(), PAGE)
    t.equal(decode(encoding, b.body).toString(), PAGE)
  }

  const seen: string[] = []
  const filtered = await listen(
    t,
    'postern',
    compression({
      filter: (type, environ) => {
        seen.push(`${type} ${environ.PATH_INFO}`)
        return type === 'image/bmp'
      },
    })(app),
  )
  const bytes = await request(filtered.port, 'GET', '/bytes', { 'Accept-Encoding': 'gzip' })
  t.equal(header(bytes, 'content-encoding'), 'gzip', 'the filter decides')
  const page = await request(filtered.port, 'GET', '/page', { 'Accept-Encoding': 'gzip' })
  t.equal(header(page, 'content-encoding'), undefined)
  t.equal(header(page, 'vary'), undefined)
  t.same(seen, ['image/bmp /bytes', 'text/plain /page'])
})

t.test('options are checked when compression() is called', async (t) => {
  t.throws(() => compression({ encodings: [] }), /`encodings` must be a non-empty list of "br", "gzip", "deflate"/)
  t.throws(() => compression({ encodings: ['gzip', 'zstd' as 'gzip'] }), /unknown encoding "zstd"; supported: br, gzip, deflate/)
  t.throws(() => compression({ encodings: ['gzip', 'gzip'] }), /encoding "gzip" is listed twice/)
  t.throws(() => compression({ threshold: -1 }), /`threshold` must be a whole number of bytes, 0 or more, got -1/)
  t.throws(() => compression({ threshold: '1kb' as unknown as number }), /`threshold` must be a whole number of bytes/)
  t.throws(() => compression({ level: 10 }), /`level` must be an integer from -1 to 9, got 10/)
  t.throws(() => compression({ brotliQuality: 12 }), /`brotliQuality` must be an integer from 0 to 11, got 12/)
  t.throws(() => compression({ filter: 'text/*' as unknown as () => boolean }), /`filter` must be a function/)
  t.throws(() => compression({ treshold: 10 } as CompressionOptions), /unknown option "treshold"; known options are encodings, threshold/)
  t.throws(() => compression(null as unknown as CompressionOptions), /options must be an object/)
  t.doesNotThrow(() => compression({ encodings: ['gzip'], threshold: 0, level: -1, brotliQuality: 0 }))
})

// ── In the framework ────────────────────────────────────────────────────────

t.test('framework: app.use(compression()) compresses routes\u2019 values and streams, with CORS beside it', async (t) => {
  const app = postern()
  app.use(cors({ origin: ['https://app.example'] }), compression())
  const rows = Array.from({ length: 300 }, (_, i) => ({ id: i, name: `row ${i}` }))
  app.get('/rows', () => rows)
  app.get('/small', () => ({ ok: true }))
  app.get('/report', (_req, reply) => {
    reply.header('cache-control', 'no-transform')
    return rows
  })
  // No type set: the framework types the stream by its first chunk, after the middleware saw the body.
  app.get('/lines', () =>
    (async function* () {
      for (let i = 0; i < 2000; i++) yield `line ${i}\n`
    })(),
  )
  const { port } = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())

  const res = await request(port, 'GET', '/rows', { 'Accept-Encoding': 'gzip, deflate, br', Origin: 'https://app.example' })
  t.equal(header(res, 'content-encoding'), 'br')
  t.match(header(res, 'content-type'), /^application\/json/)
  t.same(JSON.parse(decode('br', res.body).toString()), rows)
  t.equal(header(res, 'vary'), 'Accept-Encoding, Origin')
  t.equal(header(res, 'access-control-allow-origin'), 'https://app.example')

  const viaFetch = await fetch(`http://127.0.0.1:${port}/rows`)
  t.equal(viaFetch.headers.get('content-encoding'), 'gzip', 'fetch asks for gzip and deflate')
  t.same(await viaFetch.json(), rows, 'and reads it back')

  const small = await request(port, 'GET', '/small', { 'Accept-Encoding': 'gzip' })
  t.equal(header(small, 'content-encoding'), undefined, 'a small JSON body is sent as is')
  t.equal(small.body.toString(), '{"ok":true}')
  t.equal(header(small, 'vary'), 'Accept-Encoding, Origin')

  const report = await request(port, 'GET', '/report', { 'Accept-Encoding': 'gzip' })
  t.equal(header(report, 'content-encoding'), undefined, 'a route that says no-transform')

  const lines = await request(port, 'GET', '/lines', { 'Accept-Encoding': 'gzip' })
  t.equal(header(lines, 'content-encoding'), 'gzip')
  t.equal(header(lines, 'content-type'), 'text/plain; charset=utf-8', 'typed by its first chunk')
  t.equal(decode('gzip', lines.body).toString(), Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join(''))

  const head = await request(port, 'HEAD', '/rows', { 'Accept-Encoding': 'gzip' })
  t.equal(head.status, 200)
  t.equal(header(head, 'content-encoding'), undefined)
  t.equal(head.body.length, 0)

  const missing = await request(port, 'GET', '/nope', { 'Accept-Encoding': 'gzip' })
  t.equal(missing.status, 404)
  t.equal(header(missing, 'content-encoding'), undefined, 'the small 404 body is under the threshold')
})

t.test('framework: a late-typed synchronous stream and a stream the client leaves', async (t) => {
  const app = postern()
  app.use(compression())
  let closes = 0
  app.get('/sync', () =>
    (function* () {
      for (let i = 0; i < 500; i++) yield `row ${i}\n`
    })(),
  )
  app.get('/async-lines', () =>
    (async function* () {
      for (let i = 0; i < 500; i++) yield `row ${i}\n`
    })(),
  )
  app.get('/empty', (_req, reply) => {
    reply.type('text/plain')
    return (async function* () {})()
  })
  app.get('/endless', () => {
    const gen = (async function* () {
      for (;;) yield randomBytes(16 * 1024).toString('base64')
    })()
    return Object.assign(gen, { close: () => void closes++ })
  })
  const { port } = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const rowsText = Array.from({ length: 500 }, (_, i) => `row ${i}\n`).join('')
  const sync = await request(port, 'GET', '/sync', { 'Accept-Encoding': 'deflate' })
  t.equal(header(sync, 'content-encoding'), 'deflate')
  t.equal(decode('deflate', sync.body).toString(), rowsText)
  const syncPlain = await request(port, 'GET', '/sync')
  t.equal(header(syncPlain, 'content-encoding'), undefined)
  t.equal(header(syncPlain, 'vary'), 'Accept-Encoding')
  t.equal(header(syncPlain, 'content-length'), String(rowsText.length), 'passed on still synchronous: the server knows its length')
  t.equal(syncPlain.body.toString(), rowsText)
  const asyncPlain = await request(port, 'GET', '/async-lines')
  t.equal(header(asyncPlain, 'content-encoding'), undefined, 'no Accept-Encoding: the late stream passes as it is')
  t.equal(header(asyncPlain, 'vary'), 'Accept-Encoding')
  t.equal(asyncPlain.body.toString(), rowsText)
  const empty = await request(port, 'GET', '/empty', { 'Accept-Encoding': 'gzip' })
  t.equal(empty.status, 200)
  t.equal(header(empty, 'content-encoding'), undefined, 'an empty late stream is not compressed')
  t.equal(empty.body.length, 0)

  await new Promise<void>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/endless', headers: { 'accept-encoding': 'gzip' } }, (res) => {
      t.equal(res.headers['content-encoding'], 'gzip')
      res.once('data', () => {
        req.destroy()
        resolve()
      })
    })
    req.on('error', () => {})
  })
  await until(() => closes > 0, 'close()')
  const again = await request(port, 'GET', '/sync')
  t.equal(again.status, 200)
  t.equal(closes, 1)
})

t.test('a second startResponse without an error, while the response is held, is refused as the server refuses it', async (t) => {
  const { GatewayViolation } = await import('../../lib/gateway/rules.js')
  for (const kind of SERVERS) {
    const caught: unknown[] = []
    const twice: GatewayApp = (_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']])
      try {
        startResponse('201 Created', [['Content-Type', 'text/plain']])
      } catch (error) {
        caught.push(error)
        throw error
      }
      return [PAGE]
    }
    const { port, errors } = await listen(t, kind, compression()(twice))
    const res = await request(port, 'GET', '/', { 'Accept-Encoding': 'gzip' })
    t.equal(res.status, 500, `${kind}: answered 500, as without compression`)
    t.equal(caught.length, 1)
    t.ok(caught[0] instanceof GatewayViolation, `${kind}: the server's own GatewayViolation`)
    t.equal((caught[0] as InstanceType<typeof GatewayViolation>).rule, 'start-response-order')
    t.match(errors.join('\n'), /\[start-response-order\] startResponse called a second time without an error/, `${kind}: logged`)
    const again = await request(port, 'GET', '/', { 'Accept-Encoding': 'gzip' })
    t.equal(again.status, 500, `${kind}: the server keeps answering`)
  }
})

t.test('legacy write(), a replaced response and validate(): the gateway rules hold on both sides', async (t) => {
  const violations: string[] = []
  const app = routes({
    '/write': () => ({ headers: [['Content-Type', 'text/plain']], body: [] }),
    '/page': () => ({ headers: [['Content-Type', 'text/plain']], body: [PAGE] }),
    '/stream': () => ({
      headers: [['Content-Type', 'text/plain']],
      body: (async function* () {
        yield PAGE
        yield PAGE
      })(),
    }),
  })
  const writing: GatewayApp = (environ, startResponse) => {
    if (environ.PATH_INFO === '/write') {
      const write = startResponse('200 OK', [['Content-Type', 'text/plain']])
      write(PAGE)
      return ['!']
    }
    if (environ.PATH_INFO === '/replaced') {
      startResponse('200 OK', [['Content-Type', 'application/octet-stream']])
      const write = startResponse('503 Service Unavailable', [['Content-Type', 'text/plain']], new Error('changed my mind'))
      write('busy, ')
      return ['try later']
    }
    return app(environ, startResponse)
  }
  const { validate } = await import('../../lib/gateway/validate.js')
  const checked = validate(compression()(validate(writing, { onViolation: (v) => void violations.push(`app: ${v.message}`) })), {
    onViolation: (v) => void violations.push(`compression: ${v.message}`),
  })
  const { port, errors } = await listen(t, 'postern', checked)
  const gz = { 'Accept-Encoding': 'gzip' }
  const written = await request(port, 'GET', '/write', gz)
  t.equal(header(written, 'content-encoding'), undefined, 'write() output is sent as it is written')
  t.equal(header(written, 'vary'), 'Accept-Encoding')
  t.equal(written.body.toString(), `${PAGE}!`)
  const replaced = await request(port, 'GET', '/replaced', gz)
  t.equal(replaced.status, 503, 'the replacement is the response')
  t.equal(replaced.body.toString(), 'busy, try later')
  for (const path of ['/page', '/stream']) {
    const res = await request(port, 'GET', path, gz)
    t.equal(header(res, 'content-encoding'), 'gzip')
    t.ok(decode('gzip', res.body).toString().startsWith(PAGE))
  }
  t.same(violations, [], 'no rule of the interface broken by the app or the middleware')
  t.same(errors, [])
})
