/**
 * What every object `fromNode()` hands a Node listener needs to pass for
 * Node's own. These objects are not http.IncomingMessage/ServerResponse
 * (subclassing those with a fake socket is fragile), and Express replaces
 * the prototypes of req and res with its own (which inherit from Node's): so
 * each object carries its API as own properties, and whatever the
 * prototype, it stays ours.
 */
import { describeError } from '../gateway/errors.js'
import { checkHeader } from '../gateway/headers.js'

/** Each class's methods, read once rather than per object. */
const methodsOf = new WeakMap<object, Array<[string | symbol, unknown]>>()

/**
 * Copies a class's methods onto an instance, so a swapped prototype cannot
 * hide them. They become plain data properties, the same function objects
 * for every instance: stores, where defining them (or accessors) would cost
 * microseconds per object. The classes keep their state in data properties
 * for the same reason, not in getters.
 */
export function pinMethods(target: object, proto: object): void {
  let methods = methodsOf.get(proto)
  if (methods === undefined) {
    methods = []
    for (const key of Reflect.ownKeys(proto)) {
      if (key === 'constructor') continue
      const descriptor = Reflect.getOwnPropertyDescriptor(proto, key)!
      if (!('value' in descriptor)) throw new TypeError(`${String(key)}: an accessor cannot be pinned cheaply; keep the state in a data property`)
      methods.push([key, descriptor.value])
    }
    methodsOf.set(proto, methods)
  }
  const slots = target as Record<string | symbol, unknown>
  for (let i = 0; i < methods.length; i++) slots[methods[i]![0]] = methods[i]![1]
}

/**
 * Whatever a listener threw, as an Error (Node streams destroy and emit
 * only Errors). Never throws: a value that cannot be turned into a string (a
 * null-prototype object, a hostile Proxy) is described by the gateway's
 * error policy, and kept as the cause.
 */
export function toError(error: unknown): Error {
  try {
    if (error instanceof Error) return error
  } catch {
    // a Proxy whose getPrototypeOf trap throws: not an Error we can use
  }
  return new Error(describeError(error), { cause: error })
}

/** A header value as Node's `setHeader` takes it. */
export type HeaderValue = string | number | readonly string[]

/** A header value as its list of strings. */
export function toList(value: HeaderValue): string[] {
  return Array.isArray(value) ? value.map(String) : [String(value)]
}

/** Refuses a header value Node would refuse, with Node's error code. */
export function checkValue(name: string, value: HeaderValue): void {
  for (const item of toList(value)) {
    const problem = checkHeader(name, item)
    if (problem !== null) throw Object.assign(new TypeError(problem), { code: 'ERR_INVALID_CHAR' })
  }
}

/** A chunk given to `write()`/`end()` as bytes, refused with Node's error code when it is neither string nor bytes. */
export function toBytes(chunk: unknown, encoding: BufferEncoding | undefined): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk
  if (typeof chunk === 'string') return Buffer.from(chunk, encoding ?? 'utf8')
  throw Object.assign(new TypeError(`the chunk must be a string, Buffer or Uint8Array, got ${chunk === null ? 'null' : typeof chunk}`), { code: 'ERR_INVALID_ARG_TYPE' })
}
