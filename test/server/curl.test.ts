/**
 * A real, independent client: curl (when installed) fetches a page and
 * uploads a chunked body from stdin (`-T -`, which also sends
 * `Expect: 100-continue`).
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { serve, echoBody, json } from '../helpers/server.js'

const hasCurl = spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0

/** Runs curl asynchronously (the server runs in this process) and collects stdout. */
function curl(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('curl', args)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    if (stdin !== undefined) child.stdin.end(stdin)
    else child.stdin.end()
  })
}

if (!hasCurl) {
  t.skip('curl is not installed', () => {})
} else {
  t.test('curl GET', async (t) => {
    const s = await serve(t, echoBody)
    const r = await curl(['-sS', '--max-time', '5', '-w', '\n%{http_code}', `http://127.0.0.1:${s.port}/from-curl`])
    t.equal(r.code, 0, r.stderr)
    const [body, status] = r.stdout.split('\n')
    t.equal(status, '200')
    t.match(json(Buffer.from(body ?? '{}')), { method: 'GET', path: '/from-curl', body: '' })
  })

  t.test('curl chunked upload with -T -', async (t) => {
    const s = await serve(t, echoBody)
    const payload = 'line one\nline two\n'.repeat(500)
    const r = await curl(['-sS', '--max-time', '5', '-T', '-', `http://127.0.0.1:${s.port}/upload`], payload)
    t.equal(r.code, 0, r.stderr)
    const out = json(Buffer.from(r.stdout))
    t.equal(out.method, 'PUT')
    t.equal(out.length, null, 'sent chunked')
    t.equal(out.body, payload)
  })

  t.test('curl POST with --data and keep-alive reuse of two URLs', async (t) => {
    const s = await serve(t, echoBody)
    const url = `http://127.0.0.1:${s.port}`
    const r = await curl(['-sS', '--max-time', '5', '--data-binary', 'abc', `${url}/one`, '--next', '-sS', `${url}/two`])
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /"path":"\/one".*"body":"abc"/)
    t.match(r.stdout, /"path":"\/two"/)
  })
}
