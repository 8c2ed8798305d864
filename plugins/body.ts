/**
 * Request inputs: body parsers (JSON, text, URL-encoded forms) with a size
 * limit, the query and header views, and schema validation of body, query,
 * params and headers with ajv. Usable as gateway middleware
 * (`bodyParser()`, `validation()`) or piece by piece by the framework.
 *
 * JSON is parsed with secure-json-parse, which refuses `__proto__` and
 * `constructor.prototype` keys: a parsed body can never poison prototypes.
 */
import { parse as parseQueryString } from 'node:querystring'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import sjson from 'secure-json-parse'
import { errorAnswer } from '../lib/gateway/errors.js'
import { GatewayError, type Environ, type GatewayApp, type Middleware } from '../lib/gateway/spec.js'
import { statusLine } from '../lib/gateway/headers.js'
import { DEFAULT_BODY_LIMIT } from '../lib/gateway/limits.js'
import type { JsonSchema } from './json.js'
import { PARAMS_KEY } from './router.js'

/** Environ key where {@link bodyParser} leaves the parsed body. */
export const BODY_KEY = 'body.parsed'
/** Environ key where {@link validation} leaves the parsed (and coerced) query. */
export const QUERY_KEY = 'body.query'

/** Default body limit: the server's (1 MiB). */
export { DEFAULT_BODY_LIMIT }

/** Turns the body's text into a value; throw a {@link GatewayError} (400) for malformed input. */
export type BodyParser = (text: string) => unknown

export interface BodyOptions {
  /** Largest body in bytes; over it: 413. Default 1 MiB. */
  limit?: number
  /** Parsers by media type (`'application/xml'`), consulted before the built-in ones. */
  parsers?: Record<string, BodyParser>
  /** Reads the body (default: `environ['gateway.input'].bytes(limit)`); the framework passes its cached reader. */
  read?: (limit: number) => Promise<Uint8Array>
}

/** Parses JSON, refusing prototype-poisoning keys. A malformed body is a 400. */
export function parseJson(text: string): unknown {
  try {
    return sjson.parse(text, null, { protoAction: 'error', constructorAction: 'error' })
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new GatewayError(400, `Invalid JSON body: ${reason}`, { cause: error })
  }
}

/** Parses `a=1&b=2&b=3` into a null-prototype object; repeated keys become arrays. */
export function parseForm(text: string): Record<string, string | string[]> {
  const out = Object.create(null) as Record<string, string | string[]>
  for (const [key, value] of new URLSearchParams(text)) {
    const prev = out[key]
    if (prev === undefined) out[key] = value
    else if (Array.isArray(prev)) prev.push(value)
    else out[key] = [prev, value]
  }
  return out
}

const BUILT_IN: Record<string, BodyParser> = {
  'application/json': parseJson,
  'text/plain': (text) => text,
  'application/x-www-form-urlencoded': parseForm,
}

/** The media type of a Content-Type value, lower-cased, without parameters. */
export function mediaType(contentType: string): string {
  const semi = contentType.indexOf(';')
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase()
}

/** Whether the request has a body at all (a declared length above 0, or chunked). */
export function hasBody(environ: Environ): boolean {
  const input = environ['gateway.input']
  if (input !== undefined && input !== null && typeof input === 'object') return input.length !== 0
  return environ.CONTENT_LENGTH !== '' && environ.CONTENT_LENGTH !== '0'
}

/**
 * Reads and parses the request body by its Content-Type. No body →
 * `undefined`; an unknown type → 415; over the limit → 413; malformed → 400.
 */
export async function parseBody(environ: Environ, options: BodyOptions = {}): Promise<unknown> {
  if (!hasBody(environ)) return undefined
  const type = mediaType(environ.CONTENT_TYPE)
  const parser = options.parsers?.[type] ?? BUILT_IN[type] ?? (type.endsWith('+json') ? parseJson : undefined)
  if (parser === undefined) {
    throw new GatewayError(415, type === '' ? 'Missing Content-Type for a request body' : `Unsupported Content-Type: ${type}`)
  }
  const limit = options.limit ?? DEFAULT_BODY_LIMIT
  const bytes = options.read ? await options.read(limit) : await environ['gateway.input'].bytes(limit)
  return parser(decoder.decode(bytes))
}

const decoder = new TextDecoder('utf-8', { fatal: false })

/** Parses the query string into a null-prototype object; repeated keys become arrays. */
export function parseQuery(query: string): Record<string, string | string[]> {
  const out = Object.create(null) as Record<string, string | string[]>
  if (query === '') return out
  return Object.assign(out, parseQueryString(query))
}

/** The request headers as a null-prototype object with lower-case names (`content-type` included). */
export function requestHeaders(environ: Environ): Record<string, string> {
  const out = Object.create(null) as Record<string, string>
  if (environ.CONTENT_TYPE !== '') out['content-type'] = environ.CONTENT_TYPE
  if (environ.CONTENT_LENGTH !== '') out['content-length'] = environ.CONTENT_LENGTH
  for (const key in environ) {
    if (key.charCodeAt(0) === 72 && key.startsWith('HTTP_')) {
      const value = environ[key]
      if (typeof value === 'string') out[key.slice(5).toLowerCase().replace(/_/g, '-')] = value
    }
  }
  return out
}

/** Answers with a parse or validation error as text (message shown for 4xx). */
function errorApp(error: unknown): GatewayApp {
  return (_environ, startResponse) => {
    const { status, message } = errorAnswer(error)
    startResponse(statusLine(status), [['content-type', 'text/plain; charset=utf-8']])
    return [message]
  }
}

/** Gateway middleware: parses the body into `environ['body.parsed']` before the inner app runs. */
export function bodyParser(options: BodyOptions = {}): Middleware {
  return (app) => async (environ, startResponse) => {
    try {
      environ[BODY_KEY] = await parseBody(environ, options)
    } catch (error) {
      return errorApp(error)(environ, startResponse)
    }
    return app(environ, startResponse)
  }
}

// ── Validation ──────────────────────────────────────────────────────────────

/** Schemas for the request's parts. */
export interface InputSchemas {
  body?: JsonSchema
  query?: JsonSchema
  /** The query's schema by Fastify's name: the same as `query` (give one of the two). */
  querystring?: JsonSchema
  params?: JsonSchema
  headers?: JsonSchema
}

/** Checks (and coerces, fills defaults in) one part; returns a 400 error or null. */
export type Check = (data: unknown) => GatewayError | null

/** Query, params and headers arrive as strings: coerce them to the schema's types. */
const coercing = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false, strict: false })
/** Bodies keep their JSON types. */
const exact = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false })

function describe(part: string, errors: ErrorObject[] | null | undefined): string {
  const first = errors?.[0]
  if (first === undefined) return `${part} is invalid`
  return `${part}${first.instancePath} ${first.message ?? 'is invalid'}`
}

function compileCheck(part: 'body' | 'query' | 'params' | 'headers', schema: JsonSchema): Check {
  const ajv = part === 'body' ? exact : coercing
  let validate: ValidateFunction
  if (part === 'headers' && typeof schema === 'object' && schema.properties && typeof schema.properties === 'object') {
    // Header names are case-insensitive: the view has them lower-cased, so lower-case the schema's too.
    const properties = Object.fromEntries(Object.entries(schema.properties as Record<string, unknown>).map(([k, v]) => [k.toLowerCase(), v]))
    const required = Array.isArray(schema.required) ? (schema.required as string[]).map((k) => k.toLowerCase()) : schema.required
    validate = ajv.compile({ ...schema, properties, ...(required === undefined ? {} : { required }) })
  } else {
    validate = ajv.compile(schema)
  }
  return (data) => (validate(data) ? null : new GatewayError(400, describe(part, validate.errors)))
}

/** Compiled checks for the parts that have a schema (compile once, at route registration). */
export interface Checks {
  body?: Check
  query?: Check
  params?: Check
  headers?: Check
}

export function compileChecks(schemas: InputSchemas): Checks {
  if (schemas.query !== undefined && schemas.querystring !== undefined) throw new TypeError('postern: give the query schema as `query` or `querystring`, not both')
  const checks: Checks = {}
  for (const part of ['body', 'query', 'params', 'headers'] as const) {
    const schema = part === 'query' ? (schemas.query ?? schemas.querystring) : schemas[part]
    if (schema !== undefined) checks[part] = compileCheck(part, schema)
  }
  return checks
}

/**
 * Gateway middleware: validates params (`environ['router.params']`), query
 * (parsed into `environ['body.query']`), headers and body (parsed into
 * `environ['body.parsed']`) against the schemas; 400 naming the field that
 * failed.
 */
export function validation(schemas: InputSchemas, options: BodyOptions = {}): Middleware {
  const checks = compileChecks(schemas)
  return (app) => async (environ, startResponse) => {
    try {
      if (checks.params) throwIf(checks.params((environ[PARAMS_KEY] ??= Object.create(null))))
      if (checks.query) throwIf(checks.query((environ[QUERY_KEY] = parseQuery(environ.QUERY_STRING))))
      if (checks.headers) throwIf(checks.headers(requestHeaders(environ)))
      if (checks.body) {
        const body = (environ[BODY_KEY] = await parseBody(environ, options))
        throwIf(checks.body(body))
      }
    } catch (error) {
      return errorApp(error)(environ, startResponse)
    }
    return app(environ, startResponse)
  }
}

function throwIf(error: GatewayError | null): void {
  if (error !== null) throw error
}
