/**
 * The server process the live fuzzer talks to: `node --import tsx
 * bench/fuzz-server.ts`. postern's own server with its default limits and
 * timeouts, serving an app that echoes what the server made of each request,
 * so a client can check every answer: the first line is the JSON of
 * `[REQUEST_METHOD, REQUEST_URI, SERVER_PROTOCOL, trailers]`, the rest is
 * the body exactly as received.
 *
 * It prints one JSON line `{"port":…,"pid":…}` when listening and closes
 * when its stdin closes. It runs in its own process so that a crash is seen
 * as a crash, and its file descriptors and memory can be read from /proc.
 */
import type { GatewayApp } from '../lib/gateway/spec.js'
import { createServer } from '../lib/server/index.js'

/** Echoes the request line as the server understood it, the trailers and the body. */
const echoApp: GatewayApp = async (environ, startResponse) => {
  const input = environ['gateway.input']
  const body = await input.bytes()
  startResponse('200 OK', [['Content-Type', 'application/octet-stream']])
  return [`${JSON.stringify([environ.REQUEST_METHOD, environ.REQUEST_URI, environ.SERVER_PROTOCOL, input.trailers])}\n`, body]
}

async function main(): Promise<void> {
  const server = createServer(echoApp)
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' })
  process.stdout.write(`${JSON.stringify({ port, pid: process.pid })}\n`)
  process.stdin.resume()
  process.stdin.on('end', () => {
    // Connections still open after a second are the client's business: close them and go.
    const timer = setTimeout(() => {
      server.destroyConnections()
      process.exit(0)
    }, 1000)
    timer.unref()
    void server.close().then(() => process.exit(0))
  })
}

main().catch((error: unknown) => {
  process.stdout.write(`${JSON.stringify({ error: String(error) })}\n`)
  process.exit(1)
})
