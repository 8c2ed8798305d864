/**
 * Schemas: inputs are validated with ajv (400 naming the field that failed;
 * query and params coerced to their types), responses serialized by a
 * fast-json-stringify function compiled once per status. The same schemas
 * type the handler: `req.body`, `req.query`, `req.params` and the value it
 * returns, with no type written twice.
 * Serve it with `postern examples/schemas.ts:app`.
 */
import { postern, type FromSchema } from '../lib/index.js'

const item = {
  type: 'object',
  required: ['name', 'price'],
  properties: { name: { type: 'string', minLength: 1 }, price: { type: 'number', minimum: 0 } },
  additionalProperties: false,
} as const

/** The type the schema describes: `{ name: string; price: number }`. */
type NewItem = FromSchema<typeof item>

const items = new Map<number, NewItem & { id: number }>()

export const app = postern()

// req.body is typed from the body schema: no type written twice.
app.post(
  '/items',
  { schema: { body: item, response: { 201: { type: 'object', properties: { id: { type: 'integer' }, name: { type: 'string' }, price: { type: 'number' } } } } } },
  (req, reply) => {
    const id = items.size + 1
    const created = { id, ...req.body }
    items.set(id, created)
    reply.status(201).header('location', `/items/${id}`)
    return created
  },
)

// `limit` is a number here: the query is coerced to the schema's types (and its default filled in) before the handler runs.
app.get('/items', { schema: { querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 10 } } } } }, (req) =>
  [...items.values()].slice(0, req.query.limit),
)

// `id` is a number: the params schema's type wins over the path's string.
app.get('/items/:id', { schema: { params: { type: 'object', properties: { id: { type: 'integer' } } } } }, (req, reply) => {
  const found = items.get(req.params.id)
  if (found === undefined) {
    reply.status(404)
    return { error: 'not found' }
  }
  return found
})

export default app
