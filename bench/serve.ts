/**
 * A peer's own process: `node --import tsx bench/serve.ts <peer> <route>
 * [keepAliveMs]` (or `bun run` / `deno run` for the Bun and Deno peers, which
 * use only the Node APIs both implement: readline, process). It starts the peer on 127.0.0.1, port 0, prints one JSON
 * line `{"port":…}` on stdout, then answers commands read from stdin, one a
 * line: `mem` (process.memoryUsage after a GC when --expose-gc is on) and
 * `cpu` (process.cpuUsage). When stdin closes it closes the server and exits.
 */
import { createInterface } from 'node:readline'
import { PeerUnsupported, peerByName, type Serve } from './peer.js'
import type { Route } from './scenarios.js'

const [name = '', route = '', keepAlive] = process.argv.slice(2)

function reply(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`)
}

async function main(): Promise<void> {
  const peer = peerByName(name)
  if (peer === undefined) throw new Error(`unknown peer ${JSON.stringify(name)}`)
  const module = (await import(`./peers/${peer.file}`)) as { serve: Serve }
  const running = await module.serve(route as Route, {
    host: '127.0.0.1',
    port: 0,
    ...(keepAlive === undefined ? {} : { keepAliveTimeout: Number(keepAlive) }),
  })
  reply({ port: running.port, pid: process.pid })
  // Node and Deno expose gc() with --expose-gc; Bun has Bun.gc(true), which collects synchronously.
  const runtime = globalThis as { gc?: () => void; Bun?: { gc(sync: boolean): void } }
  const bun = runtime.Bun
  const gc = runtime.gc ?? (bun === undefined ? undefined : () => bun.gc(true))
  const lines = createInterface({ input: process.stdin })
  lines.on('line', (line) => {
    if (line === 'mem') {
      gc?.()
      reply({ mem: process.memoryUsage() })
    } else if (line === 'cpu') {
      reply({ cpu: process.cpuUsage() })
    }
  })
  lines.on('close', () => {
    const timer = setTimeout(() => process.exit(0), 2000)
    timer.unref()
    void running.close().finally(() => process.exit(0))
  })
}

main().catch((error: unknown) => {
  if (error instanceof PeerUnsupported) reply({ unsupported: error.message })
  else reply({ error: error instanceof Error ? error.message : String(error) })
  process.exit(1)
})
