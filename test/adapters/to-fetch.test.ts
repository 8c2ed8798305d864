/**
 * toFetch: a postern app as a Fetch handler answers as on postern's own
 * server, in process on Node and on real Bun.serve and Deno.serve
 * processes: same status, headers and bytes; bodies stream both ways;
 * errors become 500s or cut responses; close() is called when the client
 * leaves.
 */
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { toFetch } from '../../lib/adapters/fetch.js'
import { serve, type Teardown } from '../helpers/server.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const adapterSource = path.join(root, 'lib/adapters/to-fetch.ts')

/**
 * The app under test, as plain JavaScript so that Node, Bun and Deno all
 * load the very same file. `onClose` reports closed bodies (Bun and Deno
 * print them, for the test to read).
 */
const APP_SOURCE = `
const text = [['Content-Type', 'text/plain; charset=utf-8']]
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
let onClose = () => {}
export function setOnClose(fn) { onClose = fn }
const KEYS = ['REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'REQUEST_URI', 'CONTENT_TYPE', 'CONTENT_LENGTH', 'SERVER_PROTOCOL', 'SERVER_NAME', 'SERVER_PORT', 'REMOTE_ADDR', 'HTTP_HOST', 'HTTP_X_MULTI']
export function app(environ, startResponse) {
  const input = environ['gateway.input']
  switch (environ.PATH_INFO) {
    case '/hello':
      startResponse('200 OK', [...text, ['X-Custom', 'yes'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']])
      return ['hello ', 'world']
    case '/echo':
      startResponse('200 OK', [['Content-Type', environ.CONTENT_TYPE || 'application/octet-stream'], ['X-Input-Length', String(input.length)]])
      return (async function* () { for await (const chunk of input) yield chunk })()
    case '/stream':
      startResponse('200 OK', text)
      return (async function* () { for (let i = 0; i < 5; i++) { await sleep(2); yield 'part ' + i + '\\n' } })()
    case '/env/a b':
    case '/env': {
      const out = {}
      for (const key of KEYS) out[key] = environ[key]
      out.url_scheme = environ['gateway.url_scheme']
      out['input.length'] = input.length
      // Keys a server fills lazily (Bun's client address) are still plain keys: listed, copied, assignable.
      out.listed = Object.keys(environ).includes('REMOTE_ADDR') && Object.keys(environ).includes('REMOTE_PORT')
      out.copied = { ...environ }.REMOTE_ADDR
      environ.REMOTE_ADDR = '10.0.0.1'
      out.assigned = environ.REMOTE_ADDR
      startResponse('200 OK', [['Content-Type', 'application/json']])
      return [JSON.stringify(out)]
    }
    case '/throw':
      throw new Error('boom')
    case '/late':
      startResponse('200 OK', text)
      return (async function* () { yield 'partial'; await sleep(1); throw new Error('late boom') })()
    case '/infinite': {
      startResponse('200 OK', text)
      let stop = false
      return {
        async *[Symbol.asyncIterator]() { while (!stop) { await sleep(5); yield 'tick\\n' } },
        close() { stop = true; onClose('/infinite') },
      }
    }
    case '/limit':
      return input.bytes(8).then(() => { startResponse('200 OK', text); return ['fits'] })
    case '/replace':
      startResponse('200 OK', text)
      try { throw new Error('changed my mind') } catch (error) { startResponse('503 Service Unavailable', text, error) }
      return ['replaced']
    case '/no-content':
      startResponse('204 No Content', [['X-Custom', 'none']])
      return []
    case '/bad-header':
      startResponse('200 OK', [['X-Bad', 'a\\r\\nInjected: yes']])
      return ['never sent']
    case '/hop':
      startResponse('200 OK', [['Connection', 'close']])
      return ['never sent']
    case '/wrong-length':
      startResponse('200 OK', [['Content-Length', '5']])
      return ['0123456789']
    default:
      startResponse('404 Not Found', text)
      return ['not found']
  }
}
`

const ENTRY = {
  bun: (port0: string) => `
import { toFetch } from ${JSON.stringify(adapterSource)}
import { app, setOnClose } from './app.mjs'
setOnClose((path) => console.log('CLOSED ' + path))
const errors = { write: (m) => console.log('ERROR ' + JSON.stringify(m)), flush() {} }
const server = Bun.serve({ port: ${port0}, hostname: '127.0.0.1', fetch: toFetch(app, { errors }) })
console.log('PORT ' + server.port)
`,
  deno: (port0: string) => `
import { toFetch } from ${JSON.stringify(adapterSource)}
import { app, setOnClose } from './app.mjs'
setOnClose((path) => console.log('CLOSED ' + path))
const errors = { write: (m) => console.log('ERROR ' + JSON.stringify(m)), flush() {} }
Deno.serve({ port: ${port0}, hostname: '127.0.0.1', onListen: ({ port }) => console.log('PORT ' + port) }, toFetch(app, { errors }))
`,
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'postern-to-fetch-'))
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
fs.writeFileSync(path.join(dir, 'app.mjs'), APP_SOURCE)
const sampleModule = (await import(pathToFileURL(path.join(dir, 'app.mjs')).href)) as { app: GatewayApp; setOnClose(fn: (path: string) => void): void }
const sample = sampleModule.app

/** A runtime process serving the app; its stdout lines are kept for CLOSED/ERROR reports. */
interface Runtime {
  port: number
  lines: string[]
  waitFor(line: string): Promise<boolean>
}

async function startRuntime(t: Teardown, name: 'bun' | 'deno'): Promise<Runtime | string> {
  const binary = path.join(root, 'node_modules/.bin', name)
  if (!fs.existsSync(binary)) return `${binary} is missing`
  const entry = path.join(dir, `${name}-entry.mjs`)
  fs.writeFileSync(entry, ENTRY[name]('0'))
  const args = name === 'bun' ? ['run', entry] : ['run', '--quiet', '--allow-net', '--allow-read', '--allow-env', '--unstable-sloppy-imports', '--no-lock', '--no-check', entry]
  let child: ChildProcess
  try {
    child = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } })
  } catch (error) {
    return `${name} cannot run: ${String(error)}`
  }
  t.teardown(() => {
    if (child.exitCode === null) child.kill()
  })
  const lines: string[] = []
  const waiters = new Set<() => void>()
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  let buffered = ''
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString()
    const parts = buffered.split('\n')
    buffered = parts.pop()!
    lines.push(...parts)
    for (const w of [...waiters]) w()
  })
  const waitFor = (line: string, timeout = 5000): Promise<boolean> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (lines.some((l) => l.startsWith(line))) finish(true)
      }
      const timer = setTimeout(() => finish(false), timeout)
      const finish = (ok: boolean): void => {
        clearTimeout(timer)
        waiters.delete(check)
        child.off('exit', onExit)
        resolve(ok)
      }
      const onExit = (): void => finish(lines.some((l) => l.startsWith(line)))
      child.once('exit', onExit)
      waiters.add(check)
      check()
    })
  const error = once(child, 'error').then(([e]) => e as Error)
  const ready = await Promise.race([waitFor('PORT ', 15_000), error.then(() => false)])
  if (!ready) return `${name} did not start: ${stderr.slice(0, 500) || 'no output'}`
  const port = Number(lines.find((l) => l.startsWith('PORT '))!.slice(5))
  return { port, lines, waitFor }
}

/** What a user relies on in a response: status, app headers and bytes (or that the body failed). */
async function view(response: Response): Promise<Record<string, unknown>> {
  const headers: Record<string, string | null> = {}
  for (const name of ['content-type', 'content-length', 'x-custom', 'x-input-length']) headers[name] = response.headers.get(name)
  let body: string
  try {
    body = await response.text()
  } catch {
    body = '<failed: the response was cut>'
  }
  return { status: response.status, headers, cookies: response.headers.getSetCookie(), body }
}

function uploadStream(parts: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder()
  return new ReadableStream({
    async pull(controller) {
      const part = parts.shift()
      if (part === undefined) controller.close()
      else {
        await new Promise((resolve) => setTimeout(resolve, 2))
        controller.enqueue(encoder.encode(part))
      }
    },
  })
}

type Ask = (path: string, init?: RequestInit & { duplex?: 'half' }) => Promise<Response>

const CASES: Array<[name: string, path: string, init?: () => RequestInit & { duplex?: 'half' }]> = [
  ['hello', '/hello'],
  ['head', '/hello', () => ({ method: 'HEAD' })],
  ['stream', '/stream'],
  ['echo', '/echo', () => ({ method: 'POST', body: 'hello world', headers: { 'content-type': 'text/x-test' } })],
  ['echo streamed upload', '/echo', () => ({ method: 'POST', body: uploadStream(['one ', 'two ', 'three']), duplex: 'half', headers: { 'content-type': 'text/x-test' } })],
  ['env', '/env/a%20b?x=1%202&y', () => ({ headers: { 'x-multi': '1, 2' } })],
  ['throw', '/throw'],
  ['late', '/late'],
  ['limit', '/limit', () => ({ method: 'POST', body: '01234567890123456789' })],
  ['replace', '/replace'],
  ['no content', '/no-content'],
  ['bad header', '/bad-header'],
  ['hop-by-hop', '/hop'],
  ['wrong length', '/wrong-length'],
  ['not found', '/nope'],
]

/** Checks that `target` answers every case as postern's server does. */
async function compare(t: Test, target: Ask, baseline: Ask, portOf: { target: number; baseline: number }): Promise<void> {
  for (const [name, urlPath, init] of CASES) {
    const expected = await view(await baseline(urlPath, init?.()))
    const actual = await view(await target(urlPath, init?.()))
    if (name === 'env') {
      const e = JSON.parse(String(expected['body'])) as Record<string, unknown>
      const a = JSON.parse(String(actual['body'])) as Record<string, unknown>
      // Only the port and Host differ: each server listens on its own.
      t.same(a, { ...e, SERVER_PORT: String(portOf.target), HTTP_HOST: `127.0.0.1:${portOf.target}` }, 'env: same environ')
      t.match(
        a,
        {
          REQUEST_METHOD: 'GET',
          PATH_INFO: '/env/a b',
          QUERY_STRING: 'x=1%202&y',
          REQUEST_URI: '/env/a%20b?x=1%202&y',
          HTTP_X_MULTI: '1, 2',
          REMOTE_ADDR: '127.0.0.1',
          listed: true,
          copied: '127.0.0.1',
          assigned: '10.0.0.1',
          url_scheme: 'http',
          'input.length': 0,
        },
        'env: the CGI variables',
      )
      continue
    }
    if (name.startsWith('echo')) {
      // A streamed body's framing is the server's choice: Bun frames a
      // short stream with Content-Length, postern with chunked.
      for (const v of [actual, expected]) delete (v['headers'] as Record<string, unknown>)['content-length']
    }
    t.same(actual, expected, `${name}: same status, headers and body`)
  }
}

function over(port: number): Ask {
  return (urlPath, init) => fetch(`http://127.0.0.1:${port}${urlPath}`, init)
}

/** Streams GET /infinite, reads the first tick, then drops the connection. */
async function dropMidStream(port: number): Promise<void> {
  const req = http.get({ host: '127.0.0.1', port, path: '/infinite' })
  const [res] = (await once(req, 'response')) as [http.IncomingMessage]
  await once(res, 'data')
  req.destroy()
}

const baselineErrors: string[] = []
const postern = await serve(t, sample, { errors: { write: (m) => void baselineErrors.push(m), flush() {} } })

t.test('in process on Node: same answers as postern’s server', async (t) => {
  const errors: string[] = []
  const handler = toFetch(sample, { errors: { write: (m) => void errors.push(m), flush() {} } })
  // A Node server in front of the handler is not needed: call it with Requests.
  const inProcess: Ask = (urlPath, init) => Promise.resolve(handler(new Request(`http://127.0.0.1:${postern.port}${urlPath}`, init)))
  for (const [name, urlPath, init] of CASES) {
    if (name === 'env' || name === 'late') continue // no client address / no connection to cut in process
    const expected = await view(await over(postern.port)(urlPath, init?.()))
    const actual = await view(await inProcess(urlPath, init?.()))
    if (name === 'echo') {
      // Only the client adds Content-Length when it sends a string body:
      // a Request made in process has none, so the length is unknown.
      t.equal((actual['headers'] as Record<string, unknown>)['x-input-length'], 'null')
      ;(actual['headers'] as Record<string, unknown>)['x-input-length'] = '11'
    }
    const wireLength = (expected['headers'] as Record<string, unknown>)['content-length']
    const ownLength = (actual['headers'] as Record<string, unknown>)['content-length']
    if (typeof wireLength === 'string' && name !== 'head' && ownLength === null) {
      // A whole body's length is the host's to send, as for any `new Response(body)`
      // (asserted on the wire on Bun and Deno below); in process the bytes say it.
      t.equal(String(Buffer.byteLength(actual['body'] as string)), wireLength, `${name}: the body has the length postern's server sent`)
      ;(actual['headers'] as Record<string, unknown>)['content-length'] = wireLength
    }
    t.same(actual, expected, `${name}: same status, headers and body`)
  }
  const late = await inProcess('/late')
  await t.rejects(late.text(), 'a body that fails after it started errors the stream')
  t.ok(
    errors.some((m) => m.includes('boom')),
    'app errors went to gateway.errors',
  )

  const closed = new Promise<string>((resolve) => sampleModule.setOnClose(resolve))
  const infinite = await inProcess('/infinite')
  const reader = infinite.body!.getReader()
  t.equal(new TextDecoder().decode((await reader.read()).value), 'tick\n')
  await reader.cancel()
  t.equal(await closed, '/infinite', 'cancelling the response stream closes the body')
})

for (const name of ['bun', 'deno'] as const) {
  t.test(`on ${name === 'bun' ? 'Bun.serve' : 'Deno.serve'}: same answers as postern’s server`, async (t) => {
    const runtime = await startRuntime(t, name)
    if (typeof runtime === 'string') {
      t.skip(runtime, () => {})
      return
    }
    await compare(t, over(runtime.port), over(postern.port), { target: runtime.port, baseline: postern.port })
    t.ok(await runtime.waitFor('ERROR "postern: app error: Error: boom'), 'app errors went to gateway.errors')
    await dropMidStream(runtime.port)
    t.ok(await runtime.waitFor('CLOSED /infinite'), 'close() was called after the client went away')
  })
}

t.test('in process: a GET or HEAD is given no body to read, unless its headers declare one', async (t) => {
  const { validate } = await import('../../lib/gateway/validate.js')
  for (const method of ['GET', 'HEAD']) {
    for (const declared of [undefined, '5']) {
      const seen: { length?: number | null; contentLength?: string; violations: string[] } = { violations: [] }
      const app = validate(
        (environ, startResponse) => {
          seen.length = environ['gateway.input'].length
          seen.contentLength = environ.CONTENT_LENGTH
          startResponse('204 No Content', [])
          return []
        },
        { onViolation: (v) => seen.violations.push(v.message) },
      )
      const headers: Record<string, string> = declared === undefined ? {} : { 'content-length': declared }
      const response = await toFetch(app)(new Request('http://localhost/p', { method, headers }))
      t.equal(response.status, 204, `${method} ${declared ?? 'without a length'}: answered`)
      t.equal(seen.length, declared === undefined ? 0 : 5, `${method}: gateway.input.length agrees with the headers`)
      t.equal(seen.contentLength, declared ?? '', `${method}: CONTENT_LENGTH as sent`)
      t.same(seen.violations, [], `${method}: validate() finds nothing wrong`)
    }
  }
})
