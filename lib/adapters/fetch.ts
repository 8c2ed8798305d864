/**
 * The Fetch adapters, both ways: postern apps as `(Request) => Response`
 * handlers for Bun, Deno and the like (`toFetch`), and Fetch handlers such
 * as a Hono app's `fetch` on postern (`fromFetch`). Node built-ins are not
 * used here, so this module loads on every runtime with Fetch.
 */
export { toFetch, fetchEnviron, type FetchAdapterOptions, type FetchAppHandler, type FetchHandler } from './to-fetch.js'
export type { BunWebSocketHandler } from './fetch-websocket-bun.js'
export type { WebSocketOptions } from '../gateway/websocket-limits.js'
export { fromFetch, toRequest, type FetchApp } from './from-fetch.js'
