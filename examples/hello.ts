/**
 * The smallest gateway app: no framework, just the interface, like the
 * lesson's wsgiapp.py. Serve it with `postern examples/hello.ts:app`.
 */
import type { GatewayApp } from '../lib/gateway/spec.js'

export const app: GatewayApp = (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain; charset=utf-8']])
  return ['Hello, world!']
}

export default app
