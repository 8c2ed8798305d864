/**
 * The framework's error answers. Which status an error answers with, what
 * the client may read of it and how it is logged are the gateway's one
 * error policy (lib/gateway/errors.ts); this file only renders it the
 * framework's way, as JSON `{ statusCode, error, message }`, and runs the
 * app's onError hooks and error handler (Fastify's error-handler.js).
 */
import { errorStatus, publicMessage, reportError } from '../gateway/errors.js'
import { STATUS_TEXT } from '../gateway/headers.js'
import type { Body, StartResponse } from '../gateway/spec.js'
import { JSON_TYPE } from '../../plugins/json.js'
import { start, type Serialized } from '../../plugins/response.js'
import { ALLOW_KEY, rawPathInfo } from '../../plugins/router.js'
import { isThenable } from './hooks.js'
import type { Reply } from './reply.js'
import type { Request } from './request.js'
import type { ErrorHandler, ErrorHook, Handler } from './types.js'

/** The framework's error response body. */
export interface ErrorBody {
  statusCode: number
  error: string
  message: string
}

/** The default error response: the error's status and public message (5xx messages are not shown). */
export function defaultErrorValue(error: unknown, reply: Reply): ErrorBody {
  const status = errorStatus(error)
  reply.statusCode = status
  return { statusCode: status, error: STATUS_TEXT[status] ?? 'Error', message: publicMessage(error, status) }
}

/**
 * What to answer an error with (or a promise of it), the reply's status set:
 * 5xx errors are reported, the onError hooks observe the error, then the
 * scope's error handler (or the default) gives the value. Never throws: a
 * failing hook or handler is reported, a failing handler answered by default.
 */
export function errorValue(onError: readonly ErrorHook[], handler: ErrorHandler | null, req: Request, reply: Reply, error: unknown): unknown {
  // A response replaced by an error keeps none of the headers set for it.
  reply.headers = null
  reply.sent = false
  const errors = req.environ['gateway.errors']
  // The request is named even without a logger, so a stack in a plain log says which request it was.
  if (errorStatus(error) >= 500) reportError(errors, `request ${req.method} ${req.url} failed`, error)
  const pending = runOnError(onError, req, reply, error)
  if (pending !== undefined) return pending.then(() => handlerValue(handler, req, reply, error))
  return handlerValue(handler, req, reply, error)
}

/**
 * Runs the onError hooks (they observe; a failing one is reported); a
 * promise when one of them returned one. Never throws.
 */
export function runOnError(onError: readonly ErrorHook[], req: Request, reply: Reply, error: unknown): Promise<void> | undefined {
  const errors = req.environ['gateway.errors']
  let pending: Promise<void> | undefined
  for (const hook of onError) {
    try {
      const result = hook(req, reply, error)
      if (isThenable(result)) pending = (pending ?? Promise.resolve()).then(() => result).catch((e: unknown) => reportError(errors, 'onError hook failed', e))
    } catch (e) {
      reportError(errors, 'onError hook failed', e)
    }
  }
  return pending
}

function handlerValue(handler: ErrorHandler | null, req: Request, reply: Reply, error: unknown): unknown {
  if (handler === null) return defaultErrorValue(error, reply)
  reply.statusCode = errorStatus(error)
  let value: unknown
  try {
    value = handler(error, req, reply)
  } catch (handlerError) {
    return handlerFailed(req, reply, handlerError)
  }
  if (isThenable(value)) return Promise.resolve(value).catch((handlerError: unknown) => handlerFailed(req, reply, handlerError))
  return value
}

function handlerFailed(req: Request, reply: Reply, handlerError: unknown): ErrorBody {
  reportError(req.environ['gateway.errors'], 'error handler failed', handlerError)
  return defaultErrorValue(handlerError, reply)
}

const LAST_RESORT: Serialized = { type: JSON_TYPE, payload: '{"statusCode":500,"error":"Internal Server Error","message":"Internal Server Error"}' }

/** When answering an error failed too: a plain 500 with no hooks. */
export function lastResort(req: Request, reply: Reply, error: unknown, startResponse: StartResponse): Body {
  reportError(req.environ['gateway.errors'], 'error response failed', error)
  reply.headers = null
  reply.statusCode = 500
  return start(startResponse, 500, null, LAST_RESORT)
}

/**
 * The default not-found handler: a 404 answered, not thrown. As in Fastify,
 * an unknown route is not an error of the app, so the error handler (which
 * may answer every error with a 500) and onError hooks never see it.
 */
export const defaultNotFound: Handler = (req, reply) => {
  reply.status(404)
  return { statusCode: 404, error: 'Not Found', message: `Route ${req.method} ${rawPathInfo(req.environ) || req.path} not found` } satisfies ErrorBody
}

/**
 * 405 in the framework's error form, answered like the 404 (not through the
 * error handler), through the hooks and middleware of the scope whose routes
 * the path has; the router gives the methods for `Allow`.
 */
export const methodNotAllowed: Handler = (req, reply) => {
  reply.status(405).header('allow', (req.environ[ALLOW_KEY] as string[]).join(', '))
  return { statusCode: 405, error: 'Method Not Allowed', message: `Method ${req.method} not allowed for ${rawPathInfo(req.environ) || req.path}` } satisfies ErrorBody
}

/**
 * `OPTIONS` on a path whose routes take other methods: 204 with `Allow`,
 * answered through the same scope's hooks and middleware as the 405, so that
 * an `onRequest` hook adding CORS headers answers preflights too.
 */
export const automaticOptions: Handler = (req, reply) => {
  reply.status(204).header('allow', (req.environ[ALLOW_KEY] as string[]).join(', '))
  return undefined
}
