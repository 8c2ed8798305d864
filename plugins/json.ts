/**
 * The JSON response format. When a route declares a response schema for a
 * status, its value is serialized by fast-json-stringify, compiled once when
 * the route is added (fast, and it sends only the declared properties);
 * otherwise by `JSON.stringify`. `json(handler, { response })` makes a
 * gateway app of a handler.
 */
import fastJson from 'fast-json-stringify'
import type { GatewayApp } from '../lib/gateway/spec.js'
import { responder, type ResponseFormat, type Serializer, type ValueHandler } from './response.js'
import { textFormats } from './text.js'

export const JSON_TYPE = 'application/json; charset=utf-8'

/** A JSON schema, as a plain object (or `true`/`false`): what ajv validates and fast-json-stringify compiles. */
export type JsonSchema = Record<string, unknown> | boolean

/** @deprecated Renamed {@link JsonSchema}. */
export type Schema = JsonSchema

/** Response schemas by status: `200`, `'2xx'` or `'default'`. */
export type ResponseSchemas = Record<number | string, JsonSchema>

/** Anything else → JSON. */
export const jsonFormat: ResponseFormat = {
  name: 'json',
  accepts: () => true,
  serialize: (value, { serializer }) => ({ type: JSON_TYPE, payload: serializer === undefined ? stringify(value) : serializer(value) }),
}

function stringify(value: unknown): string {
  const out = JSON.stringify(value)
  // JSON.stringify gives undefined for functions and symbols: send null rather than nothing.
  return out === undefined ? 'null' : out
}

/** Compiles one serializer per declared status. */
export function compileSerializers(schemas: ResponseSchemas | undefined): (status: number) => Serializer | undefined {
  if (schemas === undefined) return () => undefined
  const exact = new Map<number, Serializer>()
  const ranges = new Map<number, Serializer>()
  let fallback: Serializer | undefined
  for (const [key, schema] of Object.entries(schemas)) {
    const compiled = fastJson(schema as fastJson.AnySchema) as Serializer
    if (/^[1-5]\d\d$/.test(key)) exact.set(Number(key), compiled)
    else if (/^[1-5]xx$/i.test(key)) ranges.set(Number(key[0]), compiled)
    else if (key === 'default') fallback = compiled
    else throw new TypeError(`postern: response schema key ${JSON.stringify(key)} is not a status code, '2xx' or 'default'`)
  }
  return (status) => exact.get(status) ?? ranges.get((status / 100) | 0) ?? fallback
}

/** The built-in formats in the order they are tried: text, bytes, streams, then JSON. */
export const defaultFormats: readonly ResponseFormat[] = [...textFormats, jsonFormat]

export interface JsonOptions {
  /** Response schemas by status, compiled once here. */
  response?: ResponseSchemas
}

/** A gateway app answering with the handler's value as JSON (strings, bytes and streams as such; `undefined` → 204). */
export function json(handler: ValueHandler, options: JsonOptions = {}): GatewayApp {
  return responder(handler, defaultFormats, compileSerializers(options.response))
}

/** @deprecated Renamed {@link jsonFormat}. */
export const jsonPlugin = jsonFormat
/** @deprecated Renamed {@link defaultFormats}. */
export const defaultPlugins = defaultFormats
