/**
 * The framework's app.ws() on Bun and Deno: examples/chat.ts served through
 * `toFetch` by a real Bun.serve and Deno.serve process
 * (test/fixtures/chat-fetch-server.ts), with the `ws` client. The page, its
 * script, the 426 for a plain GET and the 400 for a bad room answer as on
 * postern's server; two sockets of a room hear each other, a socket of
 * another room hears nothing. Skipped only when a runtime is missing
 * (node_modules/.bin/bun, node_modules/.bin/deno).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { runtimeBinary } from '../fixtures/ws-scenarios.js'

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url))

/** Starts the chat on the runtime and resolves its port; the process is killed with the test. */
async function start(t: Test, name: 'bun' | 'deno', binary: string): Promise<{ port: number; output: () => string }> {
  const entry = path.join(FIXTURES, 'chat-fetch-server.ts')
  const args =
    name === 'bun' ? ['run', entry] : ['run', '--quiet', '--allow-net', '--allow-read', '--allow-env', '--allow-sys', '--unstable-sloppy-imports', '--no-lock', '--no-check', entry]
  const child = spawn(binary, args, { cwd: FIXTURES, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const port = await new Promise<number>((resolve) => {
    const timer = setTimeout(() => resolve(0), 20_000)
    const check = () => {
      const match = /^PORT (\d+)$/m.exec(out)
      if (match !== null) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    }
    child.stdout.on('data', check)
    child.once('exit', () => resolve(0))
  })
  if (port === 0) throw new Error(`${name} did not start: ${out.slice(0, 2000)}`)
  return { port, output: () => out }
}

/** A socket that keeps every message from the moment it opens. */
async function join(t: Test, port: number, room: string): Promise<{ ws: WebSocket; received: unknown[] }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/chat/${room}`)
  t.teardown(() => ws.terminate())
  const received: unknown[] = []
  ws.on('message', (data) => received.push(JSON.parse(String(data))))
  await once(ws, 'open')
  return { ws, received }
}

/** Waits (bounded) until `list` holds `count` items. */
async function until(list: unknown[], count: number): Promise<void> {
  const end = Date.now() + 5000
  while (list.length < count && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 10))
}

for (const name of ['bun', 'deno'] as const) {
  const binary = runtimeBinary(name)
  t.test(`the chat example (app.ws) on ${name === 'bun' ? 'Bun' : 'Deno'} through toFetch`, { skip: binary === null ? `${name} is not installed` : false }, async (t) => {
    const { port, output } = await start(t, name, binary!)
    const base = `http://127.0.0.1:${port}`

    const page = await fetch(`${base}/?room=blue`)
    t.equal(page.status, 200)
    t.match(await page.text(), '<body data-room="blue">')
    t.equal((await fetch(`${base}/assets/page.js`)).status, 200, 'the page’s script')
    const plain = await fetch(`${base}/chat/blue`)
    t.equal(plain.status, 426, 'a plain GET to the ws route')
    t.equal(plain.headers.get('upgrade'), 'websocket')
    await plain.arrayBuffer()

    const ann = await join(t, port, 'blue')
    const bob = await join(t, port, 'blue')
    const eve = await join(t, port, 'green')
    ann.ws.send(JSON.stringify({ name: 'ann', text: 'hello bob' }))
    await until(bob.received, 1)
    eve.ws.send(JSON.stringify({ name: 'eve', text: 'anyone?' }))
    await until(eve.received, 1)
    bob.ws.send(JSON.stringify({ name: 'bob', text: 'hi ann' }))
    await until(ann.received, 2)
    await until(bob.received, 2)
    const blue = [
      { name: 'ann', text: 'hello bob' },
      { name: 'bob', text: 'hi ann' },
    ]
    t.same(ann.received, blue, 'ann hears the room, herself included')
    t.same(bob.received, blue, 'and so does bob')
    t.same(eve.received, [{ name: 'eve', text: 'anyone?' }], 'green hears only green')

    const bad = new WebSocket(`ws://127.0.0.1:${port}/chat/no%20spaces`)
    bad.on('error', () => {}) // terminate() on a refused handshake reports one
    const [, response] = (await once(bad, 'unexpected-response')) as [unknown, { statusCode: number }]
    t.equal(response.statusCode, 400, 'a room name the schema refuses: 400, never accepted')
    bad.terminate()

    const closed = once(ann.ws, 'close')
    ann.ws.close(1000)
    t.equal(((await closed) as [number])[0], 1000)
    t.notMatch(output(), /ERROR/, 'no app error')
  })
}
