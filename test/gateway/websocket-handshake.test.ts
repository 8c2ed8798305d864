/**
 * checkWebSocketHandshake: the one check every server runs on an upgrade
 * request [ws-handshake] [ws-offered]. Valid handshakes give the offered
 * subprotocols; each fault gets its status (400, or 426 with the version);
 * requests that ask for no WebSocket (no Upgrade, or `Upgrade: h2c`) get
 * null and are served normally.
 */
import t from 'tap'
import { checkWebSocketEnviron, checkWebSocketHandshake, type HandshakeField } from '../../lib/gateway/websocket-handshake.js'
import type { Environ } from '../../lib/gateway/spec.js'

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==' // RFC 6455 §1.3's sample: base64 of 16 bytes

function fields(overrides: Partial<Record<HandshakeField, string | undefined>> = {}): Record<HandshakeField, string | undefined> {
  return {
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': KEY,
    'sec-websocket-version': '13',
    'sec-websocket-protocol': undefined,
    ...overrides,
  }
}

function check(overrides: Partial<Record<HandshakeField, string | undefined>> = {}, method = 'GET', protocol = 'HTTP/1.1') {
  const f = fields(overrides)
  return checkWebSocketHandshake(method, protocol, (name) => f[name])
}

t.test('a valid handshake gives the key and the offered subprotocols in order', async (t) => {
  t.same(check(), { valid: true, key: KEY, protocols: [] })
  t.same(check({ 'sec-websocket-protocol': 'chat, superchat' }), { valid: true, key: KEY, protocols: ['chat', 'superchat'] })
  // tokens in any case, in lists
  t.same(check({ upgrade: 'WebSocket', connection: 'keep-alive, Upgrade' }), { valid: true, key: KEY, protocols: [] })
  t.same(check({ upgrade: 'foo, websocket' }), { valid: true, key: KEY, protocols: [] })
  t.same(check({ 'sec-websocket-version': ' 13 ' })?.valid, true)
})

t.test('no Upgrade, or an Upgrade to another protocol: not a WebSocket request (served normally)', async (t) => {
  t.equal(check({ upgrade: undefined }), null)
  t.equal(check({ upgrade: 'h2c' }), null)
  t.equal(check({ upgrade: 'TLS/1.0, HTTP/1.1' }), null)
  // even with the rest of a handshake, or on a POST
  t.equal(check({ upgrade: 'h2c' }, 'POST'), null)
  t.equal(
    checkWebSocketHandshake('GET', 'HTTP/1.1', () => null),
    null,
    'a Fetch Headers getter (null for absent) works too',
  )
})

t.test('invalid handshakes: 400, or 426 with Sec-WebSocket-Version for the version', async (t) => {
  const cases: Array<[string, ReturnType<typeof check>, number]> = [
    ['POST', check({}, 'POST'), 400],
    ['HTTP/1.0', check({}, 'GET', 'HTTP/1.0'), 400],
    ['no Connection', check({ connection: undefined }), 400],
    ['Connection without upgrade', check({ connection: 'keep-alive' }), 400],
    ['no key', check({ 'sec-websocket-key': undefined }), 400],
    ['a key of 15 bytes', check({ 'sec-websocket-key': Buffer.alloc(15).toString('base64') }), 400],
    ['a key of 17 bytes', check({ 'sec-websocket-key': Buffer.alloc(17).toString('base64') }), 400],
    ['a key not base64', check({ 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ!=' }), 400],
    ['a key given twice', check({ 'sec-websocket-key': `${KEY}, ${KEY}` }), 400],
    ['a bad subprotocol', check({ 'sec-websocket-protocol': 'chat, a b' }), 400],
    ['an empty subprotocol', check({ 'sec-websocket-protocol': 'chat,,x' }), 400],
    ['a repeated subprotocol', check({ 'sec-websocket-protocol': 'chat, chat' }), 400],
    ['no version', check({ 'sec-websocket-version': undefined }), 426],
    ['version 8', check({ 'sec-websocket-version': '8' }), 426],
    ['version 13 twice', check({ 'sec-websocket-version': '13, 13' }), 426],
  ]
  for (const [name, result, status] of cases) {
    t.equal(result?.valid, false, `${name}: invalid`)
    if (result === null || result.valid) continue
    t.equal(result.status, status, `${name}: ${status}`)
    t.type(result.message, 'string')
    t.ok(result.message.length > 10, `${name}: says why (${result.message})`)
    if (status === 426) {
      t.same(result.headers, [
        ['Sec-WebSocket-Version', '13'],
        ['Upgrade', 'websocket'],
      ])
    } else t.same(result.headers, [])
  }
})

t.test('checkWebSocketEnviron reads the environ keys, and null without HTTP_UPGRADE', async (t) => {
  const environ = {
    REQUEST_METHOD: 'GET',
    SERVER_PROTOCOL: 'HTTP/1.1',
    HTTP_UPGRADE: 'websocket',
    HTTP_CONNECTION: 'Upgrade',
    HTTP_SEC_WEBSOCKET_KEY: KEY,
    HTTP_SEC_WEBSOCKET_VERSION: '13',
    HTTP_SEC_WEBSOCKET_PROTOCOL: 'a, b',
  } as unknown as Environ
  t.same(checkWebSocketEnviron(environ), { valid: true, key: KEY, protocols: ['a', 'b'] })
  t.equal(checkWebSocketEnviron({ ...environ, HTTP_UPGRADE: undefined }), null)
  t.equal(checkWebSocketEnviron({ ...environ, SERVER_PROTOCOL: 'HTTP/1.0' })?.valid, false)
})
