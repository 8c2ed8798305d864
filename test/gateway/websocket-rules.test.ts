/**
 * checkAcceptOptions, the one check of what an app gives `accept()`
 * [ws-protocol], which every server calls: the subprotocol must be one the
 * client offered; the 101's extra headers must be well-formed, hold no
 * hop-by-hop or framing field (a 1xx has no content: RFC 9110 §8.6 forbids
 * Content-Length on it) and no `Sec-WebSocket-*` field, the prefix itself
 * included; a `Server` field is allowed and reported, so the server leaves
 * its own out, as on any response.
 *
 * Pure function: the servers' 101 over real sockets is tested in
 * test/server/websocket*.test.ts (test/server/websocket-review.test.ts has
 * Content-Length on postern's server and node:http).
 */
import t from 'tap'
import type { Headers } from '../../lib/gateway/spec.js'
import { GatewayViolation } from '../../lib/gateway/rules.js'
import { checkAcceptOptions } from '../../lib/gateway/websocket-rules.js'
import type { WebSocketAcceptOptions } from '../../lib/gateway/websocket.js'

const accept = (headers: Headers, protocol?: string) => checkAcceptOptions(protocol === undefined ? { headers } : { protocol, headers }, ['chat'])

t.test('no options, a subprotocol offered, plain headers: accepted as given', async (t) => {
  t.same(checkAcceptOptions(undefined, []), { protocol: '', headers: [], hasServer: false })
  t.same(checkAcceptOptions({ protocol: 'chat' }, ['chat']), { protocol: 'chat', headers: [], hasServer: false })
  const headers: Headers = [
    ['Set-Cookie', 'a=1'],
    ['X-Sec-WebSocket-Note', 'not the prefix'],
    ['Sec-WebSocke', 'shorter than the prefix'],
  ]
  t.same(accept(headers, 'chat'), { protocol: 'chat', headers, hasServer: false })
})

t.test('a subprotocol the client did not offer is refused', async (t) => {
  t.ok(new GatewayViolation('ws-protocol', 'x') instanceof TypeError, 'a violation is a TypeError')
  t.throws(() => checkAcceptOptions({ protocol: 'other' }, ['chat']), { name: 'GatewayViolation', rule: 'ws-protocol', message: /^\[ws-protocol\] .*did not offer/ })
  t.throws(() => checkAcceptOptions('chat' as unknown as WebSocketAcceptOptions, ['chat']), { rule: 'ws-protocol', message: /options object/ })
})

t.test('Content-Length is refused on the 101, any value, any case (RFC 9110 §8.6)', async (t) => {
  for (const [name, value] of [
    ['Content-Length', '3'],
    ['content-length', '0'],
    ['CONTENT-LENGTH', '12'],
  ] as const) {
    t.throws(
      () => accept([[name, value]]),
      { name: 'GatewayViolation', rule: 'ws-protocol', message: /^\[ws-protocol\] accept\(\) headers must not set Content-Length: a 101 has no content/ },
      `${name}: ${value}`,
    )
  }
  t.throws(() => accept([['Content-Length', 'x']]), { name: 'GatewayViolation', rule: 'content-length' }, 'a malformed one is malformed first')
})

t.test('hop-by-hop and framing fields are refused [hop-by-hop]', async (t) => {
  for (const name of ['Transfer-Encoding', 'Connection', 'Upgrade', 'Keep-Alive', 'TE', 'Trailer', 'Proxy-Connection']) {
    t.throws(() => accept([[name, 'x']]), { name: 'GatewayViolation', rule: 'hop-by-hop' }, name)
  }
})

t.test('Sec-WebSocket-* fields are refused, the bare prefix too', async (t) => {
  for (const name of ['Sec-WebSocket-', 'sec-websocket-', 'Sec-WebSocket-Accept', 'Sec-WebSocket-Protocol', 'SEC-WEBSOCKET-EXTENSIONS', 'Sec-WebSocket-X']) {
    t.throws(() => accept([[name, 'x']]), { name: 'GatewayViolation', rule: 'ws-protocol', message: /the server writes the Sec-WebSocket-\* fields/ }, name)
  }
})

t.test("a Server field is allowed and reported: it replaces the server's own, as on any response", async (t) => {
  t.equal(accept([['Server', 'mine']]).hasServer, true)
  t.equal(accept([['server', 'mine']]).hasServer, true)
  t.equal(accept([['X-Server', 'mine']]).hasServer, false)
})

t.test('malformed headers are refused [header-form]', async (t) => {
  t.throws(() => accept([['Bad Name', 'x']]), { name: 'GatewayViolation', rule: 'header-form' })
  t.throws(() => accept([['X-A', 'a\r\nb']]), { name: 'GatewayViolation', rule: 'header-form' })
  t.throws(() => accept('x' as unknown as Headers), { name: 'GatewayViolation', rule: 'header-form' })
})
