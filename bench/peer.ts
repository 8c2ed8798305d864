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

/**
 * Thrown by a peer's `serve` when its stack cannot serve the route (a
 * feature not there yet): the harness lists the peer as skipped for that
 * scenario, with the message as the reason, instead of failing.
 */
export class PeerUnsupported extends Error {
  override name = 'PeerUnsupported'
}

/** Every peer module exports `serve` of this type. */
export type Serve = (route: Route, options: ServeOptions) => Promise<RunningPeer>

/** The JavaScript runtime a peer's process runs on. */
export type Runtime = 'node' | 'bun' | 'deno'

export interface PeerInfo {
  /** The runtime its process runs on; the report groups peers by it. */
  runtime: Runtime
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
  /** The only routes it serves (default: every route its scenarios ask of it); the harness skips it for the others. */
  routes?: readonly Route[]
}

export const PEERS: readonly PeerInfo[] = [
  { runtime: 'node', name: 'raw', label: 'raw socket ceiling', file: 'raw.ts', requires: [], packages: [] },
  { runtime: 'node', name: 'node', label: 'node:http (bare)', file: 'node-http.ts', requires: [], packages: [] },
  { runtime: 'node', name: 'fastify', label: 'Fastify', file: 'fastify.ts', requires: [], packages: ['fastify', '@fastify/websocket'] },
  { runtime: 'node', name: 'hono', label: 'Hono · @hono/node-server', file: 'hono.ts', requires: [], packages: ['hono', '@hono/node-server'] },
  { runtime: 'node', name: 'express', label: 'Express', file: 'express.ts', requires: [], packages: ['express'] },
  { runtime: 'node', name: 'ws', label: 'ws · node:http', file: 'ws.ts', requires: [], packages: ['ws'], routes: ['ws'] },
  { runtime: 'node', name: 'postern', label: 'postern gateway app · postern server', file: 'postern-gateway.ts', requires: ['lib/server/index.ts'], packages: [] },
  {
    runtime: 'node',
    name: 'postern-app',
    label: 'postern framework · postern server',
    file: 'postern-app.ts',
    requires: ['lib/framework/app.ts', 'lib/server/index.ts'],
    packages: [],
  },
  {
    runtime: 'node',
    name: 'express-postern',
    label: 'Express · postern server (fromNode)',
    file: 'express-postern.ts',
    requires: ['lib/adapters/from-node.ts', 'lib/server/index.ts'],
    packages: ['express'],
  },
  {
    runtime: 'node',
    name: 'fastify-postern',
    label: 'Fastify · postern server (fromNode)',
    file: 'fastify-postern.ts',
    requires: ['lib/adapters/from-node.ts', 'lib/server/index.ts'],
    packages: ['fastify'],
  },
  {
    runtime: 'node',
    name: 'hono-postern',
    label: 'Hono · postern server (fromFetch)',
    file: 'hono-postern.ts',
    requires: ['lib/adapters/from-fetch.ts', 'lib/server/index.ts'],
    packages: ['hono'],
  },
  {
    runtime: 'node',
    name: 'postern-node',
    label: 'postern framework · node:http adapter',
    file: 'postern-node.ts',
    requires: ['lib/framework/app.ts', 'lib/adapters/to-node.ts'],
    packages: [],
  },
  { runtime: 'bun', name: 'bun', label: 'Bun.serve (bare)', file: 'fetch-bare.ts', requires: [], packages: [] },
  { runtime: 'bun', name: 'bun-hono', label: 'Hono · Bun.serve', file: 'fetch-hono.ts', requires: [], packages: ['hono'] },
  { runtime: 'bun', name: 'bun-elysia', label: 'Elysia · Bun.serve', file: 'elysia.ts', requires: [], packages: ['elysia'] },
  {
    runtime: 'bun',
    name: 'bun-postern',
    label: 'postern framework · Bun.serve (toFetch)',
    file: 'fetch-postern.ts',
    requires: ['lib/framework/app.ts', 'lib/adapters/to-fetch.ts'],
    packages: [],
  },
  { runtime: 'deno', name: 'deno', label: 'Deno.serve (bare)', file: 'fetch-bare.ts', requires: [], packages: [] },
  { runtime: 'deno', name: 'deno-hono', label: 'Hono · Deno.serve', file: 'fetch-hono.ts', requires: [], packages: ['hono'] },
  {
    runtime: 'deno',
    name: 'deno-postern',
    label: 'postern framework · Deno.serve (toFetch)',
    file: 'fetch-postern.ts',
    requires: ['lib/framework/app.ts', 'lib/adapters/to-fetch.ts'],
    packages: [],
  },
]

/** Display names of the runtimes, in report order. */
export const RUNTIMES: ReadonlyArray<{ runtime: Runtime; name: string; bare: string }> = [
  { runtime: 'node', name: 'Node', bare: 'node' },
  { runtime: 'bun', name: 'Bun', bare: 'bun' },
  { runtime: 'deno', name: 'Deno', bare: 'deno' },
]

/** The repository root (bench/..). */
export const ROOT = fileURLToPath(new URL('..', import.meta.url))

export function peerByName(name: string): PeerInfo | undefined {
  return PEERS.find((p) => p.name === name)
}

/** The binary of a runtime other than Node: the one from its npm package (devDependencies), or null for Node (process.execPath). */
export function runtimeBinary(runtime: Runtime): string | null {
  return runtime === 'node' ? null : fileURLToPath(new URL(`../node_modules/.bin/${runtime}`, import.meta.url))
}

/** Why a peer cannot run (its runtime's binary or a repository file missing), or null. */
export function missingFor(peer: PeerInfo): string | null {
  const binary = runtimeBinary(peer.runtime)
  if (binary !== null && !existsSync(binary)) return `${peer.runtime} is not installed: ${binary} missing (npm ci installs it)`
  const missing = peer.requires.filter((file) => !existsSync(new URL(`../${file}`, import.meta.url)))
  return missing.length === 0 ? null : `not available yet: ${missing.join(', ')} missing`
}
