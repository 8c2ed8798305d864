/**
 * The WebSocket options, written once in the core (lib/gateway/websocket-limits.ts)
 * and read by postern's server and the adapters: the defaults are the
 * core's named limits, an option left `undefined` takes its default, a
 * value that is not a positive integer is refused with its name, and on
 * postern's server a stalled send's bound follows the server's own
 * `sendTimeout` unless `webSocket.sendTimeout` is given.
 */
import t from 'tap'
import {
  DEFAULT_SEND_TIMEOUT,
  DEFAULT_WEBSOCKET_CLOSE_TIMEOUT,
  DEFAULT_WEBSOCKET_HANDSHAKE_TIMEOUT,
  DEFAULT_WEBSOCKET_IDLE_TIMEOUT,
  DEFAULT_WEBSOCKET_MESSAGE_LIMIT,
  DEFAULT_WEBSOCKET_READ_HIGH_WATER,
  DEFAULT_WEBSOCKET_READ_LIMIT,
  DEFAULT_WEBSOCKET_SEND_HIGH_WATER,
} from '../../lib/gateway/limits.js'
import { WEBSOCKET_DEFAULTS, webSocketLimits } from '../../lib/gateway/websocket-limits.js'
import { DEFAULTS, resolveOptions } from '../../lib/server/options.js'

t.test('the defaults are the core limits', async (t) => {
  t.same(webSocketLimits(undefined), {
    maxMessageSize: DEFAULT_WEBSOCKET_MESSAGE_LIMIT,
    handshakeTimeout: DEFAULT_WEBSOCKET_HANDSHAKE_TIMEOUT,
    idleTimeout: DEFAULT_WEBSOCKET_IDLE_TIMEOUT,
    readHighWater: DEFAULT_WEBSOCKET_READ_HIGH_WATER,
    readLimit: DEFAULT_WEBSOCKET_READ_LIMIT,
    sendHighWater: DEFAULT_WEBSOCKET_SEND_HIGH_WATER,
    sendTimeout: DEFAULT_SEND_TIMEOUT,
    closeTimeout: DEFAULT_WEBSOCKET_CLOSE_TIMEOUT,
  })
  t.equal(DEFAULT_WEBSOCKET_CLOSE_TIMEOUT, 5_000)
  t.equal(DEFAULT_SEND_TIMEOUT, 30_000)
  t.ok(Object.isFrozen(WEBSOCKET_DEFAULTS))
  t.equal(DEFAULTS.webSocket, WEBSOCKET_DEFAULTS, "the server's defaults are the core's")
  t.equal(DEFAULTS.sendTimeout, DEFAULT_SEND_TIMEOUT)
})

t.test('given values win; undefined takes the default; the defaults object is not changed', async (t) => {
  const limits = webSocketLimits({ maxMessageSize: 10, idleTimeout: undefined })
  t.equal(limits.maxMessageSize, 10)
  t.equal(limits.idleTimeout, DEFAULT_WEBSOCKET_IDLE_TIMEOUT)
  t.equal(WEBSOCKET_DEFAULTS.maxMessageSize, DEFAULT_WEBSOCKET_MESSAGE_LIMIT)
})

t.test('a value that is not a positive integer is refused, naming the option', async (t) => {
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10' as unknown as number]) {
    t.throws(() => webSocketLimits({ readLimit: bad }), { name: 'TypeError', message: /webSocket\.readLimit must be a positive integer/ }, `readLimit ${String(bad)}`)
    t.throws(() => resolveOptions({ webSocket: { closeTimeout: bad } }), /webSocket\.closeTimeout must be a positive integer/, `server closeTimeout ${String(bad)}`)
  }
})

t.test("postern's server: webSocket.sendTimeout follows the server's sendTimeout unless given", async (t) => {
  t.equal(resolveOptions({}).webSocket, WEBSOCKET_DEFAULTS)
  const follows = resolveOptions({ sendTimeout: 1234 }).webSocket
  t.ok(follows !== false && follows.sendTimeout === 1234, "the server's sendTimeout")
  const own = resolveOptions({ sendTimeout: 1234, webSocket: { sendTimeout: 99 } }).webSocket
  t.ok(own !== false && own.sendTimeout === 99, 'its own when given')
  t.equal(resolveOptions({ webSocket: false }).webSocket, false)
  t.throws(() => resolveOptions({ sendTimeout: -1 }), /option sendTimeout must be a positive integer/, "a bad server sendTimeout is named as the server's")
})
