/**
 * HTTPS: with `tls: { key, cert }` the server speaks TLS and tells the app
 * `gateway.url_scheme: 'https'`. The certificate is a fresh self-signed one
 * made with openssl; without openssl the test is skipped.
 */
import t from 'tap'
import https from 'node:https'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { header } from '../helpers/raw.js'
import { serve, echoEnviron, json } from '../helpers/server.js'

function makeCert(): { key: Buffer; cert: Buffer } | null {
  const dir = mkdtempSync(join(tmpdir(), 'postern-tls-'))
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      { stdio: 'ignore' },
    )
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }
  } catch {
    return null
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const creds = makeCert()

if (!creds) {
  t.skip('openssl is not available to make a test certificate', () => {})
} else {
  t.test('https.get: 200 and url_scheme https', async (t) => {
    const s = await serve(t, echoEnviron, { tls: creds })
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port: s.port, path: '/secure?q=1', rejectUnauthorized: false, agent: false }, (res) => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (d: string) => (body += d))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        })
        .on('error', reject)
    })
    t.equal(status, 200)
    const env = json(Buffer.from(body))
    t.equal(env['gateway.url_scheme'], 'https')
    t.equal(env.PATH_INFO, '/secure')
    t.equal(env.QUERY_STRING, 'q=1')
  })

  t.test('raw TLS connection: keep-alive and pipelining work over TLS', async (t) => {
    const s = await serve(t, echoEnviron, { tls: creds })
    const c = await s.connect({ tls: true })
    c.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n')
    const r = await c.read(2)
    t.same(
      r.responses.map((x) => json(x.body).PATH_INFO),
      ['/1', '/2'],
      r.raw,
    )
    t.ok(header(r.responses[0]!, 'date'))
    c.write('GET /bad HTTP/1.1\r\n\r\n')
    const bad = await c.read()
    t.equal(bad.responses[0]?.status, 400, 'missing Host refused over TLS too')
    t.ok(await c.closed())
  })

  t.test('plain HTTP to the TLS port gets no HTTP response', async (t) => {
    const s = await serve(t, echoEnviron, { tls: creds })
    const r = await s.exchange('GET / HTTP/1.1\r\nHost: x\r\n\r\n', { timeout: 1500 }).catch((err: unknown) => ({ responses: [], raw: String(err) }))
    t.equal(r.responses.length, 0, 'not served in clear text')
  })
}
