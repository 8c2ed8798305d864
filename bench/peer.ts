/**
 * What a peer is: a module in bench/peers/ that serves one scenario route on
 * a port, and the list of peers the harness knows. Each peer runs in its own
 * child process (bench/serve.ts), so one peer's garbage, JIT state or crash
 * never touches another's numbers.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Route } from './scenarios.js'

export interface ServeOptions {
  host: string
  port: number
  /** Milliseconds an idle keep-alive connection is kept (only the memory bench sets it). */
  keepAliveTimeout?: number
}

export interface RunningPeer {
  port: number
  close(): Promise<void>
}

/** Every peer module exports `serve` of this type. */
export type Serve = (route: Route, options: ServeOptions) => Promise<RunningPeer>

export interface PeerInfo {
  /** Name on the command line (`--peers raw,node`). */
  name: string
  /** Row label in the report. */
  label: string
  /** Module file in bench/peers/. */
  file: string
  /** Repository files the peer needs; when one is missing the peer is skipped with a note. */
  requires: readonly string[]
  /** npm packages whose versions the report records. */
  packages: readonly string[]
}

export const PEERS: readonly PeerInfo[] = [
  { name: 'raw', label: 'raw socket ceiling', file: 'raw.ts', requires: [], packages: [] },
  { name: 'node', label: 'node:http (bare)', file: 'node-http.ts', requires: [], packages: [] },
  { name: 'fastify', label: 'Fastify', file: 'fastify.ts', requires: [], packages: ['fastify'] },
  { name: 'hono', label: 'Hono · @hono/node-server', file: 'hono.ts', requires: [], packages: ['hono', '@hono/node-server'] },
  { name: 'express', label: 'Express', file: 'express.ts', requires: [], packages: ['express'] },
  { name: 'postern', label: 'postern gateway app · postern server', file: 'postern-gateway.ts', requires: ['lib/server/index.ts'], packages: [] },
  { name: 'postern-app', label: 'postern framework · postern server', file: 'postern-app.ts', requires: ['lib/framework/app.ts', 'lib/server/index.ts'], packages: [] },
  { name: 'postern-node', label: 'postern framework · node:http adapter', file: 'postern-node.ts', requires: ['lib/framework/app.ts', 'lib/adapters/to-node.ts'], packages: [] },
]

/** The repository root (bench/..). */
export const ROOT = fileURLToPath(new URL('..', import.meta.url))

export function peerByName(name: string): PeerInfo | undefined {
  return PEERS.find((p) => p.name === name)
}

/** Why a peer cannot run yet (a missing repository file), or null. */
export function missingFor(peer: PeerInfo): string | null {
  const missing = peer.requires.filter((file) => !existsSync(new URL(`../${file}`, import.meta.url)))
  return missing.length === 0 ? null : `not available yet: ${missing.join(', ')} missing`
}
