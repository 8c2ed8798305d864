/**
 * `FromSchema<S>`: the TypeScript type a JSON schema describes, so a route
 * with a body schema gets a typed `req.body` without writing the type twice.
 * It covers the subset routes use most: `type` (string, number, integer,
 * boolean, null, array with `items`, object with `properties` and
 * `required`), `enum` and `const`. Anything else is `unknown`; pass the type
 * yourself (`app.post<'/path', Body>(…)`) for richer schemas.
 */
export type FromSchema<S> = S extends { const: infer C }
  ? C
  : S extends { enum: ReadonlyArray<infer E> }
    ? E
    : S extends { type: 'string' }
      ? string
      : S extends { type: 'number' | 'integer' }
        ? number
        : S extends { type: 'boolean' }
          ? boolean
          : S extends { type: 'null' }
            ? null
            : S extends { type: 'array'; items: infer I }
              ? Array<FromSchema<I>>
              : S extends { type: 'object'; properties: infer P }
                ? Simplify<ObjectFrom<P, S extends { required: ReadonlyArray<infer R> } ? R : never>>
                : S extends { type: 'object' }
                  ? Record<string, unknown>
                  : unknown

/** Required properties as required, the others optional. */
type ObjectFrom<P, R> = { -readonly [K in keyof P as K extends R ? K : never]: FromSchema<P[K]> } & {
  -readonly [K in keyof P as K extends R ? never : K]?: FromSchema<P[K]>
}

/** Flattens an intersection for readable hover types. */
type Simplify<T> = { [K in keyof T]: T[K] } & {}

/** The body type of a route schema: `FromSchema` of its `body`, else `unknown`. */
export type BodyOf<S> = S extends { body: infer B } ? FromSchema<B> : unknown
