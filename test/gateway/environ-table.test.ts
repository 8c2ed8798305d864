/**
 * One request, five ways to call an app, one environ. Each row of the table
 * below is a request written as exact bytes; it goes over a raw TCP socket to
 *
 *   1. postern's own server (lib/server),
 *   2. node:http through `toNodeListener`,
 *   3. Bun.serve through `toFetch` (a `bun` child process),
 *   4. Deno.serve through `toFetch` (a `deno` child process),
 *
 * and, as the equivalent `{ method, url, headers, body }`, to
 *
 *   5. `inject`.
 *
 * The app (test/fixtures/environ-app.ts) answers with the environ it got as
 * JSON, and every row × server is a subtest asserting that environ equals
 * the one the spec (lib/gateway/spec.ts) describes for that request, so the
 * five are identical. Where the spec is silent, postern's own server is the
 * reference; those rows say so (`reference: 'postern'`).
 *
 * Transport keys, normalised explicitly: SERVER_NAME, SERVER_PORT,
 * REMOTE_ADDR and REMOTE_PORT depend on the connection (each server listens
 * on its own port, each request comes from a fresh client port, inject has
 * no connection at all). Every row replaces them with CONNECTION when they
 * are strings (a missing or non-string one still shows as is), and the
 * `connection keys` row checks them against the socket itself: SERVER_NAME
 * the address we connected to (127.0.0.1), SERVER_PORT the listening port,
 * REMOTE_ADDR 127.0.0.1, REMOTE_PORT our socket's local port; for inject,
 * that they are present, ports as digits. HTTP_HOST is not normalised: every
 * request sends an explicit Host header, so it must be the same everywhere.
 *
 * Where the inject API cannot say what the bytes say, the row's inject form
 * is the nearest equivalent and a comment says so: repeated header lines are
 * one record entry (already joined), HTTP/1.0 goes through its `environ`
 * option, trailers cannot be sent (that cell is skipped).
 *
 * Host limitations (HOST_LIMITS below). node:http, Bun and Deno parse the
 * request before postern's code sees it, and the Fetch `Request` has no raw
 * target, protocol version, trailers or local address. Where a host hides or
 * rewrites what the bytes say, postern cannot give the spec's value, so that
 * cell asserts, instead of the row's environ, exactly what the host makes of
 * it: the row's environ with the keys the host changes set to the precise
 * values observed (or the host's own answer, when it never calls postern).
 * Every other key is still the spec's, so a regression in postern's code
 * still fails the cell; and if a host one day passes the raw value, the cell
 * fails and its entry must go. Each entry names the layer responsible and
 * what was observed there (request.url, request.method, request.body as the
 * host's handler receives them, or node's parser error). A cell where
 * postern itself decides the outcome gets no entry: it asserts the spec.
 */
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { toNodeListener } from '../../lib/adapters/node.js'
import { inject, type InjectOptions } from '../../lib/gateway/inject.js'
import type { ErrorStream } from '../../lib/gateway/spec.js'
import { environApp } from '../fixtures/environ-app.js'
import { RawClient, header } from '../helpers/raw.js'
import { serve } from '../helpers/server.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const FETCH_SERVER = path.join(root, 'test/fixtures/environ-fetch-server.ts')

/** What a transport key becomes in every row's comparison (see the top comment). */
const CONNECTION = '<connection>'
const TRANSPORT_KEYS = ['SERVER_NAME', 'SERVER_PORT', 'REMOTE_ADDR', 'REMOTE_PORT'] as const

// ---------------------------------------------------------------- the table

interface Row {
  name: string
  /** The request, byte for byte (latin1). */
  raw: string
  /** The same request for inject; a string: the reason inject cannot send it (the cell is skipped). */
  inject: InjectOptions | string
  /** The environ the app must see, or 400: answered without calling the app. */
  expect: Record<string, unknown> | 400
  /** Where the spec is silent and postern's own server is the reference. */
  reference?: 'postern'
  /** The row that checks the transport keys against the socket. */
  connection?: true
}

/** A request head (each header a line) and body, as bytes. */
function request(line: string, headers: string[], body = ''): string {
  return `${line}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${body}`
}

const HOST = 'Host: example.com'

/** The environ of a plain GET, with `over` on top; a key set to undefined must be absent. */
function environ(over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    REQUEST_METHOD: 'GET',
    SCRIPT_NAME: '',
    PATH_INFO: '/',
    QUERY_STRING: '',
    REQUEST_URI: '/',
    CONTENT_TYPE: '',
    CONTENT_LENGTH: '',
    SERVER_NAME: CONNECTION,
    SERVER_PORT: CONNECTION,
    SERVER_PROTOCOL: 'HTTP/1.1',
    REMOTE_ADDR: CONNECTION,
    REMOTE_PORT: CONNECTION,
    HTTP_HOST: 'example.com',
    'gateway.version': [1, 0],
    'gateway.url_scheme': 'http',
    'gateway.multithread': false,
    'gateway.multiprocess': false,
    'gateway.run_once': false,
    'gateway.input.length': 0,
    'gateway.input.text()': '',
    'gateway.input.trailers': [],
  }
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) delete out[key]
    else out[key] = value
  }
  return out
}

const ROWS: Row[] = [
  {
    name: 'connection keys follow the socket',
    raw: request('GET /conn HTTP/1.1', [HOST]),
    inject: { url: '/conn', headers: { Host: 'example.com' } },
    expect: environ({ PATH_INFO: '/conn', REQUEST_URI: '/conn' }),
    // SERVER_NAME is "the server's host name or address the connection came in
    // on": postern gives the local address, not the Host header.
    reference: 'postern',
    connection: true,
  },
  {
    name: 'GET with a query: QUERY_STRING not decoded, REQUEST_URI raw',
    raw: request('GET /a/b?x=1&y=%20 HTTP/1.1', [HOST]),
    inject: { url: '/a/b?x=1&y=%20', headers: { Host: 'example.com' } },
    expect: environ({ PATH_INFO: '/a/b', QUERY_STRING: 'x=1&y=%20', REQUEST_URI: '/a/b?x=1&y=%20' }),
  },
  {
    name: 'path percent-decoded as UTF-8',
    raw: request('GET /caf%C3%A9/%20x HTTP/1.1', [HOST]),
    inject: { url: '/caf%C3%A9/%20x', headers: { Host: 'example.com' } },
    expect: environ({ PATH_INFO: '/café/ x', REQUEST_URI: '/caf%C3%A9/%20x' }),
  },
  {
    name: 'encoded slash: PATH_INFO decodes it, REQUEST_URI keeps %2F',
    raw: request('GET /a%2Fb HTTP/1.1', [HOST]),
    inject: { url: '/a%2Fb', headers: { Host: 'example.com' } },
    expect: environ({ PATH_INFO: '/a/b', REQUEST_URI: '/a%2Fb' }),
  },
  {
    name: "'+' in the path is not a space, the query is not decoded",
    raw: request('GET /a+b?q=a+b%2B HTTP/1.1', [HOST]),
    inject: { url: '/a+b?q=a+b%2B', headers: { Host: 'example.com' } },
    expect: environ({ PATH_INFO: '/a+b', QUERY_STRING: 'q=a+b%2B', REQUEST_URI: '/a+b?q=a+b%2B' }),
  },
  {
    name: 'encoded ? in the path stays in PATH_INFO',
    raw: request('GET /a%3Fb?c=1 HTTP/1.1', [HOST]),
    inject: { url: '/a%3Fb?c=1', headers: { Host: 'example.com' } },
    expect: environ({ PATH_INFO: '/a?b', QUERY_STRING: 'c=1', REQUEST_URI: '/a%3Fb?c=1' }),
  },
  {
    name: "empty query: QUERY_STRING '', REQUEST_URI keeps the '?'",
    raw: request('GET /x? HTTP/1.1', [HOST]),
    inject: { url: '/x?', headers: { Host: 'example.com' } },
    expect: environ({ PATH_INFO: '/x', QUERY_STRING: '', REQUEST_URI: '/x?' }),
  },
  {
    // The spec says PATH_INFO is the decoded path, nothing about normalising it.
    name: 'dot segments are passed as sent, not resolved',
    raw: request('GET /a/../b/./c HTTP/1.1', [HOST]),
    inject: { url: '/a/../b/./c', headers: { Host: 'example.com' } },
    expect: environ({ PATH_INFO: '/a/../b/./c', REQUEST_URI: '/a/../b/./c' }),
    reference: 'postern',
  },
  {
    name: 'malformed percent-encoding: 400 without calling the app',
    raw: request('GET /bad%zz HTTP/1.1', [HOST]),
    inject: { url: '/bad%zz', headers: { Host: 'example.com' } },
    expect: 400,
  },
  {
    name: 'percent-encoding that is not UTF-8: 400 without calling the app',
    raw: request('GET /bad%FF HTTP/1.1', [HOST]),
    inject: { url: '/bad%FF', headers: { Host: 'example.com' } },
    expect: 400,
  },
  {
    // inject takes a record: the two lines are one entry, already joined.
    name: "repeated headers joined with ', '",
    raw: request('GET /many HTTP/1.1', [HOST, 'X-Many: a', 'X-Many: b']),
    inject: { url: '/many', headers: { Host: 'example.com', 'X-Many': 'a, b' } },
    expect: environ({ PATH_INFO: '/many', REQUEST_URI: '/many', HTTP_X_MANY: 'a, b' }),
  },
  {
    // Field names are case-insensitive: the two lines are one field.
    name: "repeated headers in different case joined with ', '",
    raw: request('GET /case HTTP/1.1', [HOST, 'X-Case: a', 'x-case: b', 'X-CASE: c']),
    inject: { url: '/case', headers: { Host: 'example.com', 'x-case': 'a, b, c' } },
    expect: environ({ PATH_INFO: '/case', REQUEST_URI: '/case', HTTP_X_CASE: 'a, b, c' }),
  },
  {
    name: "two Cookie headers joined with '; '",
    raw: request('GET /cookies HTTP/1.1', [HOST, 'Cookie: a=1', 'Cookie: b=2']),
    inject: { url: '/cookies', headers: { Host: 'example.com', Cookie: 'a=1; b=2' } },
    expect: environ({ PATH_INFO: '/cookies', REQUEST_URI: '/cookies', HTTP_COOKIE: 'a=1; b=2' }),
  },
  {
    // X-Under comes first, so neither "the last one wins" nor "joined" can pass.
    name: "header names with '_' are dropped",
    raw: request('GET /under HTTP/1.1', [HOST, 'X-Under: 2', 'X_Under: 1', 'X_Only: 3']),
    inject: { url: '/under', headers: { Host: 'example.com', 'X-Under': '2', X_Under: '1', X_Only: '3' } },
    expect: environ({ PATH_INFO: '/under', REQUEST_URI: '/under', HTTP_X_UNDER: '2' }),
  },
  {
    name: 'Content-Type and Content-Length go to CONTENT_*, the body is read',
    raw: request('POST /post HTTP/1.1', [HOST, 'Content-Type: text/plain', 'Content-Length: 5'], 'hello'),
    inject: { method: 'POST', url: '/post', headers: { Host: 'example.com', 'Content-Type': 'text/plain', 'Content-Length': '5' }, body: 'hello' },
    expect: environ({
      REQUEST_METHOD: 'POST',
      PATH_INFO: '/post',
      REQUEST_URI: '/post',
      CONTENT_TYPE: 'text/plain',
      CONTENT_LENGTH: '5',
      'gateway.input.length': 5,
      'gateway.input.text()': 'hello',
    }),
  },
  {
    name: "Content-Length: 0: CONTENT_LENGTH '0', input length 0",
    raw: request('POST /empty HTTP/1.1', [HOST, 'Content-Length: 0']),
    inject: { method: 'POST', url: '/empty', headers: { Host: 'example.com', 'Content-Length': '0' }, body: '' },
    expect: environ({ REQUEST_METHOD: 'POST', PATH_INFO: '/empty', REQUEST_URI: '/empty', CONTENT_LENGTH: '0' }),
  },
  {
    // Transfer-Encoding is a request header like any other: "every request
    // header but Content-Type and Content-Length" has its HTTP_* key.
    name: "chunked POST: CONTENT_LENGTH '', input length null, the body is read",
    raw: request('POST /chunked HTTP/1.1', [HOST, 'Content-Type: text/plain', 'Transfer-Encoding: chunked'], '2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n'),
    inject: { method: 'POST', url: '/chunked', headers: { Host: 'example.com', 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' }, body: 'hello' },
    expect: environ({
      REQUEST_METHOD: 'POST',
      PATH_INFO: '/chunked',
      REQUEST_URI: '/chunked',
      CONTENT_TYPE: 'text/plain',
      HTTP_TRANSFER_ENCODING: 'chunked',
      'gateway.input.length': null,
      'gateway.input.text()': 'hello',
    }),
  },
  {
    // The spec: trailers are `[name, value]` pairs, filled in once the body
    // was read. It does not say the name's case: postern keeps it as sent.
    name: 'chunked POST with a trailer: gateway.input.trailers once read',
    raw: request('POST /trailer HTTP/1.1', [HOST, 'Transfer-Encoding: chunked'], '5\r\nhello\r\n0\r\nX-Trail: t\r\n\r\n'),
    inject: 'inject has no way to send trailer fields',
    expect: environ({
      REQUEST_METHOD: 'POST',
      PATH_INFO: '/trailer',
      REQUEST_URI: '/trailer',
      HTTP_TRANSFER_ENCODING: 'chunked',
      'gateway.input.length': null,
      'gateway.input.text()': 'hello',
      'gateway.input.trailers': [['X-Trail', 't']],
    }),
    reference: 'postern',
  },
  {
    // inject has no protocol option: the version goes through its `environ` option.
    name: "HTTP/1.0 request: SERVER_PROTOCOL 'HTTP/1.0'",
    raw: request('GET /old HTTP/1.0', [HOST]),
    inject: { url: '/old', headers: { Host: 'example.com' }, environ: { SERVER_PROTOCOL: 'HTTP/1.0' } },
    expect: environ({ PATH_INFO: '/old', REQUEST_URI: '/old', SERVER_PROTOCOL: 'HTTP/1.0' }),
  },
  {
    name: 'absolute-form target: path and query from it, REQUEST_URI raw',
    raw: request('GET http://example.com:8080/p%20q?z=1 HTTP/1.1', ['Host: example.com:8080']),
    inject: { url: 'http://example.com:8080/p%20q?z=1', headers: { Host: 'example.com:8080' } },
    expect: environ({ PATH_INFO: '/p q', QUERY_STRING: 'z=1', REQUEST_URI: 'http://example.com:8080/p%20q?z=1', HTTP_HOST: 'example.com:8080' }),
  },
  {
    // RFC 9112 §3.2.2: with an absolute-form target the Host header is
    // ignored for the target's authority. The spec says nothing of it.
    name: 'absolute-form target: its authority wins over the Host header',
    raw: request('GET http://example.com:8080/p HTTP/1.1', ['Host: other.example']),
    inject: { url: 'http://example.com:8080/p', headers: { Host: 'other.example' } },
    expect: environ({ PATH_INFO: '/p', REQUEST_URI: 'http://example.com:8080/p', HTTP_HOST: 'example.com:8080' }),
    reference: 'postern',
  },
  {
    name: "asterisk-form OPTIONS *: PATH_INFO '', REQUEST_URI '*'",
    raw: request('OPTIONS * HTTP/1.1', [HOST]),
    inject: { method: 'OPTIONS', url: '*', headers: { Host: 'example.com' } },
    expect: environ({ REQUEST_METHOD: 'OPTIONS', PATH_INFO: '', REQUEST_URI: '*' }),
  },
  {
    name: 'method case preserved (methods are case-sensitive)',
    raw: request('get /lower HTTP/1.1', [HOST]),
    inject: { method: 'get', url: '/lower', headers: { Host: 'example.com' } },
    expect: environ({ REQUEST_METHOD: 'get', PATH_INFO: '/lower', REQUEST_URI: '/lower' }),
  },
  {
    // RFC 9110 §5.5: a field value has no leading or trailing whitespace;
    // whitespace inside it is part of it. inject gets the same padded values.
    name: 'header values trimmed of surrounding whitespace, inner whitespace kept',
    raw: request('GET /pad HTTP/1.1', [HOST, 'X-Pad:   v  ', 'X-Tab:\tw\t', 'X-Inner: a  b']),
    inject: { url: '/pad', headers: { Host: 'example.com', 'X-Pad': '  v  ', 'X-Tab': '\tw\t', 'X-Inner': 'a  b' } },
    expect: environ({ PATH_INFO: '/pad', REQUEST_URI: '/pad', HTTP_X_PAD: 'v', HTTP_X_TAB: 'w', HTTP_X_INNER: 'a  b' }),
  },
  {
    name: "an empty header value gives an HTTP_* key of ''",
    raw: request('GET /empty-value HTTP/1.1', [HOST, 'X-Empty:']),
    inject: { url: '/empty-value', headers: { Host: 'example.com', 'X-Empty': '' } },
    expect: environ({ PATH_INFO: '/empty-value', REQUEST_URI: '/empty-value', HTTP_X_EMPTY: '' }),
  },
]

// ---------------------------------------------------------------- host limitations

type HostName = 'node:http' | 'Bun.serve' | 'Deno.serve'
type TransportKey = (typeof TRANSPORT_KEYS)[number]

/** What one host does to one row's request before postern's code sees it. */
interface Limitation {
  row: string
  host: HostName
  /** The layer responsible, and what was observed there. */
  reason: string
  /** The environ keys the host makes differ from the row's, with the exact values the app gets. */
  environ?: Record<string, unknown>
  /** The transport keys the host makes differ from the socket's (the `connection keys` row). */
  connection?: Partial<Record<TransportKey, string>>
  /** The host answers by itself and never calls postern: 400 with an empty body, or closes without an answer. */
  answers?: 400 | 'closed'
}

const DOTS = 'dot segments are passed as sent, not resolved'
const TRAILER = 'chunked POST with a trailer: gateway.input.trailers once read'
const HTTP10 = "HTTP/1.0 request: SERVER_PROTOCOL 'HTTP/1.0'"
const ABSOLUTE = 'absolute-form target: path and query from it, REQUEST_URI raw'
const ABSOLUTE_HOST = 'absolute-form target: its authority wins over the Host header'
const ASTERISK = "asterisk-form OPTIONS *: PATH_INFO '', REQUEST_URI '*'"
const LOWER = 'method case preserved (methods are case-sensitive)'

const HOST_LIMITS: Limitation[] = [
  {
    row: 'connection keys follow the socket',
    host: 'Deno.serve',
    reason: "Deno.serve's handler info has only remoteAddr and completed, no local address: SERVER_NAME/PORT come from request.url, whose authority is the Host header",
    connection: { SERVER_NAME: 'example.com', SERVER_PORT: '80' },
  },
  {
    row: DOTS,
    host: 'Bun.serve',
    reason: 'Bun.serve resolves dot segments before the handler: request.url is http://example.com/b/c (Deno keeps /a/../b/./c)',
    environ: { PATH_INFO: '/b/c', REQUEST_URI: '/b/c' },
  },
  {
    row: TRAILER,
    host: 'Bun.serve',
    reason: "a Fetch Request has no trailers; Bun's chunked parser ends the body at the last chunk and answers the trailer line as a next request (400)",
    environ: { 'gateway.input.trailers': [] },
  },
  {
    row: TRAILER,
    host: 'Deno.serve',
    reason: 'a Fetch Request has no trailers: Deno.serve reads the trailer section and drops it (request.body gives only hello)',
    environ: { 'gateway.input.trailers': [] },
  },
  {
    row: HTTP10,
    host: 'Bun.serve',
    reason: 'a Fetch Request has no protocol version: Bun.serve hands over the same request.url, method and headers as for HTTP/1.1',
    environ: { SERVER_PROTOCOL: 'HTTP/1.1' },
  },
  {
    row: HTTP10,
    host: 'Deno.serve',
    reason: 'a Fetch Request has no protocol version: Deno.serve answers in HTTP/1.0 itself, but its Request is the same as for HTTP/1.1',
    environ: { SERVER_PROTOCOL: 'HTTP/1.1' },
  },
  {
    row: ABSOLUTE,
    host: 'Bun.serve',
    reason: 'a Fetch request.url is absolute for every request: http://example.com:8080/p%20q?z=1, as an origin-form target with that Host gives',
    environ: { REQUEST_URI: '/p%20q?z=1' },
  },
  {
    row: ABSOLUTE,
    host: 'Deno.serve',
    reason: 'a Fetch request.url is absolute for every request: http://example.com:8080/p%20q?z=1, as an origin-form target with that Host gives',
    environ: { REQUEST_URI: '/p%20q?z=1' },
  },
  {
    row: ABSOLUTE_HOST,
    host: 'Bun.serve',
    reason: "Bun.serve builds request.url from the Host header and drops the target's authority: http://other.example/p",
    environ: { REQUEST_URI: '/p', HTTP_HOST: 'other.example' },
  },
  {
    // Only the target's form is lost: Deno's request.url keeps the target's
    // authority (http://example.com:8080/p, Host: other.example), so
    // HTTP_HOST stays the spec's: taking it from the URL is toFetch's job.
    row: ABSOLUTE_HOST,
    host: 'Deno.serve',
    reason: 'a Fetch request.url is absolute for every request: http://example.com:8080/p, as an origin-form target with Host example.com:8080 gives',
    environ: { REQUEST_URI: '/p' },
  },
  {
    row: ASTERISK,
    host: 'Bun.serve',
    reason: "Bun's HTTP parser refuses the asterisk-form target itself: 400, empty body, Connection: close; the fetch handler is never called",
    answers: 400,
  },
  {
    row: ASTERISK,
    host: 'Deno.serve',
    reason:
      'Deno.serve turns * into request.url http://example.com/* and gives OPTIONS a body stream (request.body not null, reads as empty) without Content-Length or Transfer-Encoding',
    environ: { PATH_INFO: '/*', REQUEST_URI: '/*', 'gateway.input.length': null },
  },
  {
    row: LOWER,
    host: 'node:http',
    reason: "node:http's parser (llhttp) refuses a method it does not know (clientError HPE_INVALID_METHOD); node's default answer is 400, empty body",
    answers: 400,
  },
  {
    row: LOWER,
    host: 'Bun.serve',
    reason: "Bun's HTTP parser closes the connection on method get without an answer; the fetch handler is never called",
    answers: 'closed',
  },
  {
    row: LOWER,
    host: 'Deno.serve',
    reason: 'Deno.serve passes request.method get as sent but gives it a body stream (request.body not null, reads as empty) without Content-Length or Transfer-Encoding',
    environ: { 'gateway.input.length': null },
  },
]

/** The limitations by `row name + host`; a typo or a duplicate throws, so no entry silently stops applying. */
const LIMITS = new Map<string, Limitation>()
for (const limit of HOST_LIMITS) {
  const row = ROWS.find((r) => r.name === limit.row)
  if (row === undefined) throw new Error(`HOST_LIMITS: no row named ${JSON.stringify(limit.row)}`)
  const key = `${limit.row}\n${limit.host}`
  if (LIMITS.has(key)) throw new Error(`HOST_LIMITS: two entries for ${limit.host} on ${JSON.stringify(limit.row)}`)
  const kinds = [limit.environ, limit.connection, limit.answers].filter((k) => k !== undefined).length
  if (kinds === 0 || (limit.answers !== undefined && kinds > 1))
    throw new Error(`HOST_LIMITS: ${limit.host} on ${JSON.stringify(limit.row)} must say either what the host answers or which values it changes`)
  if (row.expect === 400 && limit.answers === undefined) throw new Error(`HOST_LIMITS: row ${JSON.stringify(limit.row)} expects a 400; only an answer can differ`)
  if (limit.connection !== undefined && !row.connection) throw new Error(`HOST_LIMITS: row ${JSON.stringify(limit.row)} does not check the transport keys`)
  for (const key of Object.keys(limit.environ ?? {})) {
    if ((TRANSPORT_KEYS as readonly string[]).includes(key)) throw new Error(`HOST_LIMITS: ${key} is a transport key; say it under connection`)
    if (row.expect !== 400 && JSON.stringify(limit.environ![key]) === JSON.stringify(row.expect[key]))
      throw new Error(`HOST_LIMITS: ${limit.host} on ${JSON.stringify(limit.row)}: ${key} is the row's value already`)
  }
  LIMITS.set(key, limit)
}

function limitationOf(row: Row, column: Column): Limitation | undefined {
  return LIMITS.get(`${row.name}\n${column.name}`)
}

// ---------------------------------------------------------------- the five ways

/** What one way of calling the app made of one request. */
interface Outcome {
  status: number
  /** Whether the app answered (its `X-Environ-App` header), not the server on its own. */
  appAnswered: boolean
  /** The app's JSON, when it answered. */
  environ?: Record<string, unknown>
  /** The response body as text ('' without a response). */
  body: string
  /** Why there is no response: the server closed the connection, or said nothing within 3 s. */
  noResponse?: 'closed' | 'timeout'
  /** What the transport keys must be, for the `connection keys` row. */
  connection: Record<string, string | RegExp>
  /** The response as received, for failure messages. */
  detail: string
}

interface Column {
  name: string
  /** Why the column is skipped, when it is. */
  skip?: string
  /** Why every cell of the column fails without a request (its server did not start). */
  broken?: string
  send(row: Row): Promise<Outcome>
}

/** A column that talks to a server on 127.0.0.1:`port` over a raw socket. */
function overSocket(name: string, port: number): Column {
  return {
    name,
    async send(row) {
      const client = await RawClient.connect(port, { timeout: 3000 })
      try {
        const clientPort = client.socket.localPort
        client.write(row.raw)
        const read = await client.read(1)
        const res = read.responses[0]
        const connection = { SERVER_NAME: '127.0.0.1', SERVER_PORT: String(port), REMOTE_ADDR: '127.0.0.1', REMOTE_PORT: String(clientPort) }
        if (res === undefined) {
          const noResponse = read.timedOut ? 'timeout' : 'closed'
          const why = read.timedOut ? 'no response within 3 s' : 'the connection closed without a response'
          return { status: 0, appAnswered: false, body: '', noResponse, connection, detail: `${why}; received ${JSON.stringify(read.raw.slice(0, 300))}` }
        }
        const appAnswered = header(res, 'x-environ-app') === '1'
        const text = res.body.toString('utf8')
        const outcome: Outcome = { status: res.status, appAnswered, body: text, connection, detail: `${res.status} ${res.reason}: ${text.slice(0, 300)}` }
        if (appAnswered) outcome.environ = JSON.parse(text) as Record<string, unknown>
        return outcome
      } finally {
        client.destroy()
      }
    },
  }
}

const injectColumn: Column = {
  name: 'inject',
  async send(row) {
    const options = row.inject as InjectOptions
    const res = await inject(environApp, options)
    const outcome: Outcome = {
      status: res.status,
      appAnswered: res.headers['x-environ-app'] === '1',
      body: res.body,
      // No connection: the keys must be there, the ports as digits.
      connection: { SERVER_NAME: /^.+$/, SERVER_PORT: /^\d+$/, REMOTE_ADDR: /^.+$/, REMOTE_PORT: /^\d+$/ },
      detail: `${res.status} ${res.statusText}: ${res.body.slice(0, 300)}`,
    }
    if (outcome.appAnswered) outcome.environ = res.json<Record<string, unknown>>()
    return outcome
  },
}

/** Every error a server or the app reported, shown when a cell fails. */
const reported: string[] = []
const errors: ErrorStream = { write: (m) => void reported.push(m), flush() {} }

async function posternColumn(): Promise<Column> {
  const served = await serve(t, environApp, { errors })
  return overSocket('postern', served.port)
}

async function nodeColumn(): Promise<Column> {
  const server = http.createServer(toNodeListener(environApp, { errors }))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return overSocket('node:http', (server.address() as { port: number }).port)
}

/** Starts test/fixtures/environ-fetch-server.ts under Bun or Deno; killed when the test ends. */
async function runtimeColumn(name: 'bun' | 'deno'): Promise<Column> {
  const label = name === 'bun' ? 'Bun.serve' : 'Deno.serve'
  const skipped = (why: string): Column => ({ name: label, skip: why, send: () => Promise.reject(new Error(why)) })
  const binary = path.join(root, 'node_modules/.bin', name)
  if (!fs.existsSync(binary)) return skipped(`${binary} is missing (install the devDependencies)`)
  const args =
    name === 'bun' ? ['run', FETCH_SERVER] : ['run', '--quiet', '--allow-net', '--allow-read', '--allow-env', '--unstable-sloppy-imports', '--no-lock', '--no-check', FETCH_SERVER]
  let child: ChildProcess
  try {
    child = spawn(binary, args, { cwd: os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } })
  } catch (error) {
    return skipped(`${name} cannot run: ${String(error)}`)
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 3000)))
    if ((await Promise.race([exited, late])) === 'late') {
      child.kill('SIGKILL')
      await exited
    }
    clearTimeout(timer)
  })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000)
  })
  let pending = ''
  const port = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => done(null), 20_000)
    const done = (value: number | null): void => {
      clearTimeout(timer)
      resolve(value)
    }
    child.stdout!.on('data', (d: Buffer) => {
      const lines = (pending + d.toString()).split('\n')
      pending = lines.pop()!
      for (const line of lines) {
        if (line.startsWith('PORT ')) done(Number(line.slice(5)))
        else if (line.startsWith('ERROR ')) reported.push(`${name}: ${line.slice(6)}`)
      }
    })
    child.once('error', () => done(null))
    child.once('exit', () => done(null))
  })
  // A runtime that is installed but does not start is a failure of every cell, not a skip.
  if (port === null) {
    const why = `${name} did not start: ${stderr.replace(/\x1b\[[0-9;]*m/g, '').slice(0, 1000) || 'no output'}`
    return { name: label, broken: why, send: () => Promise.reject(new Error(why)) }
  }
  return overSocket(label, port)
}

// ---------------------------------------------------------------- the test

/** The environ with the transport keys normalised (see the top comment). */
function normalised(environ: Record<string, unknown>): Record<string, unknown> {
  const out = { ...environ }
  for (const key of TRANSPORT_KEYS) if (typeof out[key] === 'string') out[key] = CONNECTION
  return out
}

async function checkCell(t: Test, column: Column, row: Row): Promise<void> {
  if (column.broken !== undefined) {
    t.fail(column.broken)
    return
  }
  const limit = limitationOf(row, column)
  const before = reported.length
  const outcome = await column.send(row)
  const diagnostics = { response: outcome.detail, errors: reported.slice(before) }
  if (limit !== undefined) t.comment(`host limitation: ${limit.reason}`)
  if (limit?.answers === 'closed') {
    t.equal(outcome.noResponse, 'closed', `${column.name} closes the connection without an answer`, diagnostics)
    return
  }
  if (row.expect === 400 || limit?.answers === 400) {
    const who = row.expect === 400 ? '' : ` by ${column.name} itself (postern's own 400 carries a message)`
    t.equal(outcome.status, 400, `answers 400${who}`, diagnostics)
    if (row.expect !== 400) t.equal(outcome.body, '', 'with an empty body', diagnostics)
    t.notOk(outcome.appAnswered, 'without calling the app', outcome.environ === undefined ? diagnostics : { environ: outcome.environ })
    return
  }
  t.equal(outcome.status, 200, 'the app answers', diagnostics)
  if (outcome.environ === undefined) {
    t.fail('the app was not called', diagnostics)
    return
  }
  if (limit?.environ === undefined) t.strictSame(normalised(outcome.environ), row.expect, 'the environ the spec describes')
  else {
    const expected = { ...row.expect }
    for (const [key, value] of Object.entries(limit.environ)) {
      if (value === undefined) delete expected[key]
      else expected[key] = value
    }
    t.strictSame(normalised(outcome.environ), expected, `the environ the spec describes, but ${Object.keys(limit.environ).join(', ')} as ${column.name} gives them`)
  }
  if (row.connection) {
    const actual: Record<string, unknown> = {}
    for (const key of TRANSPORT_KEYS) actual[key] = outcome.environ[key]
    if (column === injectColumn) t.match(actual, outcome.connection, 'the transport keys are there')
    else if (limit?.connection === undefined) t.strictSame(actual, outcome.connection, 'the transport keys follow the socket')
    else
      t.strictSame(
        actual,
        { ...outcome.connection, ...limit.connection },
        `the transport keys follow the socket, but ${Object.keys(limit.connection).join(', ')} as ${column.name} gives them`,
      )
  }
}

const started = Date.now()
const columns: Column[] = [await posternColumn(), await nodeColumn(), ...(await Promise.all([runtimeColumn('bun'), runtimeColumn('deno')])), injectColumn]
t.comment(`servers started in ${Date.now() - started} ms`)

for (const row of ROWS) {
  const title = row.reference === 'postern' ? `${row.name} (spec silent: postern is the reference)` : row.name
  await t.test(title, async (t) => {
    for (const column of columns) {
      const skip = column.skip ?? (column === injectColumn && typeof row.inject === 'string' ? row.inject : undefined)
      if (skip !== undefined) {
        await t.test(column.name, { skip }, () => {})
        continue
      }
      const name = limitationOf(row, column) === undefined ? column.name : `${column.name} (host limitation)`
      await t.test(name, (t) => checkCell(t, column, row))
    }
  })
}
