/**
 * One request through one route, in the order it happens (read top to
 * bottom, like Koa's application.js):
 *
 *   1. `routeApp`: a Request and a Reply of the route's scope (with its
 *      decorators), then the steps: onRequest hooks, input checks, body
 *      parsing, preHandler hooks. Any step may answer with `reply.send()`.
 *   2. `handle`: the handler, unless a step answered.
 *   3. `respond`: the value serialized by the first response format that
 *      takes it (a declared response schema's serializer for JSON), then the
 *      onSend hooks.
 *   4. `finish`: the response started; the onResponse hooks run when the
 *      server closes the body.
 *   On error, anywhere: `fail` asks error-handler.ts for the value to answer
 *   with and responds with it as in 3. If that fails too: a plain 500.
 *
 * Everything here runs per request, so nothing is allocated that is not
 * needed: the route's lists were resolved when it was built (route.ts), and
 * each stage stays synchronous until something returns a promise, so a sync
 * handler without async hooks answers synchronously with a one-element array.
 */
import type { AppResult, Body, GatewayApp, StartResponse } from '../gateway/spec.js'
import { isChunk, primeStream, serialize, start, type ResponseFormat, type Serialized, type Serializer } from '../../plugins/response.js'
import { writeLog } from '../gateway/errors.js'
import { isThenable, runOnResponse, runOnSend, runSteps } from './hooks.js'
import { errorValue, lastResort } from './error-handler.js'
import { Accepted } from './websocket.js'
import type { Reply } from './reply.js'
import type { Request, RequestContext } from './request.js'
import type { RequestClass, ReplyClass } from './scope.js'
import type { ErrorHandler, ErrorHook, Handler, RequestHook, SendHook } from './types.js'

/** What one route runs, with every list resolved from its scopes (built by route.ts). */
export interface CompiledRoute {
  handler: Handler
  Req: RequestClass
  Rep: ReplyClass
  context: RequestContext
  /** onRequest hooks, input checks, body parsing and preHandler hooks, in order. */
  steps: RequestHook[]
  onSend: SendHook[]
  onResponse: RequestHook[]
  onError: ErrorHook[]
  formats: readonly ResponseFormat[]
  serializerFor: (status: number) => Serializer | undefined
  errorHandler: ErrorHandler | null
}

/** The gateway app of one route. */
export function routeApp(c: CompiledRoute): GatewayApp {
  const timed = c.onResponse.length > 0
  const hasSteps = c.steps.length > 0
  return (environ, startResponse) => {
    const req = new c.Req(environ, c.context)
    const reply = new c.Rep(environ)
    if (timed) reply.startTime = performance.now()
    if (hasSteps) {
      let pending: void | Promise<void>
      try {
        pending = runSteps(c.steps, 0, req, reply)
      } catch (error) {
        return fail(c, req, reply, error, startResponse)
      }
      if (pending !== undefined) {
        return pending.then(
          () => handle(c, req, reply, startResponse),
          (error: unknown) => fail(c, req, reply, error, startResponse),
        )
      }
    }
    return handle(c, req, reply, startResponse)
  }
}

function handle(c: CompiledRoute, req: Request, reply: Reply, startResponse: StartResponse): AppResult {
  if (reply.sent) return respond(c, req, reply, reply.payload, startResponse, false)
  let value: unknown
  try {
    value = c.handler(req, reply)
  } catch (error) {
    return fail(c, req, reply, error, startResponse)
  }
  // A ws route accepted the upgrade: the server answered 101, there is no response to make; the result settles with the socket's handler (websocket.ts).
  if (value instanceof Accepted) return value.done.then(acceptedBody)
  if (isThenable(value)) {
    return Promise.resolve(value).then(
      (v) => respond(c, req, reply, answerOf(req, reply, v), startResponse, false),
      (error: unknown) => fail(c, req, reply, error, startResponse),
    )
  }
  return respond(c, req, reply, answerOf(req, reply, value), startResponse, false)
}

/** The app's result once an accepted socket's handler has returned: no body [ws-app]. */
function acceptedBody(): Body {
  return []
}

/**
 * What a handler answers with. Returning the reply (`return reply.code(201).send(x)`,
 * `return reply.redirect('/x')`, Fastify's style) answers with what was given to
 * `send()`, or nothing. When `send()` was called, its value is the answer: a
 * different value also returned is a mistake, reported to the error log and ignored.
 */
function answerOf(req: Request, reply: Reply, value: unknown): unknown {
  if (value === reply) return reply.sent ? reply.payload : undefined
  if (!reply.sent) return value
  if (value !== undefined && value !== reply.payload) {
    writeLog(req.environ['gateway.errors'], `postern: the handler of ${req.method} ${req.url} called reply.send() and also returned a value; the value given to send() is sent\n`)
  }
  return reply.payload
}

const NOTHING: Serialized = { type: null, payload: null }

/** Serializes the value and runs onSend; `failing` says the value answers an error (a second failure ends in a plain 500). */
function respond(c: CompiledRoute, req: Request, reply: Reply, value: unknown, startResponse: StartResponse, failing: boolean): AppResult {
  if (value === undefined && reply.sent) value = reply.payload
  let serialized: Serialized
  try {
    if (value === undefined) {
      if (reply.statusCode === 200) reply.statusCode = 204
      serialized = NOTHING
    } else {
      serialized = serialize(value, c.formats, { status: reply.statusCode, serializer: c.serializerFor(reply.statusCode) })
    }
    if (c.onSend.length > 0) {
      const sent = runOnSend(c.onSend, 0, req, reply, serialized)
      if (isThenable(sent)) {
        return sent.then(
          (s) => finish(c, req, reply, s, startResponse, failing),
          (error: unknown) => (failing ? lastResort(req, reply, error, startResponse) : fail(c, req, reply, error, startResponse)),
        )
      }
      serialized = sent
    }
  } catch (error) {
    return failing ? lastResort(req, reply, error, startResponse) : fail(c, req, reply, error, startResponse)
  }
  return finish(c, req, reply, serialized, startResponse, failing)
}

/**
 * Starts the response. A stream is primed first (its first chunk pulled):
 * one that fails before producing anything is still an error of the app,
 * answered by the error handler in the framework's form, not a bare 500
 * from the server.
 */
function finish(c: CompiledRoute, req: Request, reply: Reply, serialized: Serialized, startResponse: StartResponse, failing: boolean): AppResult {
  const payload = serialized.payload
  if (payload === null || isChunk(payload)) return started(c, req, reply, serialized, startResponse)
  const onError = (error: unknown): AppResult => (failing ? lastResort(req, reply, error, startResponse) : fail(c, req, reply, error, startResponse))
  let primed: ReturnType<typeof primeStream>
  try {
    primed = primeStream(payload)
  } catch (error) {
    return onError(error)
  }
  if (isThenable(primed)) {
    return primed.then((stream) => started(c, req, reply, { type: serialized.type, payload: stream }, startResponse), onError)
  }
  return started(c, req, reply, { type: serialized.type, payload: primed }, startResponse)
}

function started(c: CompiledRoute, req: Request, reply: Reply, serialized: Serialized, startResponse: StartResponse): Body {
  const body = start(startResponse, reply.statusCode, reply.headers, serialized)
  if (c.onResponse.length === 0) return body
  return withClose(body, () => runOnResponse(c.onResponse, req, reply))
}

/** The error path: the value error-handler.ts gives, answered like any other. */
function fail(c: CompiledRoute, req: Request, reply: Reply, error: unknown, startResponse: StartResponse): AppResult {
  const value = errorValue(c.onError, c.errorHandler, req, reply, error)
  if (isThenable(value)) return Promise.resolve(value).then((v) => respond(c, req, reply, v, startResponse, true))
  return respond(c, req, reply, value, startResponse, true)
}

/** Calls `after` once the server closes the body (after its last byte, or when the client left). */
function withClose(body: Body, after: () => void): Body {
  const inner = body.close
  const close = () => {
    try {
      const closed = inner?.call(body)
      if (isThenable(closed)) return Promise.resolve(closed).finally(after)
    } catch (error) {
      after()
      throw error
    }
    after()
    return undefined
  }
  if (Array.isArray(body)) return Object.assign(body, { close })
  if (Symbol.asyncIterator in body) return { [Symbol.asyncIterator]: () => (body as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator](), close }
  return { [Symbol.iterator]: () => (body as Iterable<Uint8Array | string>)[Symbol.iterator](), close }
}
