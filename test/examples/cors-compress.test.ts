/**
 * examples/cors-compress.ts as a cross-origin page and curl use it: in this
 * process under validate(), and through the `postern` command as its doc
 * comment says to run it.
 */
import { execFile, spawn } from 'node:child_process'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import t from 'tap'
import { app } from '../../examples/cors-compress.js'
import { header } from '../helpers/raw.js'
import { serveValidated } from '../helpers/server.js'
import { rawRequest } from '../fixtures/proxy-client.js'

const PAGE_ORIGIN = 'http://localhost:5173'

t.test('examples/cors-compress.ts: preflight, compressed JSON with CORS headers, a compressed stream, a PUT', async (t) => {
  const { port, errors } = await serveValidated(t, app)
  const pre = await rawRequest({
    port,
    head: `OPTIONS /api/notes/3 HTTP/1.1\r\nHost: x\r\nOrigin: ${PAGE_ORIGIN}\r\nAccess-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: content-type`,
  })
  t.equal(pre.status, 204)
  t.equal(header(pre, 'access-control-allow-origin'), PAGE_ORIGIN)
  t.equal(header(pre, 'access-control-allow-credentials'), 'true')
  t.equal(header(pre, 'access-control-allow-headers'), 'content-type')
  t.equal(header(pre, 'access-control-max-age'), '600')

  const list = await rawRequest({ port, head: `GET /api/notes HTTP/1.1\r\nHost: x\r\nOrigin: ${PAGE_ORIGIN}\r\nAccept-Encoding: gzip, deflate, br` })
  t.equal(header(list, 'content-encoding'), 'br')
  t.equal(header(list, 'access-control-expose-headers'), 'X-Total-Count')
  t.equal(header(list, 'x-total-count'), '50')
  t.equal(header(list, 'vary'), 'Accept-Encoding, Origin')
  const notes = JSON.parse(zlib.brotliDecompressSync(list.body).toString()) as Array<{ id: number }>
  t.equal(notes.length, 50)

  const put = await fetch(`http://127.0.0.1:${port}/api/notes/3`, {
    method: 'PUT',
    headers: { Origin: 'https://shop.example.com', 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'Groceries', body: 'milk' }),
  })
  t.same(await put.json(), { id: 3, title: 'Groceries', body: 'milk' })
  t.equal(put.headers.get('access-control-allow-origin'), 'https://shop.example.com')
  const refused = await fetch(`http://127.0.0.1:${port}/api/notes`, { headers: { Origin: 'https://evil.example' } })
  t.equal(refused.headers.get('access-control-allow-origin'), null)
  await refused.arrayBuffer()

  // The feed, decoded as it arrives: the first note comes before the stream ends.
  const lines = await new Promise<string[]>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/api/feed', headers: { 'accept-encoding': 'gzip' } }, (res) => {
      t.equal(res.headers['content-encoding'], 'gzip')
      t.equal(res.headers['content-type'], 'application/x-ndjson')
      const got: string[] = []
      let firstBeforeEnd = false
      let text = ''
      const gunzip = zlib.createGunzip()
      gunzip.on('data', (d: Buffer) => {
        text += d.toString()
        if (!firstBeforeEnd && text.includes('\n') && !res.complete) firstBeforeEnd = true
      })
      gunzip.on('end', () => {
        got.push(...text.trim().split('\n'))
        t.ok(firstBeforeEnd, 'the first line arrived while the stream was still going')
        resolve(got)
      })
      gunzip.on('error', reject)
      res.pipe(gunzip)
    })
  })
  t.equal(lines.length, 50)
  t.same(JSON.parse(lines[2]!), { id: 3, title: 'Groceries', body: 'milk' })
  t.same(errors, [])
})

t.test('node bin/postern.js examples/cors-compress.ts:app serves it, curl --compressed reads it', async (t) => {
  const root = fileURLToPath(new URL('../..', import.meta.url))
  const child = spawn(process.execPath, ['bin/postern.js', 'examples/cors-compress.ts:app', '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => void child.kill('SIGTERM'))
  let out = ''
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const match = /serving .* on (\S+)/.exec(out)
      if (match !== null) resolve(match[1]!)
    })
    child.on('exit', (code) => reject(new Error(`postern exited (${code}) before serving:\n${out}`)))
  })
  const { stdout } = await promisify(execFile)('curl', ['-s', '-i', '--compressed', '--max-time', '10', '-H', `Origin: ${PAGE_ORIGIN}`, `${url}/api/notes`], {
    encoding: 'utf8',
  })
  t.match(stdout, /^HTTP\/1\.1 200 OK/)
  t.match(stdout, /\r\nContent-Encoding: br\r\n/i)
  t.match(stdout, new RegExp(`\\r\\nAccess-Control-Allow-Origin: ${PAGE_ORIGIN}\\r\\n`, 'i'))
  t.equal((JSON.parse(stdout.slice(stdout.indexOf('\r\n\r\n') + 4)) as unknown[]).length, 50)
})
