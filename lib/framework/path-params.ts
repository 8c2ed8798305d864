/**
 * Route params typed from the path pattern: `app.get('/users/:id', (req) =>
 * req.params.id)` knows `id` is a string, with no type written by hand. The
 * pattern syntax is find-my-way's: `:name`, `:name?` (optional), `:name(re)`,
 * several params in a segment (`:from-:to`, `:file.:ext`) and a trailing `*`.
 */

/** A parameter's name without its regexp (`id(^\\d+)` → `id`). */
type ParamName<S extends string> = S extends `${infer N}(${string}` ? N : S

/** The parameter names in one path segment (`:from-:to`, `:file.:ext`). */
type SegmentParams<S extends string> = S extends `${infer A}-:${infer B}`
  ? ParamName<A> | SegmentParams<B>
  : S extends `${infer A}.:${infer B}`
    ? ParamName<A> | SegmentParams<B>
    : ParamName<S>

/** Every parameter name in a path pattern, optional ones ending in `?`. */
export type PathParamNames<P extends string> = P extends `${string}:${infer Rest}`
  ? Rest extends `${infer Segment}/${infer Tail}`
    ? SegmentParams<Segment> | PathParamNames<`/${Tail}`>
    : SegmentParams<Rest>
  : never

type Required_<N> = N extends `${string}?` ? never : N
type Optional_<N> = N extends `${infer M}?` ? M : never

/** The params object of a path pattern: `/users/:id` → `{ id: string }`; a wildcard adds `'*'`. */
export type ParamsOf<P extends string> = string extends P
  ? Record<string, string>
  : Simplify<{ [K in Required_<PathParamNames<P>>]: string } & { [K in Optional_<PathParamNames<P>>]?: string } & (P extends `${string}*` ? { '*': string } : unknown)>

/** One object type rather than an intersection, for readable hover types. */
type Simplify<T> = { [K in keyof T]: T[K] } & {}
