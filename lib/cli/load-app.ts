/**
 * Finds the app a module exports and turns it into a gateway app: a gateway
 * app is used as it is, a Fetch handler (an object with `fetch`, like a Hono
 * app) goes through `fromFetch`, a `node:http` listener (an Express app)
 * through `fromNode`.
 */
import type { GatewayApp } from '../gateway/spec.js'

/** The kinds of app postern can serve. */
export type AppInterface = 'gateway' | 'fetch' | 'node'

/** A mistake in how postern was called: printed without a stack trace. */
export class UsageError extends Error {}

type FetchHandler = (request: Request) => Response | Promise<Response>

/** Recognises the kind of an exported value, or returns null when it is none. */
export function detectInterface(value: unknown): AppInterface | null {
  if (value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { fetch?: unknown }).fetch === 'function') {
    return 'fetch'
  }
  if (typeof value !== 'function') return null
  // Express and Connect apps are (req, res, next) functions with `handle` and `use`.
  const fn = value as { length: number; handle?: unknown; use?: unknown; listen?: unknown }
  if (fn.length === 3 || (typeof fn.handle === 'function' && typeof fn.use === 'function')) return 'node'
  return 'gateway'
}

/** Picks the export (`name`, else `default`, else `app`) and adapts it to the gateway interface. */
export async function loadApp(mod: Record<string, unknown>, file: string, name: string | undefined, iface: AppInterface | undefined): Promise<GatewayApp> {
  const names = name !== undefined ? [name] : ['default', 'app']
  const found = names.find((n) => mod[n] !== undefined)
  if (found === undefined) {
    const exported = Object.keys(mod).filter((n) => n !== '__esModule')
    const list = exported.length > 0 ? `it exports: ${exported.join(', ')}` : 'it exports nothing'
    throw new UsageError(`${file} has no export ${names.map((n) => JSON.stringify(n)).join(' or ')} (${list})`)
  }
  const value = mod[found]
  const kind = iface ?? detectInterface(value)
  if (kind === null) {
    throw new UsageError(
      `export ${JSON.stringify(found)} of ${file} is not an app: expected a gateway app (environ, startResponse) => body, a Fetch handler or a node:http listener, got ${value === null ? 'null' : typeof value}`,
    )
  }
  switch (kind) {
    case 'gateway':
      if (typeof value !== 'function') throw new UsageError(`export ${JSON.stringify(found)} of ${file} is not a function, so not a gateway app`)
      return value as GatewayApp
    case 'fetch': {
      const handler = typeof value === 'function' && typeof (value as { fetch?: unknown }).fetch !== 'function' ? (value as FetchHandler) : bindFetch(value)
      const { fromFetch } = await import('../adapters/fetch.js')
      return fromFetch(handler)
    }
    case 'node': {
      if (typeof value !== 'function') throw new UsageError(`export ${JSON.stringify(found)} of ${file} is not a function, so not a node:http listener`)
      const { fromNode } = await import('../adapters/node.js')
      return fromNode(value as Parameters<typeof fromNode>[0])
    }
  }
}

function bindFetch(value: unknown): FetchHandler {
  const target = value as { fetch: FetchHandler }
  return (request) => target.fetch(request)
}
