/**
 * The runtime's native WebSocket server echoing every message, as its docs
 * show: `Bun.serve` with `server.upgrade(req)` and `websocket` handlers
 * under Bun, `Deno.upgradeWebSocket(req)` in a `Deno.serve` handler under
 * Deno, each with its defaults. The bare peers (fetch-bare.ts) serve the
 * WebSocket scenario with it.
 */
import type { RunningPeer, ServeOptions } from '../peer.js'
import { WS_PATH } from '../scenarios.js'

type Message = string | ArrayBuffer | Uint8Array

/** The part of Bun's API used here (Bun's types are not installed for Node's typecheck). */
interface BunWebSocketRuntime {
  serve(options: {
    port: number
    hostname: string
    fetch(request: Request, server: { upgrade(request: Request): boolean }): Response | undefined
    websocket: { message(socket: { send(message: Message): number }, message: Message): void }
  }): { port: number; stop(closeActive?: boolean): Promise<void> | void }
}

interface DenoSocket {
  binaryType: string
  send(message: Message): void
  addEventListener(type: 'message', listener: (event: { data: Message }) => void): void
}
/** The part of Deno's API used here. */
interface DenoWebSocketRuntime {
  upgradeWebSocket(request: Request): { socket: DenoSocket; response: Response }
  serve(options: { port: number; hostname: string; onListen(address: { port: number }): void }, handler: (request: Request) => Response): { shutdown(): Promise<void> }
}

const host = globalThis as { Bun?: BunWebSocketRuntime; Deno?: DenoWebSocketRuntime }

const notFound = (): Response => new Response('Not Found', { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' } })
const isEchoPath = (url: string): boolean => new URL(url).pathname === WS_PATH

export async function listenWebSocketEcho(options: ServeOptions): Promise<RunningPeer> {
  if (host.Bun !== undefined) {
    const server = host.Bun.serve({
      port: options.port,
      hostname: options.host,
      fetch(request, server) {
        if (!isEchoPath(request.url)) return notFound()
        // Bun answers 101 itself once upgrade() returns true; the handler then returns nothing.
        if (server.upgrade(request)) return undefined
        return new Response('Upgrade Required', { status: 426, headers: { upgrade: 'websocket' } })
      },
      websocket: {
        message(socket, message) {
          socket.send(message)
        },
      },
    })
    return { port: server.port, close: async () => void (await server.stop(true)) }
  }
  if (host.Deno !== undefined) {
    const deno = host.Deno
    let listening!: (port: number) => void
    const port = new Promise<number>((resolve) => (listening = resolve))
    const server = deno.serve({ port: options.port, hostname: options.host, onListen: ({ port }) => listening(port) }, (request) => {
      if (!isEchoPath(request.url)) return notFound()
      if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') return new Response('Upgrade Required', { status: 426, headers: { upgrade: 'websocket' } })
      const { socket, response } = deno.upgradeWebSocket(request)
      socket.binaryType = 'arraybuffer'
      socket.addEventListener('message', (event) => socket.send(event.data))
      return response
    })
    return { port: await port, close: () => server.shutdown() }
  }
  throw new Error('this peer runs on Bun or Deno (bench/peer-process.ts starts it with the right binary)')
}
