/**
 * Middleware composition in onion order: `chain(a, b, c)(app)` is
 * `a(b(c(app)))`, so `a` sees the request first and the response last.
 * Middleware is plain gateway middleware, `(app) => app`: it can act before
 * the inner app, wrap `startResponse`, or transform the body on the way out
 * (see {@link mapBody}).
 */
import type { Body, Chunk, GatewayApp, Middleware, AppResult } from '../lib/gateway/spec.js'

/** Composes middleware into one middleware; the first given is the outermost. */
export function chain(...middleware: Middleware[]): Middleware {
  return (app) => {
    let wrapped = app
    for (let i = middleware.length - 1; i >= 0; i--) wrapped = middleware[i]!(wrapped)
    return wrapped
  }
}

/** Wraps `app` in `middleware` (first outermost): `compose([a, b], app)` is `a(b(app))`. */
export function compose(middleware: readonly Middleware[], app: GatewayApp): GatewayApp {
  return middleware.length === 0 ? app : chain(...middleware)(app)
}

/**
 * Transforms each chunk of an app's result on the way out, keeping it
 * synchronous when it was (arrays stay arrays, so the server still knows
 * the length) and passing `close()` through to the inner body.
 */
export function mapBody(result: AppResult, fn: (chunk: Chunk) => Chunk): AppResult {
  if (result instanceof Promise) return result.then((body) => mapBody(body, fn) as Body)
  const body = result as Body
  if (Array.isArray(body)) {
    const out: Chunk[] & { close?(): void | Promise<void> } = (body as Chunk[]).map(fn)
    const close = (result as Body).close
    if (close) out.close = () => close.call(result)
    return out
  }
  const mapped: AsyncIterable<Chunk> & { close(): void | Promise<void> } = {
    async *[Symbol.asyncIterator]() {
      for await (const chunk of body) yield fn(chunk)
    },
    close: () => body.close?.(),
  }
  return mapped
}
