/**
 * Route bodies typed from their schemas. The type checks are compile-time
 * (`npm test` type-checks this file first): a wrong use of `req.body` fails
 * the build, marked here with @ts-expect-error. The run-time half checks the
 * same route validates and answers as typed.
 */
import t from 'tap'
import { postern } from '../../lib/framework/app.js'
import type { FromSchema } from '../../lib/framework/schema-type.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
const assertType = <T extends true>(): T | undefined => undefined

const user = {
  type: 'object',
  required: ['name', 'tags'],
  properties: {
    name: { type: 'string' },
    age: { type: 'integer' },
    tags: { type: 'array', items: { type: 'string' } },
    role: { enum: ['admin', 'user'] },
    active: { type: 'boolean' },
  },
} as const

assertType<Equal<FromSchema<typeof user>, { name: string; tags: string[]; age?: number; role?: 'admin' | 'user'; active?: boolean }>>()
assertType<Equal<FromSchema<{ type: 'string' }>, string>>()
assertType<Equal<FromSchema<{ description: 'no type' }>, unknown>>()

t.test('req.body is typed from schema.body and validated against it', async (t) => {
  const app = postern()
  app.post('/users', { schema: { body: user } }, (req) => {
    const name: string = req.body.name
    const firstTag: string | undefined = req.body.tags[0]
    // @ts-expect-error age is optional: possibly undefined
    const age: number = req.body.age
    // @ts-expect-error no such property in the schema
    void req.body.email
    return { name, firstTag, age: age ?? null }
  })
  const ok = await app.inject({ method: 'POST', url: '/users', body: { name: 'Ada', tags: ['x'] } })
  t.equal(ok.status, 200)
  t.same(ok.json(), { name: 'Ada', firstTag: 'x', age: null })
  const bad = await app.inject({ method: 'POST', url: '/users', body: { name: 'Ada' } })
  t.equal(bad.status, 400)
  t.match(bad.json<{ message: string }>().message, /tags/)
})

t.test('an explicit body type still wins over the schema', async (t) => {
  interface Explicit {
    name: string
    nickname: string
  }
  const app = postern()
  app.post<'/x', Explicit>('/x', { schema: { body: user } }, (req) => req.body.nickname ?? 'none')
  t.equal((await app.inject({ method: 'POST', url: '/x', body: { name: 'a', tags: [] } })).body, 'none')
})
