/**
 * `FromSchema<S>`: the TypeScript type a JSON schema describes, so a route
 * with schemas gets a typed `req.body`, `req.query`, `req.params` and
 * `req.headers` without writing each type twice. Write the schema `as const`
 * (or inline in the route) so its literal types survive.
 *
 * It covers the subset routes use most: `type` (string, number, integer,
 * boolean, null, a list of types, array with `items`, object with
 * `properties`, `required` and `additionalProperties`), `nullable`, `enum`,
 * `const`, `anyOf` and `oneOf`. A property with a `default` is required:
 * the validator fills it in before the handler runs. Anything else is
 * `unknown`; pass the type yourself (`app.post<'/path', Body>(…)`) for
 * richer schemas.
 */
import type { ParamsOf } from './path-params.js'
import type { Query, RequestHeaders } from './request.js'

export type FromSchema<S> = S extends boolean
  ? unknown
  : S extends { const: infer C }
    ? C
    : S extends { enum: ReadonlyArray<infer E> }
      ? E
      : S extends { anyOf: ReadonlyArray<infer A> }
        ? FromSchema<A>
        : S extends { oneOf: ReadonlyArray<infer A> }
          ? FromSchema<A>
          : S extends { nullable: true }
            ? FromSchema<Omit<S, 'nullable'>> | null
            : S extends { type: ReadonlyArray<infer T> }
              ? T extends unknown
                ? FromSchema<Omit<S, 'type'> & { type: T }>
                : never
              : FromType<S>

/** One `type` keyword's type. */
type FromType<S> = S extends { type: 'string' }
  ? string
  : S extends { type: 'number' | 'integer' }
    ? number
    : S extends { type: 'boolean' }
      ? boolean
      : S extends { type: 'null' }
        ? null
        : S extends { type: 'array'; items: infer I }
          ? Array<FromSchema<I>>
          : S extends { type: 'array' }
            ? unknown[]
            : S extends { type: 'object' }
              ? FromObject<S>
              : S extends { properties: object }
                ? FromObject<S>
                : unknown

/** An object schema: its properties, or a map when it only has `additionalProperties`. */
type FromObject<S> = S extends { properties: infer P }
  ? Simplify<ObjectFrom<P, S extends { required: ReadonlyArray<infer R> } ? R : never>>
  : S extends { additionalProperties: infer A extends object }
    ? Record<string, FromSchema<A>>
    : Record<string, unknown>

/** Required (or defaulted) properties as required, the others optional. */
type ObjectFrom<P, R> = { -readonly [K in keyof P as K extends R ? K : P[K] extends { default: unknown } ? K : never]: FromSchema<P[K]> } & {
  -readonly [K in keyof P as K extends R ? never : P[K] extends { default: unknown } ? never : K]?: FromSchema<P[K]>
}

/** Flattens an intersection for readable hover types. */
type Simplify<T> = { [K in keyof T]: T[K] } & {}

/** `FromSchema<S>`, or `fallback` when the schema says nothing TypeScript can use. */
type Typed<S, Fallback> = unknown extends FromSchema<S> ? Fallback : FromSchema<S>

/** The body type of a route schema: `FromSchema` of its `body`, else `unknown`. */
export type BodyOf<S> = S extends { body: infer B } ? FromSchema<B> : unknown

/** The query type of a route schema (`querystring`, or `query`); without one, the strings as parsed. */
export type QueryOf<S> = S extends { querystring: infer Q } ? Typed<Q, Query> : S extends { query: infer Q } ? Typed<Q, Query> : Query

/**
 * The params type of a route: the path's params (`/users/:id` → `{ id: string }`),
 * with the types of the `params` schema where it has them (`integer` → number).
 * A param the path always has stays required even if the schema does not list it in `required`.
 */
export type ParamsFrom<P extends string, S> = S extends { params: infer X } ? MergeParams<ParamsOf<P>, Typed<X, unknown>> : ParamsOf<P>

type MergeParams<Path, Schema> = unknown extends Schema
  ? Path
  : string extends keyof Schema
    ? Path
    : Simplify<{ [K in keyof Path]: K extends keyof Schema ? Exclude<Schema[K], undefined> : Path[K] } & Omit<Schema, keyof Path>>

/**
 * The headers type of a route: the `headers` schema's properties, by their
 * lower-case names (as `req.headers` has them), over every other header as a string.
 */
export type HeadersOf<S> = S extends { headers: infer X } ? SchemaHeaders<Typed<X, unknown>> : RequestHeaders

type SchemaHeaders<H> = unknown extends H
  ? RequestHeaders
  : string extends keyof H
    ? RequestHeaders
    : Simplify<{ [K in keyof H as K extends string ? Lowercase<K> : K]: H[K] }> & { [name: string]: string | H[keyof H] }

/**
 * What a handler may return with response schemas: a value of one of them
 * (any status; TypeScript cannot tie it to `reply.status()`); `unknown`
 * (anything) without them.
 */
export type ReplyOf<S> = S extends { response: infer R } ? (R extends object ? Typed<R[keyof R], unknown> : unknown) : unknown
