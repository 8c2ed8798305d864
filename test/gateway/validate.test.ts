/**
 * validate(app): broken apps and broken servers are each caught under the
 * right rule id, and conforming apps pass through unchanged (same status,
 * headers and bytes; a sync array body stays a sync array).
 *
 * The broken servers are played by hand here: a real server that breaks the
 * rules cannot be had, and that is the point of checking them.
 */
import t from 'tap'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { readFileSync } from 'node:fs'
import type { Body, Chunk, Environ, ErrorStream, GatewayApp, GatewayInput, Headers, StartResponse } from '../../lib/gateway/spec.js'
import { GatewayError } from '../../lib/gateway/spec.js'
import { GatewayViolation, RULE_SIDE, validate } from '../../lib/gateway/validate.js'
import { GatewayViolation as RulesViolation, checkHeaders, checkStatus, chunkLength } from '../../lib/gateway/rules.js'
import { StreamInput } from '../../lib/gateway/stream-input.js'

// ---------------------------------------------------------------------------
// A hand-played server

/** A request body as a server would give it. */
function makeInput(body = ''): GatewayInput {
  const bytes = Buffer.from(body)
  return {
    async *[Symbol.asyncIterator]() {
      if (bytes.length > 0) yield bytes
    },
    async bytes() {
      return bytes
    },
    async text() {
      return bytes.toString('utf8')
    },
    length: bytes.length,
    trailers: [],
  }
}

/** A conforming environ for `GET /hello?x=1`, with `overrides` applied (`undefined` deletes a key). */
function makeEnviron(overrides: Record<string, unknown> = {}, log: string[] = []): Environ {
  const errors: ErrorStream = { write: (m) => void log.push(m), flush() {} }
  const environ: Record<string, unknown> = {
    REQUEST_METHOD: 'GET',
    SCRIPT_NAME: '',
    PATH_INFO: '/hello',
    QUERY_STRING: 'x=1',
    REQUEST_URI: '/hello?x=1',
    CONTENT_TYPE: '',
    CONTENT_LENGTH: '',
    SERVER_NAME: '127.0.0.1',
    SERVER_PORT: '8080',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REMOTE_ADDR: '127.0.0.1',
    REMOTE_PORT: '50000',
    HTTP_HOST: '127.0.0.1:8080',
    HTTP_USER_AGENT: 'test',
    'gateway.version': [1, 0],
    'gateway.url_scheme': 'http',
    'gateway.input': makeInput(),
    'gateway.errors': errors,
    'gateway.multithread': false,
    'gateway.multiprocess': false,
    'gateway.run_once': false,
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete environ[key]
    else environ[key] = value
  }
  return environ as Environ
}

interface Response {
  status: string | undefined
  headers: Headers | undefined
  body: string
}

/**
 * Plays a conforming server for one request: calls the app, awaits a promised
 * body, iterates it, and calls its close() `closes` times (once, as the spec
 * says, unless a test wants a broken server).
 */
async function play(app: GatewayApp, options: { environ?: Environ; closes?: number } = {}): Promise<Response> {
  let status: string | undefined
  let headers: Headers | undefined
  let sent = false
  const out: Buffer[] = []
  const send = (chunk: Chunk): void => {
    const bytes = Buffer.from(chunk)
    if (bytes.length > 0) sent = true
    out.push(bytes)
  }
  const startResponse: StartResponse = (s, h, error) => {
    if (status !== undefined && error === undefined) throw new Error('startResponse called twice')
    if (status !== undefined && sent) throw error
    status = s
    headers = h
    out.length = 0
    return send
  }
  const body: Body = await app(options.environ ?? makeEnviron(), startResponse)
  try {
    if (Symbol.asyncIterator in body) for await (const chunk of body) send(chunk)
    else for (const chunk of body) send(chunk)
  } finally {
    for (let i = 0; i < (options.closes ?? 1); i++) await body.close?.()
  }
  return { status, headers, body: Buffer.concat(out).toString('utf8') }
}

/** Plays the server for a validated app; returns the violation it threw. */
async function violationOf(app: GatewayApp, environ?: Environ): Promise<GatewayViolation | undefined> {
  try {
    await play(validate(app), environ ? { environ } : {})
  } catch (error) {
    if (error instanceof GatewayViolation) return error
    throw error
  }
  return undefined
}

/** Runs `app` through a validator that collects violations instead of throwing. */
async function collect(app: GatewayApp, options: { environ?: Environ; closes?: number } = {}): Promise<{ rules: string[]; response: Response | Error }> {
  const violations: GatewayViolation[] = []
  let response: Response | Error
  try {
    response = await play(validate(app, { onViolation: (v) => violations.push(v) }), options)
  } catch (error) {
    response = error as Error
  }
  return { rules: violations.map((v) => v.rule), response }
}

const hello: GatewayApp = (_environ, startResponse) => {
  startResponse('200 OK', [
    ['Content-Type', 'text/plain'],
    ['Content-Length', '5'],
  ])
  return ['hello']
}

// ---------------------------------------------------------------------------
// Broken apps: the violation is thrown from the app call (the server's 500)

t.test('broken apps are refused under the rule they break', async (t) => {
  const cases: Array<[string, string, GatewayApp]> = [
    ['status without reason space', 'status-form', (_e, sr) => (sr('200', []), [])],
    ['status not a final code', 'status-form', (_e, sr) => (sr('100 Continue', []), [])],
    ['status not a string', 'status-form', (_e, sr) => (sr(200 as unknown as string, []), [])],
    ['CRLF in a header value', 'header-form', (_e, sr) => (sr('200 OK', [['X-A', 'a\r\nSet-Cookie: evil=1']]), [])],
    ['space in a header name', 'header-form', (_e, sr) => (sr('200 OK', [['X A', 'a']]), [])],
    ['header value not a string', 'header-form', (_e, sr) => (sr('200 OK', [['X-A', 1 as unknown as string]]), [])],
    ['headers not an array', 'header-form', (_e, sr) => (sr('200 OK', { 'X-A': 'a' } as unknown as Headers), [])],
    ['header not a pair', 'header-form', (_e, sr) => (sr('200 OK', [['X-A', 'a', 'b'] as unknown as [string, string]]), [])],
    ['Transfer-Encoding set', 'hop-by-hop', (_e, sr) => (sr('200 OK', [['Transfer-Encoding', 'chunked']]), [])],
    ['Connection set (any case)', 'hop-by-hop', (_e, sr) => (sr('200 OK', [['connection', 'close']]), [])],
    ['number chunk in an array', 'chunk-type', (_e, sr) => (sr('200 OK', []), [42 as unknown as Chunk])],
    [
      'object chunk from a generator',
      'chunk-type',
      function* (_e, sr) {
        sr('200 OK', [])
        yield { text: 'hi' } as unknown as Chunk
      },
    ],
    ['number chunk through write()', 'chunk-type', (_e, sr) => (sr('200 OK', [])(7 as unknown as Chunk), [])],
    ['startResponse twice without error', 'start-response-order', (_e, sr) => (sr('200 OK', []), sr('404 Not Found', []), [])],
    [
      'startResponse after the first chunk',
      'start-response-order',
      function* (_e, sr) {
        yield 'early'
        sr('200 OK', [])
      },
    ],
    ['array returned without startResponse', 'start-response-order', () => []],
    ['Content-Length over the body', 'content-length', (_e, sr) => (sr('200 OK', [['Content-Length', '3']]), ['hello'])],
    ['Content-Length under the body', 'content-length', (_e, sr) => (sr('200 OK', [['Content-Length', '9']]), ['hello'])],
    [
      'Content-Length under an async body',
      'content-length',
      async function* (_e, sr) {
        sr('200 OK', [['Content-Length', '9']])
        yield 'héllo' // 6 bytes in UTF-8
      },
    ],
    ['Content-Length not digits', 'content-length', (_e, sr) => (sr('200 OK', [['Content-Length', '5, 5']]), ['hello'])],
    [
      'Content-Length given twice, differing',
      'content-length',
      (_e, sr) => (
        sr('200 OK', [
          ['Content-Length', '5'],
          ['content-length', '6'],
        ]),
        ['hello']
      ),
    ],
    ['body a number', 'app-result', (_e, sr) => (sr('200 OK', []), 42 as unknown as Body)],
    ['body a plain object', 'app-result', (_e, sr) => (sr('200 OK', []), {} as unknown as Body)],
    ['body a bare string', 'app-result', (_e, sr) => (sr('200 OK', []), 'hello' as unknown as Body)],
    ['promise of a non-iterable', 'app-result', async (_e, sr) => (sr('200 OK', []), null as unknown as Body)],
    ['environ key removed', 'environ-changed', (e, sr) => (delete (e as Record<string, unknown>)['PATH_INFO'], sr('200 OK', []), [])],
    ['environ key changed', 'environ-changed', (e, sr) => ((e.PATH_INFO = '/other'), sr('200 OK', []), [])],
    [
      'input read twice',
      'input-read',
      async (e, sr) => {
        await e['gateway.input'].text()
        await e['gateway.input'].bytes()
        sr('200 OK', [])
        return []
      },
    ],
    ['non-string to gateway.errors', 'errors-write', (e, sr) => (e['gateway.errors'].write(new Error('x') as unknown as string), sr('200 OK', []), [])],
  ]
  for (const [name, rule, app] of cases) {
    const violation = await violationOf(app)
    t.equal(violation?.rule, rule, name)
    t.match(violation?.message, `[${rule}]`, `${name}: the message names the rule`)
  }
})

t.test('an app-side violation is thrown before the server sees the bad value', async (t) => {
  const seen: string[] = []
  const app = validate((_e, sr) => (sr('200 OK', [['X-A', 'a\nb']]), []))
  t.throws(() => app(makeEnviron(), (status) => (seen.push(status), () => {})), { name: 'GatewayViolation', rule: 'header-form' })
  t.same(seen, [], 'the server never received the headers')
})

t.test('a violation thrown at the app is one the app may catch and recover from', async (t) => {
  const app: GatewayApp = (_e, sr) => {
    try {
      sr('200 OK', [['Bad Name', 'x']])
    } catch (error) {
      sr('500 Internal Server Error', [['Content-Type', 'text/plain']], error)
      return ['sorry']
    }
    return ['unreachable']
  }
  t.same(await play(validate(app)), { status: '500 Internal Server Error', headers: [['Content-Type', 'text/plain']], body: 'sorry' })
})

t.test('with onViolation, the call goes on and every violation is reported', async (t) => {
  const { rules, response } = await collect((_e, sr) => {
    sr('200', [['Transfer-Encoding', 'chunked']])
    return ['x', 1 as unknown as Chunk]
  })
  t.same(rules, ['status-form', 'hop-by-hop', 'chunk-type'])
  t.notOk(response instanceof GatewayViolation, 'nothing was thrown by the validator')
})

// ---------------------------------------------------------------------------
// Broken servers: played by hand, violations collected

t.test('broken environs are reported under the rule they break', async (t) => {
  const cases: Array<[string, string, Record<string, unknown>]> = [
    ['REQUEST_METHOD missing', 'environ-key', { REQUEST_METHOD: undefined }],
    ['REQUEST_METHOD not a token', 'environ-type', { REQUEST_METHOD: 'GE T' }],
    ['QUERY_STRING not a string', 'environ-type', { QUERY_STRING: null }],
    ['PATH_INFO not starting with /', 'environ-type', { PATH_INFO: 'hello' }],
    ["SCRIPT_NAME '/' at the root", 'environ-type', { SCRIPT_NAME: '/' }],
    ['SERVER_PROTOCOL not HTTP/1.x', 'environ-type', { SERVER_PROTOCOL: 'HTTP/2' }],
    ['SERVER_PORT not digits', 'environ-type', { SERVER_PORT: 'http' }],
    ['CONTENT_LENGTH not digits', 'environ-type', { CONTENT_LENGTH: '-1' }],
    ['HTTP_* value not a string', 'environ-type', { HTTP_X_COUNT: 3 }],
    ['HTTP_* value with a newline', 'environ-type', { HTTP_X_A: 'a\nb' }],
    ['HTTP_* name not upper-cased', 'environ-type', { 'HTTP_x-a': 'a' }],
    ['HTTP_CONTENT_TYPE present', 'environ-key', { HTTP_CONTENT_TYPE: 'text/plain' }],
    ['HTTP_CONTENT_LENGTH present', 'environ-key', { HTTP_CONTENT_LENGTH: '0' }],
    ['gateway.version wrong', 'environ-type', { 'gateway.version': '1.0' }],
    ['gateway.url_scheme wrong', 'environ-type', { 'gateway.url_scheme': 'ftp' }],
    ['gateway.run_once not a boolean', 'environ-type', { 'gateway.run_once': 0 }],
    ['gateway.input missing', 'environ-key', { 'gateway.input': undefined }],
    ['gateway.input not readable', 'input', { 'gateway.input': {} }],
    ['gateway.input.length disagrees with CONTENT_LENGTH', 'input', { CONTENT_LENGTH: '10' }],
    ['gateway.errors without flush', 'errors', { 'gateway.errors': { write() {} } }],
  ]
  for (const [name, rule, overrides] of cases) {
    const { rules } = await collect(hello, { environ: makeEnviron(overrides) })
    t.same(rules, [rule], name)
  }
})

t.test('an environ that is not an object is reported and passed through', async (t) => {
  const violations: GatewayViolation[] = []
  const app = validate(() => ['x'], { onViolation: (v) => violations.push(v) })
  t.same(
    app(null as unknown as Environ, () => () => {}),
    ['x'],
  )
  t.same(
    violations.map((v) => v.rule),
    ['environ-type'],
  )
})

t.test('a server-side violation is thrown by default, before the app runs', async (t) => {
  let ran = false
  const app = validate(() => ((ran = true), []))
  t.throws(() => app(makeEnviron({ REQUEST_METHOD: undefined }), () => () => {}), { name: 'GatewayViolation', rule: 'environ-key' })
  t.equal(ran, false)
})

t.test('startResponse that is not a function, or returns no write', async (t) => {
  const violations: GatewayViolation[] = []
  const app = validate(hello, { onViolation: (v) => violations.push(v) })
  t.throws(() => app(makeEnviron(), 'start' as unknown as StartResponse), TypeError, 'the app then fails calling it')
  t.same(
    violations.map((v) => v.rule),
    ['start-response'],
  )

  violations.length = 0
  app(makeEnviron(), (() => undefined) as unknown as StartResponse)
  t.same(
    violations.map((v) => v.rule),
    ['start-response'],
  )
})

t.test('an environ or startResponse passed twice is reported', async (t) => {
  const violations: GatewayViolation[] = []
  const app = validate(hello, { onViolation: (v) => violations.push(v) })
  const environ = makeEnviron()
  const startResponse: StartResponse = () => () => {}
  app(environ, startResponse)
  app(environ, startResponse)
  t.same(
    violations.map((v) => v.rule),
    ['fresh-call', 'fresh-call'],
  )
})

t.test('an input that yields strings or too few bytes is reported when the app reads it', async (t) => {
  const input: GatewayInput = {
    async *[Symbol.asyncIterator]() {
      yield 'abc' as unknown as Uint8Array
    },
    bytes: async () => new Uint8Array(2),
    text: async () => 'ab',
    length: 3,
    trailers: [],
  }
  const reader =
    (how: 'iterate' | 'bytes'): GatewayApp =>
    async (environ, startResponse) => {
      const body = environ['gateway.input']
      if (how === 'bytes') await body.bytes()
      else for await (const _chunk of body);
      startResponse('200 OK', [])
      return []
    }
  for (const how of ['iterate', 'bytes'] as const) {
    const { rules } = await collect(reader(how), { environ: makeEnviron({ CONTENT_LENGTH: '3', 'gateway.input': input }) })
    t.same(rules, ['input'], how)
  }
})

/** An input of `body` whose bytes()/text() ignore the limit they are given, as a broken server's might. */
function limitlessInput(body: string): GatewayInput {
  return { ...makeInput(body), bytes: async () => Buffer.from(body), text: async () => body }
}

/** An input of a declared `length` whose bytes()/text() reject with `error`. */
function rejectingInput(length: number, error: unknown): GatewayInput {
  return { ...makeInput(), length, bytes: () => Promise.reject(error), text: () => Promise.reject(error) }
}

/** An app that reads its body with `bytes(limit)` or `text(limit)`, answering 413 when refused. */
const readsWithLimit =
  (how: 'bytes' | 'text', limit: number): GatewayApp =>
  async (environ, startResponse) => {
    try {
      await environ['gateway.input'][how](limit)
    } catch (error) {
      if (!(error instanceof GatewayError) || error.status !== 413) throw error
      startResponse('413 Content Too Large', [])
      return []
    }
    startResponse('200 OK', [])
    return []
  }

t.test('an input that does not honour the limit of bytes()/text() is reported [input-limit]', async (t) => {
  const post = (input: GatewayInput): Environ => makeEnviron({ REQUEST_METHOD: 'POST', CONTENT_LENGTH: String(input.length), 'gateway.input': input })
  const cases: Array<[string, GatewayApp, () => GatewayInput]> = [
    ['bytes(4) gives all 10 bytes', readsWithLimit('bytes', 4), () => limitlessInput('0123456789')],
    ['text(4) gives all 10 characters', readsWithLimit('text', 4), () => limitlessInput('0123456789')],
    ['bytes(4) of a 10-byte body rejects, but not with 413', readsWithLimit('bytes', 4), () => rejectingInput(10, new Error('too big'))],
    ['text(100) of a 10-byte body rejects with 413', readsWithLimit('text', 100), () => rejectingInput(10, new GatewayError(413, 'too big'))],
  ]
  for (const [name, app, input] of cases) {
    const { rules } = await collect(app, { environ: post(input()) })
    t.same(rules, ['input-limit'], name)
  }

  const thrown = await violationOf(readsWithLimit('bytes', 4), post(limitlessInput('0123456789')))
  t.match(thrown?.message, /^\[input-limit\] gateway\.input\.bytes\(4\) gave 10 bytes/, 'thrown by default, worded [rule] message')

  // postern's own input honours the limit: no violation either way.
  const streamInput = (body: string): GatewayInput =>
    new StreamInput(
      (async function* () {
        yield Buffer.from(body)
      })(),
      body.length,
    )
  for (const [limit, status] of [
    [4, '413 Content Too Large'],
    [10, '200 OK'],
  ] as const) {
    for (const how of ['bytes', 'text'] as const) {
      const { rules, response } = await collect(readsWithLimit(how, limit), { environ: post(streamInput('0123456789')) })
      t.same(rules, [], `StreamInput ${how}(${limit}): no violation`)
      t.equal((response as Response).status, status)
    }
  }
})

t.test('path keys that disagree with REQUEST_URI are reported [request-target]', async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['malformed percent-encoding reached the app', { REQUEST_URI: '/a%zz', PATH_INFO: '/a%zz', QUERY_STRING: '' }],
    ['a path not UTF-8 once decoded reached the app', { REQUEST_URI: '/a%ff', PATH_INFO: '/a\ufffd', QUERY_STRING: '' }],
    ['PATH_INFO not percent-decoded', { REQUEST_URI: '/a%20b', PATH_INFO: '/a%20b', QUERY_STRING: '' }],
    ['PATH_INFO not the path at all', { REQUEST_URI: '/a', PATH_INFO: '/b', QUERY_STRING: '' }],
    ['QUERY_STRING not the query', { REQUEST_URI: '/hello?x=1', QUERY_STRING: 'x=2' }],
    ['QUERY_STRING decoded', { REQUEST_URI: '/hello?x=a%20b', QUERY_STRING: 'x=a b' }],
    ['absolute-form: PATH_INFO not from the target', { REQUEST_URI: 'http://h:1/a%20b?x', PATH_INFO: '/hello', QUERY_STRING: 'x', HTTP_HOST: 'h:1' }],
    ['absolute-form: HTTP_HOST from the Host header, not the authority', { REQUEST_URI: 'http://h:1/a%20b?x', PATH_INFO: '/a b', QUERY_STRING: 'x', HTTP_HOST: 'other' }],
    ["absolute-form without a path: PATH_INFO '' instead of '/'", { REQUEST_URI: 'http://h:1', PATH_INFO: '', QUERY_STRING: '', HTTP_HOST: 'h:1' }],
    ['not a target form at all', { REQUEST_URI: 'hello', PATH_INFO: '/hello', QUERY_STRING: '' }],
    ["OPTIONS *: PATH_INFO '/'", { REQUEST_METHOD: 'OPTIONS', REQUEST_URI: '*', PATH_INFO: '/', QUERY_STRING: '' }],
    ['* for a GET', { REQUEST_URI: '*', PATH_INFO: '', QUERY_STRING: '' }],
  ]
  for (const [name, overrides] of cases) {
    const { rules } = await collect(hello, { environ: makeEnviron(overrides) })
    t.same(rules, ['request-target'], name)
  }

  const conforming: Array<[string, Record<string, unknown>]> = [
    ['decoded path, raw query', { REQUEST_URI: '/a%20b/%C3%A9%2F?x=a%20b', PATH_INFO: '/a b/é/', QUERY_STRING: 'x=a%20b' }],
    ['absolute-form', { REQUEST_URI: 'http://h:1/a%20b?x', PATH_INFO: '/a b', QUERY_STRING: 'x', HTTP_HOST: 'h:1' }],
    ["absolute-form without a path: PATH_INFO '/'", { REQUEST_URI: 'http://h:1?q', PATH_INFO: '/', QUERY_STRING: 'q', HTTP_HOST: 'h:1' }],
    ["OPTIONS *: PATH_INFO ''", { REQUEST_METHOD: 'OPTIONS', REQUEST_URI: '*', PATH_INFO: '', QUERY_STRING: '' }],
    ['mounted: only the query is compared', { SCRIPT_NAME: '/api', PATH_INFO: '/x', REQUEST_URI: '/api/x%20?y', QUERY_STRING: 'y' }],
  ]
  for (const [name, overrides] of conforming) {
    const { rules } = await collect(hello, { environ: makeEnviron(overrides) })
    t.same(rules, [], `${name}: no violation`)
  }
})

t.test('validate() reports app faults with the very code and words of every server', async (t) => {
  t.equal(GatewayViolation, RulesViolation, 'one GatewayViolation class')
  const wordsOf = (run: () => unknown): string => {
    try {
      run()
    } catch (error) {
      return (error as Error).message
    }
    return ''
  }
  const cases: Array<[string, () => unknown, GatewayApp]> = [
    ['status', () => checkStatus('200'), (_e, sr) => (sr('200', []), [])],
    ['header', () => checkHeaders([['X A', 'a']]), (_e, sr) => (sr('200 OK', [['X A', 'a']]), [])],
    ['hop-by-hop', () => checkHeaders([['Upgrade', 'h2c']]), (_e, sr) => (sr('200 OK', [['Upgrade', 'h2c']]), [])],
    ['chunk', () => chunkLength(42), (_e, sr) => (sr('200 OK', []), [42 as unknown as Chunk])],
  ]
  for (const [name, server, app] of cases) {
    const violation = await violationOf(app)
    t.ok(violation instanceof TypeError, `${name}: a TypeError, as the server's`)
    t.equal(violation?.message, wordsOf(server), `${name}: worded as the server words it`)
    t.match(violation?.message, /^\[[a-z-]+\] /, `${name}: [rule] message`)
  }
})

t.test('spec.ts lists every rule id with its side, as RuleId and RULE_SIDE say', async (t) => {
  const spec = readFileSync(new URL('../../lib/gateway/spec.ts', import.meta.url), 'utf8')
  const listed: Record<string, string> = {}
  for (const [, id, side] of spec.matchAll(/^ \* - `\[([a-z-]+)\]` \((app|server)\)/gm)) listed[id!] = side!
  t.same(listed, RULE_SIDE)
})

t.test('close() called twice is reported, and the app sees only one', async (t) => {
  let closed = 0
  const app: GatewayApp = (_e, sr) => {
    sr('200 OK', [])
    return Object.assign(['x'], { close: () => void closed++ })
  }
  const { rules } = await collect(app, { closes: 2 })
  t.same(rules, ['close-called'])
  t.equal(closed, 1)

  const generator = await collect(
    function* (_e, sr) {
      sr('200 OK', [])
      yield 'x'
    },
    { closes: 2 },
  )
  t.same(generator.rules, ['close-called'], 'a generator body gets a close() the server must call once too')
})

t.test('iterating the body after close() is reported', async (t) => {
  const violations: GatewayViolation[] = []
  const start: StartResponse = () => () => {}
  for (const app of [
    hello,
    function* (_e: Environ, sr: StartResponse) {
      sr('200 OK', [])
      yield 'x'
    },
  ] as GatewayApp[]) {
    const body = (await validate(app, { onViolation: (v) => violations.push(v) })(makeEnviron(), start)) as Iterable<Chunk> & { close(): void }
    body.close()
    for (const _chunk of body);
  }
  t.same(
    violations.map((v) => v.rule),
    ['close-called', 'close-called'],
  )
})

t.test('a body dropped without close() is reported once it is collected', async (t) => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  /** Collects until `until()` holds (at most 50 rounds); returns the rounds it took. */
  const collectGarbage = async (until: () => boolean, rounds = 50): Promise<number> => {
    let i = 0
    for (; i < rounds && !until(); i++) {
      gc()
      await new Promise((resolve) => setImmediate(resolve))
    }
    return i
  }
  const serveWithoutClose = (app: GatewayApp, environ: Environ): void => {
    const body = app(environ, () => () => {}) as Iterable<Chunk>
    for (const _chunk of body);
  }

  const violations: GatewayViolation[] = []
  serveWithoutClose(validate(hello, { onViolation: (v) => violations.push(v) }), makeEnviron())
  const rounds = await collectGarbage(() => violations.length > 0)
  t.same(
    violations.map((v) => v.rule),
    ['close-called'],
  )

  const log: string[] = []
  serveWithoutClose(validate(hello), makeEnviron({}, log))
  await collectGarbage(() => log.length > 0)
  t.match(log, [/\[close-called\]/], 'without onViolation it goes to gateway.errors')

  const closedViolations: GatewayViolation[] = []
  ;(() => {
    const body = validate(hello, { onViolation: (v) => closedViolations.push(v) })(makeEnviron(), () => () => {}) as Body
    body.close?.()
  })()
  await collectGarbage(() => false, rounds + 1)
  t.same(closedViolations, [], 'a closed body is not reported when collected')
})

// ---------------------------------------------------------------------------
// Conforming apps: no violation, and the same response as without validate()

t.test('conforming apps pass unchanged', async (t) => {
  const cases: Array<[string, GatewayApp, { environ?: () => Environ }?]> = [
    ['sync array body', hello],
    [
      'generator body',
      function* (_e, sr) {
        sr('200 OK', [['Content-Type', 'text/plain']])
        yield 'a'
        yield Buffer.from('b')
        yield ''
      },
    ],
    [
      'async generator body, Content-Length counted in UTF-8 bytes',
      async function* (_e, sr) {
        sr('201 Created', [['Content-Length', '4']])
        yield 'é'
        yield new Uint8Array([0x21, 0x21])
      },
    ],
    ['promise body', async (_e, sr) => (sr('404 Not Found', [['Content-Type', 'text/plain']]), ['not here'])],
    [
      'empty reason phrase, repeated header',
      (_e, sr) => (
        sr('299 ', [
          ['Set-Cookie', 'a=1'],
          ['Set-Cookie', 'b=2'],
        ]),
        []
      ),
    ],
    [
      'write() legacy output before the body',
      (_e, sr) => {
        const write = sr('200 OK', [['Content-Length', '6']])
        write('abc')
        write(Buffer.from('de'))
        return ['f']
      },
    ],
    [
      'error replacement before any output',
      (_e, sr) => {
        sr('200 OK', [['Content-Type', 'application/json']])
        try {
          throw new Error('boom')
        } catch (error) {
          sr(
            '500 Internal Server Error',
            [
              ['Content-Type', 'text/plain'],
              ['Content-Length', '4'],
            ],
            error,
          )
        }
        return ['oops']
      },
    ],
    [
      'startResponse inside the generator, before the first chunk',
      function* (_e, sr) {
        sr('200 OK', [])
        yield 'lazy'
      },
    ],
    ['HEAD with the GET length and no body', (_e, sr) => (sr('200 OK', [['Content-Length', '5']]), []), { environ: () => makeEnviron({ REQUEST_METHOD: 'HEAD' }) }],
    [
      'Content-Length repeated with the same value',
      (_e, sr) => (
        sr('200 OK', [
          ['Content-Length', '2'],
          ['content-length', '2'],
        ]),
        ['ok']
      ),
    ],
    ['304 with a Content-Length and no body', (_e, sr) => (sr('304 Not Modified', [['Content-Length', '5']]), [])],
    [
      'reads the request body by iterating',
      async (e, sr) => {
        let text = ''
        for await (const chunk of e['gateway.input']) text += Buffer.from(chunk).toString()
        sr('200 OK', [])
        return [text.toUpperCase()]
      },
      { environ: () => makeEnviron({ REQUEST_METHOD: 'POST', CONTENT_LENGTH: '5', 'gateway.input': makeInput('hello') }) },
    ],
    [
      'adds its own environ keys',
      (e, sr) => {
        e['app.user'] = 'ann'
        sr('200 OK', [])
        return [String(e['app.user'])]
      },
    ],
    ['nested validators', validate(validate(hello))],
  ]
  for (const [name, app, options] of cases) {
    const bare = await play(app, options?.environ ? { environ: options.environ() } : {})
    const { rules, response } = await collect(app, options?.environ ? { environ: options.environ() } : {})
    t.same(rules, [], `${name}: no violation`)
    t.same(response, bare, `${name}: same response as without validate()`)
  }
})

t.test('a sync array body stays a sync array, closed through to the app', async (t) => {
  let closed = 0
  const body = Object.assign(['a', 'b'], { close: () => void closed++ })
  const app = validate((_e, sr) => (sr('200 OK', []), body))
  const result = app(makeEnviron(), () => () => {})
  t.ok(Array.isArray(result), 'not a promise: still an array the server can frame up front')
  t.same([...(result as Chunk[])], ['a', 'b'])
  ;(result as Body).close?.()
  t.equal(closed, 1)
})

t.test('an async app body stays async, a sync iterable stays sync', async (t) => {
  const start: StartResponse = () => () => {}
  const sync = validate(function* (_e, sr) {
    sr('200 OK', [])
    yield 'x'
  })(makeEnviron(), start) as object
  t.ok(Symbol.iterator in sync && !(Symbol.asyncIterator in sync))
  const asynchronous = validate(async function* (_e, sr) {
    sr('200 OK', [])
    yield 'x'
  })(makeEnviron(), start) as object
  t.ok(Symbol.asyncIterator in asynchronous && !(Symbol.iterator in asynchronous))
})

// ---------------------------------------------------------------------------
// On the real server

t.test('a validated app on the real postern server answers exactly, with no violation', async (t) => {
  const { createServer } = await import('../../lib/server/index.js')
  const violations: GatewayViolation[] = []
  const onViolation = (v: GatewayViolation): void => void violations.push(v)
  const app: GatewayApp = (environ, startResponse) => {
    switch (environ.PATH_INFO) {
      case '/stream':
        return (async function* () {
          startResponse('200 OK', [['Content-Type', 'text/plain']])
          yield 'one,'
          yield Buffer.from('two')
        })()
      case '/echo':
        return (async () => {
          const text = await environ['gateway.input'].text()
          startResponse('201 Created', [
            ['Content-Type', 'text/plain'],
            ['Content-Length', String(Buffer.byteLength(text))],
          ])
          return [text]
        })()
      case '/legacy': {
        const write = startResponse('200 OK', [['Content-Type', 'text/plain']])
        write('wr')
        write('ite')
        return []
      }
      default:
        startResponse('200 OK', [
          ['Content-Type', 'text/plain; charset=utf-8'],
          ['X-Path', environ.PATH_INFO],
        ])
        return ['héllo']
    }
  }
  const errors: string[] = []
  const server = createServer(validate(app, { onViolation }), { errors: { write: (m) => void errors.push(m), flush() {} } })
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => server.close())
  const base = `http://127.0.0.1:${port}`

  const res = await fetch(`${base}/hello`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8')
  t.equal(res.headers.get('x-path'), '/hello')
  t.equal(res.headers.get('content-length'), '6', 'an array body is still framed with Content-Length')
  t.equal(await res.text(), 'héllo')

  const streamed = await fetch(`${base}/stream`)
  t.equal(streamed.status, 200)
  t.equal(streamed.headers.get('transfer-encoding'), 'chunked')
  t.equal(await streamed.text(), 'one,two')

  const echoed = await fetch(`${base}/echo`, { method: 'POST', body: 'ping ✓' })
  t.equal(echoed.status, 201)
  t.equal(echoed.headers.get('content-length'), '8')
  t.equal(await echoed.text(), 'ping ✓')

  const legacy = await fetch(`${base}/legacy`)
  t.equal(legacy.status, 200)
  t.equal(await legacy.text(), 'write')

  const head = await fetch(`${base}/hello`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers.get('content-length'), '6')
  t.equal(await head.text(), '')

  await server.close()
  t.same(violations, [], 'neither the server nor the app broke a rule')
  t.same(errors, [], 'nothing was logged')
})

t.test('on the real postern server the target keys follow the spec, and a bad path never reaches the app', async (t) => {
  const { serve } = await import('../helpers/server.js')
  const violations: GatewayViolation[] = []
  const seen: Array<Record<string, string | undefined>> = []
  const app: GatewayApp = (environ, startResponse) => {
    const { PATH_INFO, QUERY_STRING, REQUEST_URI, HTTP_HOST } = environ
    seen.push({ PATH_INFO, QUERY_STRING, REQUEST_URI, HTTP_HOST })
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return ['ok']
  }
  const served = await serve(t, validate(app, { onViolation: (v) => void violations.push(v) }))
  const cases: Array<[string, number, Record<string, string> | null]> = [
    ['GET /a%20b/%C3%A9?x=a%20b HTTP/1.1\r\nHost: y\r\n', 200, { PATH_INFO: '/a b/é', QUERY_STRING: 'x=a%20b', REQUEST_URI: '/a%20b/%C3%A9?x=a%20b', HTTP_HOST: 'y' }],
    ['GET http://h:1/a%20b?x HTTP/1.1\r\nHost: y\r\n', 200, { PATH_INFO: '/a b', QUERY_STRING: 'x', REQUEST_URI: 'http://h:1/a%20b?x', HTTP_HOST: 'h:1' }],
    ['GET http://h:1 HTTP/1.1\r\nHost: y\r\n', 200, { PATH_INFO: '/', QUERY_STRING: '', REQUEST_URI: 'http://h:1', HTTP_HOST: 'h:1' }],
    ['GET http://h:1/p HTTP/1.0\r\n', 200, { PATH_INFO: '/p', QUERY_STRING: '', REQUEST_URI: 'http://h:1/p', HTTP_HOST: 'h:1' }],
    ['OPTIONS * HTTP/1.1\r\nHost: y\r\n', 200, { PATH_INFO: '', QUERY_STRING: '', REQUEST_URI: '*', HTTP_HOST: 'y' }],
    ['GET /a%zz HTTP/1.1\r\nHost: y\r\n', 400, null],
    ['GET /a%ff HTTP/1.1\r\nHost: y\r\n', 400, null],
  ]
  for (const [request, status, environ] of cases) {
    seen.length = 0
    const { responses, raw } = await served.exchange(`${request}Connection: close\r\n\r\n`, { waitClose: true })
    const line = request.slice(0, request.indexOf('\r'))
    t.equal(responses[0]?.status, status, `${line}: ${status}`)
    t.same(seen, environ === null ? [] : [environ], environ === null ? `${line}: the app was not called` : line)
    if (responses[0]?.status !== status) t.comment(raw)
  }
  t.same(violations, [], 'no violation on either side')
})

t.test('an app-side violation on the real server becomes its 500', async (t) => {
  const { createServer } = await import('../../lib/server/index.js')
  const errors: string[] = []
  const app = validate((_e, sr) => (sr('200 OK', [['Content-Length', '2']]), ['too long']))
  const server = createServer(app, { errors: { write: (m) => void errors.push(m), flush() {} } })
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => server.close())
  const res = await fetch(`http://127.0.0.1:${port}/`)
  t.equal(res.status, 500)
  t.notMatch(await res.text(), 'too long', 'the wrong body is not sent')
  await server.close()
  t.match(errors.join(''), '[content-length]', 'the violation went to gateway.errors')
})
