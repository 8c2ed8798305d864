/**
 * The lesson's demo, done for real: one server, every kind of app. Each
 * example runs on postern's own server wrapped in validate(), answers its
 * greeting over a real socket (fetch, and curl where installed), and neither
 * side breaks a rule of the interface.
 */
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import type { GatewayApp } from '../../lib/gateway/spec.js'
import { createServer } from '../../lib/server/index.js'
import { validate } from '../../lib/gateway/validate.js'
import type { GatewayViolation } from '../../lib/gateway/validate.js'
import { app as bare } from '../../examples/hello.js'
import { app as framework } from '../../examples/framework-hello.js'
import { app as routerAlone } from '../../examples/router-alone.js'
import { app as hono } from '../../examples/hono-app.js'
import { app as express } from '../../examples/express-app.js'
import { app as fastify } from '../../examples/fastify-app.js'

const hasCurl = (() => {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

const examples: Array<{ name: string; app: GatewayApp; path: string; body: string; type: RegExp; routes?: false }> = [
  { name: 'bare gateway app (examples/hello.ts)', app: bare, path: '/hello', body: 'Hello, world!', type: /^text\/plain/, routes: false },
  { name: "postern's framework (examples/framework-hello.ts)", app: framework, path: '/hello', body: 'Hello, world!', type: /^text\/plain/ },
  { name: 'router and json plugin alone (examples/router-alone.ts)', app: routerAlone, path: '/hello.json', body: '{"hello":"world"}', type: /^application\/json/ },
  { name: 'Hono through fromFetch (examples/hono-app.ts)', app: hono, path: '/hello', body: 'Hello from Hono!', type: /^text\/plain/ },
  { name: 'Express through fromNode (examples/express-app.ts)', app: express, path: '/hello', body: 'Hello from Express!', type: /^text\/html/ },
  { name: 'Fastify through fromNode (examples/fastify-app.ts)', app: fastify, path: '/hello', body: 'Hello from Fastify!', type: /^text\/plain/ },
]

for (const example of examples) {
  t.test(example.name, async (t) => {
    const violations: GatewayViolation[] = []
    const server = createServer(validate(example.app, { onViolation: (v) => violations.push(v) }))
    const { port } = await server.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => server.close())
    const url = `http://127.0.0.1:${port}${example.path}`

    const res = await fetch(url)
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), example.type)
    t.equal(await res.text(), example.body)

    if (example.routes !== false) {
      const missing = await fetch(`http://127.0.0.1:${port}/no/such/page`)
      t.equal(missing.status, 404, 'an unknown path is 404 in every framework')
      await missing.arrayBuffer()
    }

    if (hasCurl) {
      // curl runs beside the server (which is in this process), never blocking it
      const { stdout: out } = await promisify(execFile)('curl', ['-s', '-i', '--max-time', '10', url], { encoding: 'latin1' })
      t.match(out, /^HTTP\/1\.1 200 OK\r\n/, 'curl sees a 200')
      t.ok(out.endsWith(`\r\n\r\n${example.body}`), 'curl sees the greeting as the whole body')
    }
    t.same(
      violations.map((v) => v.message),
      [],
      'no violation of the interface by server or app',
    )
  })
}
