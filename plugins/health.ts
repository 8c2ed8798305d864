/**
 * `health({ path, draining })`: a health endpoint for load balancers and
 * orchestrators, as gateway middleware. `GET` or `HEAD` on the path
 * (default `/healthz`) answers `200 ok`, or `503 draining` while
 * `draining()` says the process is shutting down, so a balancer stops
 * sending it new requests before it goes away. Every other request passes
 * to the app. The answer is never cached, and is made without the app, so
 * a probe tests the process, not one route.
 */
import type { Middleware } from '../lib/gateway/spec.js'

export interface HealthOptions {
  /** The path that answers (query ignored); default `/healthz`. */
  path?: string
  /** True while the process is draining: the endpoint then answers 503. */
  draining?: () => boolean
}

export const DEFAULT_HEALTH_PATH = '/healthz'

const OK = 'ok'
const DRAINING = 'draining'

/** Answers health checks on one path; see the file's comment. */
export function health(options: HealthOptions = {}): Middleware {
  const path = options.path ?? DEFAULT_HEALTH_PATH
  if (typeof path !== 'string' || !path.startsWith('/') || /[?#\s]/.test(path)) {
    throw new Error(`health: path must start with "/" and hold no "?", "#" or spaces, got ${JSON.stringify(path)}`)
  }
  const draining = options.draining
  if (draining !== undefined && typeof draining !== 'function') throw new TypeError('health: `draining` must be a function')
  return (app) => (environ, startResponse) => {
    const method = environ.REQUEST_METHOD
    if ((method !== 'GET' && method !== 'HEAD') || environ.SCRIPT_NAME + environ.PATH_INFO !== path) {
      return app(environ, startResponse)
    }
    const body = draining?.() === true ? DRAINING : OK
    startResponse(body === OK ? '200 OK' : '503 Service Unavailable', [
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Cache-Control', 'no-store'],
    ])
    // The server drops the body of a HEAD answer but still frames it, so HEAD gets GET's Content-Length.
    return [body]
  }
}
