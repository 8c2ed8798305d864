/**
 * Types that follow the route's schemas, and an `App` type with only what is
 * declared on it. Each check is twofold: the type half is compile-time (`npm
 * run typecheck` covers test/; a wrong use is marked `@ts-expect-error`, which
 * fails the build if the error goes away), the run-time half asserts over a
 * real socket that the value the handler sees is what its type says — query,
 * params and headers are coerced by the validator, so an `integer` really is
 * a number. Declaration merging (`declare module 'postern'`) is checked by
 * compiling a user's file with the TypeScript compiler, so its augmentation
 * does not leak into the rest of this project's types.
 */
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import ts from 'typescript'
import { postern, type App, type FromSchema, type JsonSchema, type Query, type RequestHeaders, type RouteHandler } from '../../lib/index.js'
import { serve } from '../helpers/server.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
const assertType = <T extends true>(): T | undefined => undefined

/** GETs `path` from the app on a real socket: status and parsed JSON body. */
async function get(t: Test, app: App, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const served = await serve(t, app)
  const res = await fetch(`http://127.0.0.1:${served.port}${path}`, { headers })
  return { status: res.status, body: await res.json() }
}

/** The handler's view of one value: what it is and what type it has at run time. */
function seen(value: unknown): { value: unknown; type: string } {
  return { value, type: typeof value }
}

const listQuery = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, default: 10 },
    q: { type: 'string' },
    tags: { type: 'array', items: { type: 'string' } },
  },
} as const

t.test('querystring: an integer field is a number, in the type and at run time', async (t) => {
  const app = postern()
  app.get('/items', { schema: { querystring: listQuery } }, (req) => {
    assertType<Equal<typeof req.query, { limit: number; q?: string; tags?: string[] }>>()
    const limit: number = req.query.limit
    // @ts-expect-error limit is a number, not a string
    const asText: string = req.query.limit
    // @ts-expect-error not in the schema
    void req.query.page
    void asText
    return { limit: seen(limit), q: req.query.q ?? null, tags: req.query.tags ?? null }
  })
  t.same((await get(t, app, '/items?limit=3&q=pen&tags=a')).body, { limit: { value: 3, type: 'number' }, q: 'pen', tags: ['a'] })
  t.same((await get(t, app, '/items')).body, { limit: { value: 10, type: 'number' }, q: null, tags: null }, 'the default is filled in, so limit is required in the type')
  const bad = await get(t, app, '/items?limit=many')
  t.equal(bad.status, 400)
  t.same(bad.body, { error: 'Bad Request', message: 'query/limit must be integer', statusCode: 400 })
})

t.test("the query schema under postern's name `query` types req.query the same way", async (t) => {
  const app = postern()
  app.get('/q', { schema: { query: listQuery } }, (req) => {
    // @ts-expect-error limit is a number
    req.query.limit satisfies string
    return seen(req.query.limit)
  })
  t.same((await get(t, app, '/q?limit=7')).body, { value: 7, type: 'number' })
  t.throws(() => app.get('/both', { schema: { query: listQuery, querystring: listQuery } }, () => null), /`query` or `querystring`, not both/)
})

t.test('without a query schema, req.query is the strings as parsed', async (t) => {
  const app = postern()
  app.get('/raw', (req) => {
    assertType<Equal<typeof req.query, Query>>()
    return seen(req.query.limit)
  })
  t.same((await get(t, app, '/raw?limit=3')).body, { value: '3', type: 'string' })
})

t.test('params: the schema types them (integer → number), over the path-derived strings', async (t) => {
  const app = postern()
  const params = { type: 'object', properties: { id: { type: 'integer' } } } as const
  app.get('/shops/:shop/items/:id', { schema: { params } }, (req) => {
    assertType<Equal<typeof req.params, { shop: string; id: number }>>()
    // @ts-expect-error id is a number now, not the path's string
    req.params.id satisfies string
    return { id: seen(req.params.id), shop: seen(req.params.shop) }
  })
  app.get('/plain/:id', (req) => {
    assertType<Equal<typeof req.params, { id: string }>>()
    // @ts-expect-error without a params schema, id stays a string
    req.params.id satisfies number
    return seen(req.params.id)
  })
  t.same((await get(t, app, '/shops/north/items/42')).body, { id: { value: 42, type: 'number' }, shop: { value: 'north', type: 'string' } })
  t.same((await get(t, app, '/plain/42')).body, { value: '42', type: 'string' })
  const bad = await get(t, app, '/shops/north/items/x')
  t.equal(bad.status, 400)
  t.match(bad.body, { message: 'params/id must be integer' })
})

t.test('headers: typed by their lower-case names; an integer header arrives as a number', async (t) => {
  const app = postern()
  const headers = { type: 'object', required: ['X-Token'], properties: { 'X-Token': { type: 'string' }, 'x-count': { type: 'integer' } } } as const
  app.get('/h', { schema: { headers } }, (req) => {
    const token: string = req.headers['x-token']
    const count: number | undefined = req.headers['x-count']
    // @ts-expect-error x-count is a number (or missing)
    req.headers['x-count'] satisfies string
    // Headers the schema does not list are still there, as strings.
    const accept = req.headers.accept
    return { token, count: seen(count), accept: typeof accept }
  })
  t.same((await get(t, app, '/h', { 'x-token': 'abc', 'x-count': '5' })).body, { token: 'abc', count: { value: 5, type: 'number' }, accept: 'string' })
  const missing = await get(t, app, '/h')
  t.equal(missing.status, 400)
  t.match(missing.body, { message: "headers must have required property 'x-token'" })
  app.get('/untyped', (req) => {
    assertType<Equal<typeof req.headers, RequestHeaders>>()
    return null
  })
})

t.test('app.route(): body, params and query typed from its schema', async (t) => {
  const app = postern()
  app.route({
    method: 'POST',
    url: '/users/:team',
    schema: {
      params: { type: 'object', properties: { team: { type: 'integer' } } },
      querystring: { type: 'object', properties: { dryRun: { type: 'boolean', default: false } } },
      body: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, age: { type: 'integer' } } },
    },
    handler: (req) => {
      assertType<Equal<typeof req.body, { name: string; age?: number }>>()
      const name: string = req.body.name
      // @ts-expect-error age is optional: possibly undefined
      const age: number = req.body.age
      // @ts-expect-error no such property in the body schema
      void req.body.email
      return { name, age: age ?? null, team: seen(req.params.team), dryRun: seen(req.query.dryRun) }
    },
  })
  // A route without a schema: params from the url, the rest untyped.
  app.route({ method: 'GET', url: '/teams/:team', handler: (req) => ({ team: req.params.team, body: req.body ?? null }) })
  const served = await serve(t, app)
  const post = (path: string, body: unknown) =>
    fetch(`http://127.0.0.1:${served.port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const ok = await post('/users/7?dryRun=true', { name: 'Ada' })
  t.equal(ok.status, 200)
  t.same(await ok.json(), { name: 'Ada', age: null, team: { value: 7, type: 'number' }, dryRun: { value: true, type: 'boolean' } })
  const bad = await post('/users/7', { age: 3 })
  t.equal(bad.status, 400)
  t.match(await bad.json(), { message: "body must have required property 'name'" })
  t.same(await (await fetch(`http://127.0.0.1:${served.port}/teams/x`)).json(), { team: 'x', body: null })
})

t.test('the returned value is checked against the response schemas', async (t) => {
  const app = postern()
  const response = { 200: { type: 'object', required: ['id'], properties: { id: { type: 'integer' }, name: { type: 'string' } } } } as const
  app.get('/ok', { schema: { response } }, () => ({ id: 1, name: 'pen', secret: 'dropped by the serializer' }))
  app.get('/sent', { schema: { response } }, (_req, reply) => reply.status(200).send({ id: 2 }))
  app.get(
    '/wrong',
    { schema: { response } },
    // @ts-expect-error id must be a number
    () => ({ id: 'three' }),
  )
  t.same((await get(t, app, '/ok')).body, { id: 1, name: 'pen' })
  t.same((await get(t, app, '/sent')).body, { id: 2 })
  // What the type refuses fails at run time too: the serializer cannot write 'three' as an integer.
  t.equal((await get(t, app, '/wrong')).status, 500)
})

t.test('RouteHandler types a handler written apart from its route', async (t) => {
  const schema = {
    params: { type: 'object', properties: { id: { type: 'integer' } } },
    querystring: { type: 'object', properties: { full: { type: 'boolean' } } },
  } as const
  const getItem: RouteHandler<'/items/:id', typeof schema> = (req) => ({ id: seen(req.params.id), full: req.query.full ?? false })
  const app = postern()
  app.get('/items/:id', { schema }, getItem)
  t.same((await get(t, app, '/items/5?full=true')).body, { id: { value: 5, type: 'number' }, full: true })
})

t.test('types given by hand still win over the schema', async (t) => {
  interface Explicit {
    name: string
    nickname: string
  }
  const app = postern()
  app.post<'/x', Explicit>('/x', { schema: { body: { type: 'object', properties: { name: { type: 'string' } } } } }, (req) => req.body.nickname ?? 'none')
  app.route<'/y', Explicit>({ method: 'POST', url: '/y', handler: (req) => req.body.nickname ?? 'none' })
  const served = await serve(t, app)
  const res = await fetch(`http://127.0.0.1:${served.port}/x`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"a"}' })
  t.equal(await res.text(), 'none')
})

t.test('App has only what is declared: a typo does not compile, decorations are typed where they are added', async (t) => {
  const app = postern()
  // @ts-expect-error no such method: a typo is a compile error
  t.equal(app.lisen, undefined)
  // @ts-expect-error not decorated (yet)
  t.equal(app.db, undefined)

  const db = { find: (id: number) => ({ id, name: `user ${id}` }) }
  const withDb = app.decorate('db', db)
  t.equal(withDb, app, 'decorate returns the same app, typed with the decoration')
  assertType<Equal<typeof withDb.db, typeof db>>()
  t.equal(withDb.db.find(2).name, 'user 2')

  const typed = withDb.decorateRequest('user', null as string | null).decorateReply('greet', (name: string) => `hello ${name}`)
  t.equal(typed.db, db, 'app decorations survive decorateRequest/decorateReply')
  typed.addHook('preHandler', (req) => {
    req.user = req.header('x-user') ?? null
  })
  typed.get('/me', (req, reply) => {
    assertType<Equal<typeof req.user, string | null>>()
    // @ts-expect-error not a request decoration
    void req.group
    return { greeting: reply.greet(req.user ?? 'anonymous'), db: typeof typed.db.find }
  })
  t.same((await get(t, app, '/me', { 'x-user': 'ann' })).body, { greeting: 'hello ann', db: 'function' })

  // A plugin gets the parent's decorations in its scope's type; its own stay in it.
  await typed.register(async (scope) => {
    t.equal(scope.db.find(3).id, 3)
    scope.decorate('inner', 1)
  })
  // @ts-expect-error a plugin's decoration is not on the parent's type
  t.equal(typed.inner, undefined)
  // @ts-expect-error a decorator is added once
  t.throws(() => withDb.decorate('db', 'again'), /already exists/)
})

t.test('FromSchema covers the keywords routes use', async (t) => {
  assertType<Equal<FromSchema<{ type: readonly ['string', 'null'] }>, string | null>>()
  assertType<Equal<FromSchema<{ type: 'integer'; nullable: true }>, number | null>>()
  assertType<Equal<FromSchema<{ anyOf: readonly [{ type: 'string' }, { type: 'boolean' }] }>, string | boolean>>()
  assertType<Equal<FromSchema<{ type: 'object'; additionalProperties: { type: 'number' } }>, Record<string, number>>>()
  assertType<Equal<FromSchema<{ type: 'object'; properties: { a: { type: 'string'; default: 'x' } } }>, { a: string }>>()
  assertType<Equal<FromSchema<JsonSchema>, unknown>>()
  t.pass('checked at compile time')
})

/** Compiles one file of a user's program against postern (mapped as the package 'postern'); returns its errors as `line: code`. */
function compileUserFile(source: string): string[] {
  const root = fileURLToPath(new URL('../..', import.meta.url))
  const file = join(root, 'test/framework/user-augmentation.ts')
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
    baseUrl: root,
    paths: { postern: ['./lib/index.ts'] },
  }
  const host = ts.createCompilerHost(options)
  const readFile = host.readFile.bind(host)
  const getSourceFile = host.getSourceFile.bind(host)
  host.readFile = (name) => (name === file ? source : readFile(name))
  host.fileExists = (
    (exists) => (name: string) =>
      name === file || exists(name)
  )(host.fileExists.bind(host))
  host.getSourceFile = (name, version, ...rest) => (name === file ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, ...rest))
  const program = ts.createProgram([file], options, host)
  const sourceFile = program.getSourceFile(file)!
  return ts.getPreEmitDiagnostics(program, sourceFile).map((d) => {
    const line = d.file ? d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1 : 0
    return `${line}: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ').slice(0, 80)}`
  })
}

t.test("declaration merging: a user declares decorations on postern's App, Request and Reply", async (t) => {
  const errors = compileUserFile(`import { postern } from 'postern'
interface Db { find(id: number): string }
declare module 'postern' {
  interface App { db: Db }
  interface Request { user: string | null }
  interface Reply { render(view: string): string }
}
const app = postern()
app.decorate('db', { find: (id: number) => String(id) })
app.decorateRequest('user', null)
app.decorateReply('render', (view: string) => view)
app.addHook('onRequest', (req) => { req.user = req.header('x-user') ?? null })
app.get('/', (req, reply) => reply.render(app.db.find(1) + (req.user ?? '')))
app.decorate('db', 'not a Db')
app.lisen()
export {}
`)
  t.same(
    errors.map((e) => e.slice(0, e.indexOf(' ', e.indexOf('TS')))),
    ['14: TS2345', '15: TS2551'],
    `only the wrong decorator value and the typo fail: ${errors.join('; ')}`,
  )
})
