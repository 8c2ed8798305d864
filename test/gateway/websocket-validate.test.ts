/**
 * validate() on the WebSocket extension, both sides. The app's side on
 * postern's real server with the `ws` client: a conforming app passes
 * untouched, and each broken order is reported under its rule (accept()
 * twice or after startResponse, startResponse after accept(), a body after
 * accept(), a subprotocol not offered). The server's side is played by hand,
 * as a real server that breaks the rules cannot be had: an offer on a
 * request that is no valid handshake, with the wrong subprotocols, or whose
 * accept() returns no socket.
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import WebSocket from 'ws'
import type { Environ, ErrorStream, GatewayApp, GatewayInput } from '../../lib/gateway/spec.js'
import type { GatewayWebSocket, WebSocketUpgrade } from '../../lib/gateway/websocket.js'
import { type GatewayViolation, validate } from '../../lib/gateway/validate.js'
import { TransportWebSocket } from '../../lib/gateway/websocket-transport.js'
import { serve, sleep } from '../helpers/server.js'

const offerOf = (environ: Environ) => environ['gateway.websocket'] as WebSocketUpgrade

/** Serves `app` under validate(), collecting violations instead of throwing them. */
async function served(t: Test, app: GatewayApp) {
  const violations: GatewayViolation[] = []
  const s = await serve(t, validate(app, { onViolation: (v) => void violations.push(v) }))
  return { s, violations }
}

/** Connects a `ws` client and resolves once it opened, or was refused. */
async function connect(port: number, path: string, protocols?: string[]): Promise<WebSocket> {
  const client = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols)
  client.on('error', () => {})
  await new Promise((resolve) => {
    client.once('open', resolve)
    client.once('close', resolve)
    client.once('unexpected-response', resolve)
  })
  return client
}

t.test('a conforming WebSocket app passes validate() untouched', async (t) => {
  const { s, violations } = await served(t, async (environ) => {
    const offer = offerOf(environ)
    const socket = offer.accept({ protocol: offer.protocols[0], headers: [['X-Room', 'lobby']] })
    for await (const message of socket) await socket.send(message)
    return []
  })
  const client = await connect(s.port, '/', ['chat'])
  t.equal(client.protocol, 'chat')
  client.send('hi')
  t.equal(((await once(client, 'message')) as [Buffer])[0].toString(), 'hi')
  client.close()
  await once(client, 'close')
  await sleep(10)
  t.same(violations, [])
  t.same(s.errors, [])
})

t.test("the app's side: each broken order is reported under ws-app or ws-protocol", async (t) => {
  const cases: Array<[string, GatewayApp, string]> = [
    [
      'accept() twice',
      (environ) => {
        const offer = offerOf(environ)
        offer.accept()
        try {
          offer.accept()
        } catch {}
        return []
      },
      'ws-app',
    ],
    [
      'accept() after startResponse',
      (environ, startResponse) => {
        startResponse('200 OK', [])
        try {
          offerOf(environ).accept()
        } catch {}
        return ['x']
      },
      'ws-app',
    ],
    [
      'startResponse after accept()',
      (environ, startResponse) => {
        offerOf(environ).accept()
        try {
          startResponse('200 OK', [])
        } catch {}
        return []
      },
      'ws-app',
    ],
    [
      'a body after accept()',
      (environ) => {
        offerOf(environ).accept()
        return ['oops']
      },
      'ws-app',
    ],
    [
      'a subprotocol not offered',
      (environ) => {
        try {
          offerOf(environ).accept({ protocol: 'nope' })
        } catch {}
        return []
      },
      'ws-protocol',
    ],
    [
      'a Sec-WebSocket-* header',
      (environ) => {
        try {
          offerOf(environ).accept({ headers: [['Sec-WebSocket-Extensions', 'x']] })
        } catch {}
        return []
      },
      'ws-protocol',
    ],
  ]
  for (const [name, app, rule] of cases) {
    const { s, violations } = await served(t, app)
    const client = await connect(s.port, '/')
    client.terminate()
    for (let i = 0; i < 100 && violations.length === 0; i++) await sleep(5)
    t.ok(
      violations.some((v) => v.rule === rule),
      `${name}: reported as ${rule} (${violations.map((v) => v.message).join('; ')})`,
    )
    await s.close()
  }
})

// ---------------------------------------------------------------------------
// The server's side, played by hand

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='

function environ(overrides: Record<string, unknown>): Environ {
  const errors: ErrorStream = { write() {}, flush() {} }
  const input: GatewayInput = {
    async *[Symbol.asyncIterator]() {},
    bytes: async () => new Uint8Array(0),
    text: async () => '',
    length: 0,
    trailers: [],
  }
  const env: Record<string, unknown> = {
    REQUEST_METHOD: 'GET',
    SCRIPT_NAME: '',
    PATH_INFO: '/ws',
    QUERY_STRING: '',
    REQUEST_URI: '/ws',
    CONTENT_TYPE: '',
    CONTENT_LENGTH: '',
    SERVER_NAME: '127.0.0.1',
    SERVER_PORT: '80',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REMOTE_ADDR: '127.0.0.1',
    REMOTE_PORT: '5000',
    HTTP_HOST: 'x',
    HTTP_UPGRADE: 'websocket',
    HTTP_CONNECTION: 'Upgrade',
    HTTP_SEC_WEBSOCKET_KEY: KEY,
    HTTP_SEC_WEBSOCKET_VERSION: '13',
    'gateway.version': [1, 0],
    'gateway.url_scheme': 'http',
    'gateway.input': input,
    'gateway.errors': errors,
    'gateway.multithread': false,
    'gateway.multiprocess': false,
    'gateway.run_once': false,
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[key]
    else env[key] = value
  }
  return env as Environ
}

/** A server's offer whose accept() returns `socket`. */
function offer(protocols: string[], socket: () => unknown = () => new TransportWebSocket('', null)): WebSocketUpgrade {
  return { protocols, accept: () => socket() as GatewayWebSocket }
}

function rulesOf(env: Environ): string[] {
  const rules: string[] = []
  const app = validate(
    (e, startResponse) => {
      const o = e['gateway.websocket'] as WebSocketUpgrade | undefined
      if (typeof o?.accept === 'function') o.accept()
      else startResponse('426 Upgrade Required', [['Upgrade', 'websocket']])
      return []
    },
    { onViolation: (v) => void rules.push(v.rule) },
  )
  app(env, () => () => {})
  return rules
}

t.test("the server's side: ws-offered and ws-accept", async (t) => {
  t.same(rulesOf(environ({ 'gateway.websocket': offer([]) })), [], 'a valid handshake with its offer')
  t.same(rulesOf(environ({})), [], 'a valid handshake without the extension (a server without it)')
  t.same(rulesOf(environ({ HTTP_UPGRADE: undefined, 'gateway.websocket': offer([]) })), ['ws-offered'], 'offered on a plain request')
  t.same(rulesOf(environ({ HTTP_SEC_WEBSOCKET_VERSION: '8', 'gateway.websocket': offer([]) })), ['ws-offered'], 'offered on an invalid handshake')
  t.same(rulesOf(environ({ HTTP_SEC_WEBSOCKET_PROTOCOL: 'a, b', 'gateway.websocket': offer(['b', 'a']) })), ['ws-offered'], 'the wrong subprotocols')
  t.same(rulesOf(environ({ 'gateway.websocket': { protocols: 'a' } })), ['ws-offered'], 'not an offer')
  t.same(rulesOf(environ({ 'gateway.websocket': offer([], () => ({ send() {} })) })), ['ws-accept'], 'accept() gives no socket')
  t.same(rulesOf(environ({ 'gateway.websocket': offer([], () => new TransportWebSocket('chat', null)) })), ['ws-accept'], 'a socket speaking a subprotocol nobody chose')
})
