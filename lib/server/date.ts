/**
 * The `Date` header value (RFC 9110 §6.6.1), formatted once per second
 * rather than once per response: formatting a date costs more than the rest
 * of a small response head.
 */
let nextSecond = 0
let cached = ''

/** `Date: Tue, 25 Nov 2026 13:14:55 GMT\r\n`, ready to append to a head. */
export function dateLine(): string {
  const now = Date.now()
  if (now >= nextSecond) {
    nextSecond = now - (now % 1000) + 1000
    cached = `Date: ${new Date(now).toUTCString()}\r\n`
  }
  return cached
}
