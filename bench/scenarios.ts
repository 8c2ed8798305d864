/**
 * The benchmark scenarios and the data they share. Every peer serves the same
 * routes with the same bytes, so a difference in the table is a difference in
 * the server and framework, not in the work asked of them.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { gunzipSync } from 'node:zlib'
import { sign } from 'cookie-signature'

/** What a peer must serve; several scenarios share one route (2, 5, 6). */
export type Route = 'text' | 'json' | 'user' | 'echo' | 'stream' | 'plugins' | 'ws'

/** Checks one response (status, `Content-Type`, body as received, every header); returns a problem or null. */
export type Check = (status: number, contentType: string, body: Buffer, headers: IncomingHttpHeaders) => string | null

/** A further request the check sends before a peer is measured, with its own headers and check. */
export interface Probe {
  /** What it proves, for the report when it fails. */
  what: string
  /** Request headers (instead of the scenario's). */
  headers: Record<string, string>
  check: Check
}

export interface Scenario {
  /** Stable id used by `--only` (`1`…`8`). */
  id: string
  /** Short title for the table. */
  title: string
  route: Route
  method: 'GET' | 'POST'
  /** Request target, with query. */
  path: string
  /** Request headers the client sends (besides Host). */
  headers: Record<string, string>
  body?: string
  /** Overrides the run's `--pipelining`. */
  pipelining?: number
  /** Overrides the run's `--connections`. */
  connections?: number
  /** What the table reports: requests per second, megabytes per second, or WebSocket echoes per second. */
  unit: 'req/s' | 'MB/s' | 'msg/s'
  /**
   * `websocket`: the scenario upgrades to a WebSocket (bench/ws-check.ts checks
   * it, bench/ws-tool.ts loads it); `check` then sees the handshake's answer.
   */
  protocol?: 'http' | 'websocket'
  /** Checks one response from a peer before it is measured; returns a problem or null. */
  check: Check
  /** Further requests checked before measuring (e.g. a bad signature is refused): a peer that skips work cannot look fast. */
  probes?: readonly Probe[]
  /** The peers that serve this scenario's route (default: all); the others are skipped for it, with a note. */
  peers?: readonly string[]
}

export const TEXT_BODY = 'Hello, world!'
export const JSON_BODY = { hello: 'world' } as const

/** Response schema for scenario 2 (for peers that serialize from a schema). */
export const HELLO_SCHEMA = {
  type: 'object',
  properties: { hello: { type: 'string' } },
  required: ['hello'],
  additionalProperties: false,
} as const

/** Scenario 3: the user id comes from the path, the field list from the query. */
export const USER_ID = '42'
export const USER_FIELDS = 'name,email,created'
export interface UserReply {
  id: string
  fields: string[]
}
/** What every peer computes for scenario 3 (the check compares with it). */
export function userReply(id: string, fields: string | undefined): UserReply {
  return { id, fields: fields ? fields.split(',') : [] }
}
export const USER_SCHEMA = {
  type: 'object',
  properties: { id: { type: 'string' }, fields: { type: 'array', items: { type: 'string' } } },
  required: ['id', 'fields'],
  additionalProperties: false,
} as const

/** Scenario 4: a ~1 KB JSON document, validated on the way in and serialized on the way out. */
export const ECHO_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    name: { type: 'string', maxLength: 200 },
    email: { type: 'string', maxLength: 200 },
    active: { type: 'boolean' },
    score: { type: 'number' },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 50 },
    address: {
      type: 'object',
      properties: {
        street: { type: 'string' },
        city: { type: 'string' },
        zip: { type: 'string' },
        country: { type: 'string' },
      },
      required: ['street', 'city', 'zip', 'country'],
      additionalProperties: false,
    },
    items: {
      type: 'array',
      maxItems: 100,
      items: {
        type: 'object',
        properties: { sku: { type: 'string' }, qty: { type: 'integer' }, price: { type: 'number' } },
        required: ['sku', 'qty', 'price'],
        additionalProperties: false,
      },
    },
  },
  required: ['id', 'name', 'email', 'active', 'score', 'tags', 'address', 'items'],
  additionalProperties: false,
} as const

export const ECHO_DOCUMENT = {
  id: 12345,
  name: 'Augusta Ada King, Countess of Lovelace',
  email: 'ada@example.com',
  active: true,
  score: 98.25,
  tags: ['analytical', 'engine', 'notes', 'bernoulli', 'poetical', 'science', 'london', 'mathematics'],
  address: { street: '12 St James Square', city: 'London', zip: 'SW1Y 4JH', country: 'United Kingdom' },
  items: Array.from({ length: 15 }, (_, i) => ({ sku: `SKU-${String(1000 + i)}-ABCDEF`, qty: i + 1, price: 10.5 * (i + 1) })),
}
export const ECHO_BODY = JSON.stringify(ECHO_DOCUMENT)

/** Scenario 7: 1 MiB sent as 16 chunks of 64 KiB, without a Content-Length. */
export const STREAM_CHUNK_SIZE = 64 * 1024
export const STREAM_CHUNKS = 16
export const STREAM_CHUNK: Buffer = Buffer.alloc(STREAM_CHUNK_SIZE, 'postern ')

/** The stream body, chunk by chunk (each peer wraps it in its own stream type). */
export function* streamChunks(): Generator<Buffer> {
  for (let i = 0; i < STREAM_CHUNKS; i++) yield STREAM_CHUNK
}

/**
 * Scenario 8: what a browser's cross-origin `fetch(url, { credentials: 'include' })`
 * asks of an API behind CORS, signed cookies and compression. The session
 * cookie is signed with {@link COOKIE_SECRET} (cookie-signature, as every
 * peer's cookie plugin) and percent-encoded as a server sets it, so the
 * browser sends it back so.
 */
export const PLUGINS_PATH = '/plugins/hello'
export const CORS_ORIGIN = 'http://app.example'
export const COOKIE_SECRET = 'bench-cookie-secret-of-32-bytes!'
export const SESSION_USER = 'user-42'
export const SESSION_COOKIE = encodeURIComponent(sign(SESSION_USER, COOKIE_SECRET))
/** The cookie every peer sets, with the attributes both cookie plugins add by default (`SameSite=Lax`). */
export const SEEN_COOKIE = 'seen=1; Path=/; HttpOnly; SameSite=Lax'
/**
 * The request's headers. A browser sends `Accept-Encoding: gzip, deflate, br`;
 * both postern's compression() and @fastify/compress answer that with br by
 * default, so the scenario asks for gzip alone: one encoding for every peer,
 * at zlib's default level 6 (both plugins' default), and a body the check can
 * gunzip. Peers keep their default encoding lists.
 */
export const PLUGINS_HEADERS: Readonly<Record<string, string>> = {
  origin: CORS_ORIGIN,
  cookie: `session=${SESSION_COOKIE}; theme=dark`,
  'accept-encoding': 'gzip',
  accept: 'application/json',
}

export interface CatalogItem {
  id: number
  name: string
  price: number
  tags: string[]
  inStock: boolean
}
export interface PluginsReply {
  user: string
  items: CatalogItem[]
}
/** The items every peer sends: 1,711 bytes of JSON with the user, above both plugins' 1 KiB threshold (307 bytes gzipped). */
export const CATALOG: readonly CatalogItem[] = Array.from({ length: 16 }, (_, i) => ({
  id: 1000 + i,
  name: `Catalog item number ${i + 1}`,
  price: Math.round((4.5 + i * 3.25) * 100) / 100,
  tags: ['bench', i % 2 === 0 ? 'even' : 'odd', `group-${i % 4}`],
  inStock: i % 3 !== 0,
}))
/** What every peer answers for a valid session: the user from the signed cookie, and the catalog. */
export function pluginsReply(user: string): PluginsReply {
  return { user, items: CATALOG as CatalogItem[] }
}
export const UNAUTHORIZED = { error: 'invalid session' } as const
export const UNAUTHORIZED_SCHEMA = {
  type: 'object',
  properties: { error: { type: 'string' } },
  required: ['error'],
  additionalProperties: false,
} as const
export const PLUGINS_SCHEMA = {
  type: 'object',
  properties: {
    user: { type: 'string' },
    items: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'integer' },
          name: { type: 'string' },
          price: { type: 'number' },
          tags: { type: 'array', items: { type: 'string' } },
          inStock: { type: 'boolean' },
        },
        required: ['id', 'name', 'price', 'tags', 'inStock'],
        additionalProperties: false,
      },
    },
  },
  required: ['user', 'items'],
  additionalProperties: false,
} as const

/** The header's values, comma-split, trimmed and lower-cased (`Vary: Origin, accept-encoding` → origin, accept-encoding). */
function tokens(value: string | string[] | undefined): string[] {
  const joined = Array.isArray(value) ? value.join(',') : (value ?? '')
  return joined
    .split(',')
    .map((v) => v.trim().toLowerCase())
    .filter(Boolean)
}

/** A `Set-Cookie` value as its name=value and the set of its attributes (lower case), so attribute order does not matter. */
function cookieShape(value: string): string {
  const [pair = '', ...attributes] = value.split(';').map((part) => part.trim())
  return [pair, ...attributes.map((a) => a.toLowerCase()).sort()].join('; ')
}

/** Scenario 8's check: CORS with credentials, the cookie set, gzip, and the JSON inside. */
export function checkPlugins(status: number, contentType: string, body: Buffer, headers: IncomingHttpHeaders): string | null {
  if (status !== 200) return `status ${status}`
  if (!isJson(contentType)) return `content-type ${JSON.stringify(contentType)}`
  if (headers['access-control-allow-origin'] !== CORS_ORIGIN) return `access-control-allow-origin ${JSON.stringify(headers['access-control-allow-origin'])}`
  if (headers['access-control-allow-credentials'] !== 'true') return `access-control-allow-credentials ${JSON.stringify(headers['access-control-allow-credentials'])}`
  const vary = tokens(headers.vary)
  if (!vary.includes('origin') || !vary.includes('accept-encoding')) return `vary ${JSON.stringify(headers.vary)} lacks Origin or Accept-Encoding`
  const cookies = headers['set-cookie'] ?? []
  if (cookies.length !== 1 || cookieShape(cookies[0] ?? '') !== cookieShape(SEEN_COOKIE)) return `set-cookie ${JSON.stringify(cookies)}, want ${JSON.stringify(SEEN_COOKIE)}`
  if (headers['content-encoding'] !== 'gzip') return `content-encoding ${JSON.stringify(headers['content-encoding'])}`
  let json: string
  try {
    json = gunzipSync(body).toString('utf8')
  } catch (error) {
    return `body is not gzip: ${error instanceof Error ? error.message : String(error)}`
  }
  return checkJson(pluginsReply(SESSION_USER))(200, contentType, Buffer.from(json))
}

/** A session cookie that fails its signature, or none: the peer must answer 401 (so it really checks). */
function refused(status: number): string | null {
  return status === 401 ? null : `status ${status}, want 401`
}
const TAMPERED_COOKIE = `session=${encodeURIComponent(sign('user-1', 'another secret'))}; theme=dark`

function isJson(contentType: string): boolean {
  return contentType.toLowerCase().startsWith('application/json')
}

function checkJson(expected: unknown) {
  const want = JSON.stringify(expected)
  return (status: number, contentType: string, body: Buffer): string | null => {
    if (status !== 200) return `status ${status}`
    if (!isJson(contentType)) return `content-type ${JSON.stringify(contentType)}`
    let got: unknown
    try {
      got = JSON.parse(body.toString('utf8'))
    } catch {
      return `body is not JSON: ${JSON.stringify(body.subarray(0, 80).toString())}`
    }
    return JSON.stringify(got) === want ? null : `body ${JSON.stringify(got).slice(0, 120)}`
  }
}

/** Scenario 9: the WebSocket echo route and its message (64 bytes of text). */
export const WS_PATH = '/ws'
export const WS_MESSAGE = 'postern websocket echo: 64 bytes of text, sent and echoed back. '
/** The peers that serve scenario 9: a WebSocket server of each stack (the others have none). */
export const WS_PEERS: readonly string[] = ['ws', 'fastify', 'postern', 'postern-app', 'postern-node', 'bun', 'bun-hono', 'bun-postern', 'deno', 'deno-hono', 'deno-postern']

/** Scenario 9's check of the handshake's answer: 101 with the upgrade headers (the ws client has checked Sec-WebSocket-Accept). */
export function checkUpgrade(status: number, _contentType: string, _body: Buffer, headers: IncomingHttpHeaders): string | null {
  if (status !== 101) return `status ${status}, want 101 Switching Protocols`
  if (headers.upgrade?.toLowerCase() !== 'websocket') return `upgrade ${JSON.stringify(headers.upgrade)}`
  return null
}

const JSON_GET_HEADERS = { accept: 'application/json' }

export const SCENARIOS: readonly Scenario[] = [
  {
    id: '1',
    title: 'GET /hello text',
    route: 'text',
    method: 'GET',
    path: '/hello',
    headers: {},
    unit: 'req/s',
    check: (status, contentType, body) =>
      status !== 200
        ? `status ${status}`
        : !contentType.toLowerCase().startsWith('text/plain')
          ? `content-type ${JSON.stringify(contentType)}`
          : body.toString() !== TEXT_BODY
            ? `body ${JSON.stringify(body.toString().slice(0, 80))}`
            : null,
  },
  { id: '2', title: 'GET /hello JSON', route: 'json', method: 'GET', path: '/hello', headers: JSON_GET_HEADERS, unit: 'req/s', check: checkJson(JSON_BODY) },
  {
    id: '3',
    title: 'GET /users/:id?fields',
    route: 'user',
    method: 'GET',
    path: `/users/${USER_ID}?fields=${USER_FIELDS}`,
    headers: JSON_GET_HEADERS,
    unit: 'req/s',
    check: checkJson(userReply(USER_ID, USER_FIELDS)),
  },
  {
    id: '4',
    title: 'POST /echo 1 KB JSON',
    route: 'echo',
    method: 'POST',
    path: '/echo',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: ECHO_BODY,
    unit: 'req/s',
    check: checkJson(ECHO_DOCUMENT),
  },
  {
    id: '5',
    title: 'GET /hello JSON, pipelined 10',
    route: 'json',
    method: 'GET',
    path: '/hello',
    headers: JSON_GET_HEADERS,
    pipelining: 10,
    unit: 'req/s',
    check: checkJson(JSON_BODY),
  },
  {
    id: '6',
    title: 'GET /hello JSON, 1000 conns',
    route: 'json',
    method: 'GET',
    path: '/hello',
    headers: JSON_GET_HEADERS,
    connections: 1000,
    unit: 'req/s',
    check: checkJson(JSON_BODY),
  },
  {
    id: '7',
    title: 'GET /stream 1 MB',
    route: 'stream',
    method: 'GET',
    path: '/stream',
    headers: {},
    unit: 'MB/s',
    check: (status, _contentType, body) => (status !== 200 ? `status ${status}` : body.length !== STREAM_CHUNK_SIZE * STREAM_CHUNKS ? `body of ${body.length} bytes` : null),
  },
  {
    id: '8',
    title: 'GET JSON: CORS + cookies + gzip',
    route: 'plugins',
    method: 'GET',
    path: PLUGINS_PATH,
    headers: PLUGINS_HEADERS,
    unit: 'req/s',
    check: checkPlugins,
    probes: [
      { what: 'a session cookie signed with another secret is refused', headers: { ...PLUGINS_HEADERS, cookie: TAMPERED_COOKIE }, check: refused },
      { what: 'a request without a session cookie is refused', headers: { ...PLUGINS_HEADERS, cookie: 'theme=dark' }, check: refused },
    ],
    // The peers with CORS, cookie and compression plugins. The raw ceiling's one precomputed answer cannot pass the probes.
    peers: ['fastify', 'postern', 'postern-app', 'postern-node'],
  },
  {
    id: '9',
    title: 'WebSocket echo 64 B',
    route: 'ws',
    protocol: 'websocket',
    method: 'GET',
    path: WS_PATH,
    headers: {},
    body: WS_MESSAGE,
    unit: 'msg/s',
    check: checkUpgrade,
    peers: WS_PEERS,
  },
]

/** The scenarios `--quick` runs when `--only` is not given. */
export const QUICK_SCENARIOS: readonly string[] = ['2', '4']

export function scenarioById(id: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.id === id)
}
