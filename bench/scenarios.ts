/**
 * The benchmark scenarios and the data they share. Every peer serves the same
 * routes with the same bytes, so a difference in the table is a difference in
 * the server and framework, not in the work asked of them.
 */

/** What a peer must serve; several scenarios share one route (2, 5, 6). */
export type Route = 'text' | 'json' | 'user' | 'echo' | 'stream'

export interface Scenario {
  /** Stable id used by `--only` (`1`…`7`). */
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
  /** What the table reports: requests per second, or megabytes per second. */
  unit: 'req/s' | 'MB/s'
  /** Checks one response from a peer before it is measured; returns a problem or null. */
  check(status: number, contentType: string, body: Buffer): string | null
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
]

/** The scenarios `--quick` runs when `--only` is not given. */
export const QUICK_SCENARIOS: readonly string[] = ['2', '4']

export function scenarioById(id: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.id === id)
}
