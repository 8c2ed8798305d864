/**
 * Serving a Fetch handler on the runtime this process runs on: `Bun.serve`
 * under Bun, `Deno.serve` under Deno, each with its defaults (what their
 * docs show for production; Bun turns its development mode off under
 * NODE_ENV=production, which the harness sets). Shared by the Bun and Deno
 * peers, so the bare, Hono and postern rows differ only in the handler.
 */
import type { RunningPeer, ServeOptions } from '../peer.js'

export type FetchHandler = (request: Request, info?: unknown) => Response | Promise<Response>

/** The part of Bun's API used here (Bun's types are not installed for Node's typecheck). */
interface BunRuntime {
  serve(options: { port: number; hostname: string; idleTimeout?: number; fetch: FetchHandler; websocket?: unknown }): {
    port: number
    stop(closeActive?: boolean): Promise<void> | void
  }
}
/** The part of Deno's API used here. */
interface DenoRuntime {
  serve(options: { port: number; hostname: string; onListen(address: { port: number }): void }, handler: FetchHandler): { shutdown(): Promise<void>; finished: Promise<void> }
}

const host = globalThis as { Bun?: BunRuntime; Deno?: DenoRuntime }

/** Which of the two runtimes runs this process, or null (Node). */
export function fetchRuntime(): 'bun' | 'deno' | null {
  return host.Bun !== undefined ? 'bun' : host.Deno !== undefined ? 'deno' : null
}

/** Serves `handler`; under Bun, `websocket` is Bun.serve's WebSocket handlers (a framework's, for its upgrades), Deno needs none. */
export async function listenFetch(handler: FetchHandler, options: ServeOptions, websocket?: unknown): Promise<RunningPeer> {
  if (host.Bun !== undefined) {
    // Bun's idleTimeout is in seconds (0 < n ≤ 255).
    const idle = options.keepAliveTimeout === undefined ? {} : { idleTimeout: Math.min(255, Math.max(1, Math.ceil(options.keepAliveTimeout / 1000))) }
    const server = host.Bun.serve({ port: options.port, hostname: options.host, ...idle, fetch: handler, ...(websocket === undefined ? {} : { websocket }) })
    return { port: server.port, close: async () => void (await server.stop(true)) }
  }
  if (host.Deno !== undefined) {
    const deno = host.Deno
    let listening!: (port: number) => void
    const port = new Promise<number>((resolve) => (listening = resolve))
    const server = deno.serve({ port: options.port, hostname: options.host, onListen: ({ port }) => listening(port) }, handler)
    return { port: await port, close: () => server.shutdown() }
  }
  throw new Error('this peer runs on Bun or Deno (bench/peer-process.ts starts it with the right binary)')
}
