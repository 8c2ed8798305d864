/**
 * Microbenchmarks (mitata), run with `npm run bench -- --micro` (add
 * `--filter <regexp>` to pick benchmarks, `--format markdown|json`):
 *
 * - request parsing: postern's parser against Node's own llhttp binding on
 *   the same bytes (small GET, browser-like GET, chunked POST, 10 pipelined);
 * - environ building from a parsed head;
 * - router lookup;
 * - JSON serialization: JSON.stringify against fast-json-stringify;
 * - framework dispatch of scenario 2 without a socket: the app called as a
 *   function with a fresh environ and a minimal startResponse.
 *
 * Each parser is checked on the bytes first, so a benchmark never times a
 * parser that stopped at an error.
 */
import { bench, do_not_optimize, group, run, summary } from 'mitata'
import { parseArgs } from 'node:util'
import type { Body, Environ, GatewayApp, StartResponse, Write } from '../lib/gateway/spec.js'
import { buildEnviron, type ConnectionInfo } from '../lib/gateway/environ.js'
import { EMPTY_INPUT } from '../lib/gateway/empty-input.js'
import { stderrStream } from '../lib/gateway/errors.js'
import { DEFAULTS } from '../lib/server/options.js'
import { RequestParser, parseHead, type ParserHandler, type RequestHead } from '../lib/server/parser.js'
import { compileSerializers } from '../plugins/json.js'
import type { Serializer } from '../plugins/response.js'
import { createRouter } from '../plugins/router.js'
import { frameworkApp } from './peers/postern-routes.js'
import { gatewayApp } from './peers/postern-gateway.js'
import { llhttpBinding, type LlhttpBinding } from './fuzz-llhttp.js'
import { ECHO_BODY, ECHO_DOCUMENT, ECHO_SCHEMA, HELLO_SCHEMA, JSON_BODY } from './scenarios.js'

// ── The requests ────────────────────────────────────────────────────────────

const SMALL_GET = 'GET /hello HTTP/1.1\r\nHost: localhost:3000\r\n\r\n'
const BROWSER_GET = [
  'GET /users/42/profile?tab=activity&page=2 HTTP/1.1',
  'Host: www.example.com',
  'Connection: keep-alive',
  'sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"',
  'sec-ch-ua-mobile: ?0',
  'sec-ch-ua-platform: "Linux"',
  'Upgrade-Insecure-Requests: 1',
  'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
  'Sec-Fetch-Site: same-origin',
  'Sec-Fetch-Mode: navigate',
  'Sec-Fetch-Dest: document',
  'Referer: https://www.example.com/users/42',
  'Accept-Encoding: gzip, deflate, br, zstd',
  'Accept-Language: en-GB,en;q=0.9,fr;q=0.8',
  'Cookie: session=3f9a1c0e7b2d4e6f8a0b1c2d3e4f5a6b; theme=dark; _ga=GA1.1.123456789.1700000000',
  '',
  '',
].join('\r\n')
function chunkedPost(): string {
  const head = 'POST /echo HTTP/1.1\r\nHost: localhost:3000\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'
  let body = ''
  for (let i = 0; i < ECHO_BODY.length; i += 256) {
    const piece = ECHO_BODY.slice(i, i + 256)
    body += `${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`
  }
  return `${head + body}0\r\n\r\n`
}
const PIPELINED = 'GET /hello HTTP/1.1\r\nHost: localhost:3000\r\nAccept: application/json\r\n\r\n'.repeat(10)

interface Sample {
  name: string
  bytes: Buffer
  /** How many requests the bytes hold. */
  requests: number
}
const SAMPLES: Sample[] = [
  { name: 'small GET', bytes: Buffer.from(SMALL_GET), requests: 1 },
  { name: 'browser-like GET (14 headers)', bytes: Buffer.from(BROWSER_GET), requests: 1 },
  { name: 'chunked POST (1 KB in 4 chunks)', bytes: Buffer.from(chunkedPost()), requests: 1 },
  { name: '10 pipelined GETs', bytes: Buffer.from(PIPELINED), requests: 10 },
]

// ── The parsers ─────────────────────────────────────────────────────────────

/** A parser driven on one connection's bytes; `feed` returns how many requests completed. */
interface Driver {
  feed(bytes: Buffer): number
}

function posternDriver(): Driver {
  let done = 0
  let failure: Error | null = null
  const handler: ParserHandler = {
    onHead(head: RequestHead) {
      do_not_optimize(head)
    },
    onBody(chunk) {
      do_not_optimize(chunk)
    },
    onBodyEnd() {
      done++ // also called for a request without a body, right after onHead
    },
    onError(error) {
      failure = error
    },
  }
  const parser = new RequestParser(DEFAULTS, handler)
  return {
    feed(bytes) {
      done = 0
      parser.execute(bytes)
      if (failure !== null) throw failure
      return done
    },
  }
}

function llhttpDriver(binding: LlhttpBinding): Driver {
  const { HTTPParser } = binding
  const parser = new HTTPParser()
  parser.initialize(HTTPParser.REQUEST, {}, 0, 0)
  let done = 0
  parser[HTTPParser.kOnMessageBegin] = () => {}
  parser[HTTPParser.kOnHeaders] = (headers, url) => do_not_optimize([headers, url])
  parser[HTTPParser.kOnHeadersComplete] = (major, minor, headers, method, url) => do_not_optimize([major, minor, headers, method, url])
  parser[HTTPParser.kOnBody] = (chunk) => do_not_optimize(chunk)
  parser[HTTPParser.kOnMessageComplete] = () => {
    done++
  }
  parser[HTTPParser.kOnExecute] = () => {}
  return {
    feed(bytes) {
      done = 0
      const result = parser.execute(bytes)
      if (result instanceof Error) throw result
      return done
    },
  }
}

function checked(name: string, driver: Driver, sample: Sample): Driver {
  for (let i = 0; i < 3; i++) {
    const n = driver.feed(sample.bytes)
    if (n !== sample.requests) throw new Error(`${name} parsed ${n} of ${sample.requests} requests in "${sample.name}"`)
  }
  return driver
}

// ── Environ, router, serializers, dispatch ──────────────────────────────────

const INFO: ConnectionInfo = {
  serverName: '127.0.0.1',
  serverPort: '3000',
  remoteAddr: '127.0.0.1',
  remotePort: '54321',
  scheme: 'http',
  errors: stderrStream,
  multiprocess: false,
}

function head(raw: string): RequestHead {
  const buf = Buffer.from(raw)
  return parseHead(buf, 0, buf.length, DEFAULTS)
}

const noWrite: Write = () => {}
let lastStatus = ''
const startResponse: StartResponse = (status, headers) => {
  lastStatus = status
  do_not_optimize(headers)
  return noWrite
}

/** Calls a gateway app and touches its (synchronous) body, as a server would. */
function call(app: GatewayApp, environ: Environ): void {
  const body = app(environ, startResponse) as Body
  if (!Array.isArray(body)) throw new Error('expected a synchronous array body')
  do_not_optimize(body[0])
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { filter: { type: 'string' }, format: { type: 'string' } }, strict: false })
  const llhttp = llhttpBinding()

  for (const sample of SAMPLES) {
    const postern = checked('postern', posternDriver(), sample)
    const node = checked('llhttp', llhttpDriver(llhttp), sample)
    summary(() => {
      group(`parse: ${sample.name} (${sample.bytes.length} bytes)`, () => {
        bench('postern RequestParser', () => postern.feed(sample.bytes))
        bench("llhttp (Node's binding)", () => node.feed(sample.bytes))
      })
    })
  }

  const small = head(SMALL_GET)
  const browser = head(BROWSER_GET)
  group('environ: buildEnviron from a parsed head', () => {
    bench('small GET (1 header)', () => do_not_optimize(buildEnviron(small.method, small.target, small.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0', small.headers, INFO, EMPTY_INPUT)))
    bench('browser-like GET (14 headers)', () =>
      do_not_optimize(buildEnviron(browser.method, browser.target, browser.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0', browser.headers, INFO, EMPTY_INPUT)),
    )
  })

  const ok: GatewayApp = (_e, start) => {
    start('200 OK', [])
    return []
  }
  const router = createRouter()
  for (const path of [
    '/',
    '/hello',
    '/echo',
    '/stream',
    '/users',
    '/users/:id',
    '/users/:id/posts',
    '/users/:id/posts/:post',
    '/posts/:id',
    '/static/*',
    '/api/v1/items/:id',
    '/api/v1/items/:id/reviews',
  ])
    router.get(path, ok)
  router.post('/echo', ok)
  if (router.find('GET', '/users/42/posts/7') === null) throw new Error('router: /users/42/posts/7 not found')
  group('router: find among 13 routes', () => {
    bench('static /hello', () => do_not_optimize(router.find('GET', '/hello')))
    bench('params /users/42/posts/7', () => do_not_optimize(router.find('GET', '/users/42/posts/7')))
    bench('miss /nowhere', () => do_not_optimize(router.find('GET', '/nowhere')))
  })

  // The serializers the framework compiles from a route's response schema (fast-json-stringify).
  const compiled = (schema: Record<string, unknown>): Serializer => {
    const serializer = compileSerializers({ 200: schema })(200)
    if (serializer === undefined) throw new Error('no serializer compiled')
    return serializer
  }
  const helloFast = compiled(HELLO_SCHEMA)
  const echoFast = compiled(ECHO_SCHEMA)
  if (echoFast(ECHO_DOCUMENT) !== ECHO_BODY) throw new Error('fast-json-stringify output differs from JSON.stringify')
  summary(() => {
    group('serialize {"hello":"world"}', () => {
      bench('JSON.stringify', () => do_not_optimize(JSON.stringify(JSON_BODY)))
      bench('fast-json-stringify (schema)', () => do_not_optimize(helloFast(JSON_BODY)))
    })
  })
  summary(() => {
    group('serialize the 1 KB echo document', () => {
      bench('JSON.stringify', () => do_not_optimize(JSON.stringify(ECHO_DOCUMENT)))
      bench('fast-json-stringify (schema)', () => do_not_optimize(echoFast(ECHO_DOCUMENT)))
    })
  })

  const hello = head('GET /hello HTTP/1.1\r\nHost: localhost:3000\r\nAccept: application/json\r\n\r\n')
  const framework = await frameworkApp('json')
  const bare = gatewayApp('json')
  for (const [name, app] of [
    ['framework', framework],
    ['bare', bare],
  ] as const) {
    call(app, buildEnviron(hello.method, hello.target, hello.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0', hello.headers, INFO, EMPTY_INPUT))
    if (lastStatus !== '200 OK') throw new Error(`${name} app answered ${lastStatus} for GET /hello`)
  }
  summary(() => {
    group('dispatch scenario 2 (GET /hello JSON), no socket, fresh environ each call', () => {
      bench('buildEnviron only (baseline)', () =>
        do_not_optimize(buildEnviron(hello.method, hello.target, hello.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0', hello.headers, INFO, EMPTY_INPUT)),
      )
      bench('bare gateway app', () => call(bare, buildEnviron(hello.method, hello.target, hello.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0', hello.headers, INFO, EMPTY_INPUT)))
      bench('postern framework app', () => call(framework, buildEnviron(hello.method, hello.target, hello.minor === 1 ? 'HTTP/1.1' : 'HTTP/1.0', hello.headers, INFO, EMPTY_INPUT)))
    })
  })

  const format = values['format']
  await run({
    colors: process.stdout.isTTY === true,
    ...(typeof values['filter'] === 'string' ? { filter: new RegExp(values['filter']) } : {}),
    ...(format === 'markdown' || format === 'json' ? { format } : {}),
  })
}
