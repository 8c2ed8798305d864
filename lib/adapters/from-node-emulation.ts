/**
 * What every object `fromNode()` hands a Node listener needs to pass for
 * Node's own. These objects are not http.IncomingMessage/ServerResponse
 * (subclassing those with a fake socket is fragile), and Express replaces
 * the prototypes of req and res with its own (which inherit from Node's): so
 * each object carries its API as own properties, and whatever the
 * prototype, it stays ours.
 */
/** Copies a class's methods and accessors onto an instance, so a swapped prototype cannot hide them. */
export function pinMethods(target: object, proto: object): void {
  for (const key of Reflect.ownKeys(proto)) {
    if (key === 'constructor') continue
    Object.defineProperty(target, key, Reflect.getOwnPropertyDescriptor(proto, key)!)
  }
}

/** Whatever a listener threw, as an Error (Node streams destroy and emit only Errors). */
export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}
