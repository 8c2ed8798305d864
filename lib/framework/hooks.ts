/**
 * Hooks (Fastify's lifecycle hooks): the lists each scope keeps, how a
 * route collects them from its scopes once when it is built, and how they
 * run per request. Runners stay synchronous until a hook returns a promise,
 * so a route whose hooks are all synchronous answers synchronously.
 */
import { reportError } from '../gateway/errors.js'
import type { Serialized } from '../../plugins/response.js'
import type { Reply } from './reply.js'
import type { Request } from './request.js'
import type { HookName, Hooks, RequestHook, SendHook } from './types.js'

/** Every per-request hook a scope has, by name, in the order they were added. */
export type HookLists = { [K in HookName]: Array<Hooks[K]> }

export function emptyHooks(): HookLists {
  return { onRequest: [], preHandler: [], onSend: [], onResponse: [], onError: [] }
}

/** Whether a value is a promise or promise-like (what the runners wait for; anything else is synchronous). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function'
}

/** A route's hooks of one name: its scopes' from the root down, then the route's own. */
export function collectHooks<K extends HookName>(scopes: ReadonlyArray<{ readonly hooks: HookLists }>, name: K, own: Hooks[K] | Array<Hooks[K]> | undefined): Array<Hooks[K]> {
  const out: Array<Hooks[K]> = []
  for (const s of scopes) out.push(...s.hooks[name])
  if (Array.isArray(own)) out.push(...own)
  else if (own !== undefined) out.push(own)
  return out
}

/** Runs request steps (hooks, checks) from `i`, until one answers with `reply.send()`. */
export function runSteps(steps: readonly RequestHook[], i: number, req: Request, reply: Reply): void | Promise<void> {
  for (; i < steps.length; i++) {
    if (reply.sent) return
    const result = steps[i]!(req, reply)
    if (isThenable(result)) {
      const next = i + 1
      return Promise.resolve(result).then(() => runSteps(steps, next, req, reply))
    }
  }
}

/** Runs onSend hooks from `i`; each sees the payload so far and may return a replacement. */
export function runOnSend(hooks: readonly SendHook[], i: number, req: Request, reply: Reply, serialized: Serialized): Serialized | Promise<Serialized> {
  for (; i < hooks.length; i++) {
    const result = hooks[i]!(req, reply, serialized.payload)
    if (isThenable(result)) {
      const next = i + 1
      return Promise.resolve(result).then((payload) => runOnSend(hooks, next, req, reply, payload === undefined ? serialized : { type: serialized.type, payload }))
    }
    if (result !== undefined) serialized = { type: serialized.type, payload: result }
  }
  return serialized
}

/** Runs onResponse hooks once the response is done; nobody is left to answer, so failures are only reported. */
export function runOnResponse(hooks: readonly RequestHook[], req: Request, reply: Reply): void {
  for (const hook of hooks) {
    try {
      const result = hook(req, reply)
      if (isThenable(result)) Promise.resolve(result).catch((error: unknown) => reportError(req.environ['gateway.errors'], 'onResponse hook failed', error))
    } catch (error) {
      reportError(req.environ['gateway.errors'], 'onResponse hook failed', error)
    }
  }
}
