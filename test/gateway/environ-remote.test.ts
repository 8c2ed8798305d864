/**
 * A server that learns the client's address only when asked (Bun) gives
 * `buildEnviron` a RemoteLookup: the environ must be the same object to an
 * app as any other, the same keys in the same order, and the lookup made
 * once, only when `REMOTE_ADDR` or `REMOTE_PORT` is read.
 */
import t from 'tap'
import { buildEnviron, type ConnectionInfo } from '../../lib/gateway/environ.js'
import { EMPTY_INPUT } from '../../lib/gateway/empty-input.js'
import { stderrStream } from '../../lib/gateway/errors.js'

const INFO: ConnectionInfo = {
  serverName: '127.0.0.1',
  serverPort: '3000',
  remoteAddr: '10.1.2.3',
  remotePort: '4567',
  scheme: 'http',
  errors: stderrStream,
  multiprocess: false,
}
const HEADERS = ['Host', 'example.com', 'Accept', 'text/html', 'Content-Type', 'text/plain']

t.test('the same keys in the same order, with or without a lookup', async (t) => {
  const eager = buildEnviron('GET', '/a%20b?x=1', 'HTTP/1.1', HEADERS, INFO, EMPTY_INPUT)
  let asked = 0
  const lazy = buildEnviron('GET', '/a%20b?x=1', 'HTTP/1.1', HEADERS, INFO, EMPTY_INPUT, undefined, () => {
    asked++
    return { address: '10.1.2.3', port: '4567' }
  })
  t.same(Object.keys(lazy), Object.keys(eager), 'keys and their order')
  t.equal(asked, 0, 'not asked while the app has not read the address')
  t.same({ ...lazy }, { ...eager }, 'a copy holds the same values')
  t.equal(asked, 1, 'asked once for both keys')
  t.equal(lazy.REMOTE_ADDR, '10.1.2.3')
  t.equal(lazy.REMOTE_PORT, '4567')
  t.equal(asked, 1, 'and never again')
  const descriptor = Object.getOwnPropertyDescriptor(lazy, 'REMOTE_ADDR')
  t.equal(descriptor?.enumerable, true, 'listed like any key')
  lazy.REMOTE_ADDR = '192.0.2.9' // as a proxy middleware rewrites it
  t.equal(lazy.REMOTE_ADDR, '192.0.2.9', 'assignable')
  t.equal(Object.getOwnPropertyDescriptor(lazy, 'REMOTE_ADDR')?.writable, true, 'and a plain value from then on')
  t.same(Object.keys(lazy), Object.keys(eager), 'assigning keeps the order')
})
