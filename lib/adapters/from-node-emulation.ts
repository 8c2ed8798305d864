/**
 * What every object `fromNode()` hands a Node listener needs to pass for
 * Node's own. These objects are not http.IncomingMessage/ServerResponse
 * (subclassing those with a fake socket is fragile), and Express replaces
 * the prototypes of req and res with its own (which inherit from Node's): so
 * each object carries its API as own properties, and whatever the
 * prototype, it stays ours.
 */
import { describeError } from '../gateway/errors.js'

/** Copies a class's methods and accessors onto an instance, so a swapped prototype cannot hide them. */
export function pinMethods(target: object, proto: object): void {
  for (const key of Reflect.ownKeys(proto)) {
    if (key === 'constructor') continue
    Object.defineProperty(target, key, Reflect.getOwnPropertyDescriptor(proto, key)!)
  }
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
