/**
 * The types of `app.ws()`: the socket is the gateway's GatewayWebSocket,
 * params come from the path (and the schema), decorations reach the
 * request. As in types.test.ts each check is twofold: compile-time (a wrong
 * use is marked `@ts-expect-error`, which fails the typecheck if the error
 * goes away) and, over a real socket, the value the handler sees is what its
 * type says.
 */
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { postern, type GatewayWebSocket, type WebSocketHandler, type WebSocketMessage } from '../../lib/index.js'
import { serve } from '../helpers/server.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
const assertType = <T extends true>(): T | undefined => undefined

/** Opens a socket to the app's path, sends `send`, resolves the first message back. */
async function roundTrip(t: Test, port: number, path: string, send: string): Promise<string> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`)
  t.teardown(() => ws.terminate())
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
  ws.send(send)
  return new Promise((resolve, reject) => ws.once('message', (data) => resolve(String(data))).once('close', () => reject(new Error('closed'))))
}

t.test('params from the path, the socket typed, messages string | Uint8Array', async (t) => {
  const app = postern()
  app.ws('/rooms/:room/:seat?', async (socket, req) => {
    assertType<Equal<typeof socket, GatewayWebSocket>>()
    assertType<Equal<typeof req.params, { room: string; seat?: string }>>()
    // @ts-expect-error not a param of the path
    void req.params.id
    for await (const message of socket) {
      assertType<Equal<typeof message, WebSocketMessage>>()
      assertType<Equal<WebSocketMessage, string | Uint8Array>>()
      // @ts-expect-error a message may be bytes: narrow it first
      void message.toUpperCase()
      if (typeof message === 'string') await socket.send(`${req.params.room}/${req.params.seat ?? '-'}: ${message.toUpperCase()}`)
      // @ts-expect-error send takes a string or bytes
      void socket.send(42)
    }
  })
  const s = await serve(t, app)
  t.equal(await roundTrip(t, s.port, '/rooms/red', 'hi'), 'red/-: HI')
  t.equal(await roundTrip(t, s.port, '/rooms/red/3', 'hi'), 'red/3: HI')
})

t.test('with a schema: params and query typed and coerced; the protocol option typed', async (t) => {
  const app = postern()
  const schema = {
    params: { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] },
    querystring: { type: 'object', properties: { verbose: { type: 'boolean', default: false } } },
  } as const
  app.ws(
    '/feeds/:id',
    {
      schema,
      protocol: (offered, req) => {
        assertType<Equal<typeof offered, readonly string[]>>()
        void req.path
        return offered[0]
      },
    },
    async (socket, req) => {
      assertType<Equal<typeof req.params, { id: number }>>()
      assertType<Equal<typeof req.query, { verbose: boolean }>>()
      const id: number = req.params.id
      for await (const _ of socket) await socket.send(JSON.stringify({ id, type: typeof id, verbose: req.query.verbose }))
    },
  )
  // @ts-expect-error the protocol is a string or nothing
  app.ws('/bad-protocol', { protocol: () => 42 }, () => {})
  // @ts-expect-error a ws route has no body to check
  app.ws('/bad-schema', { schema: { body: { type: 'object' } } }, () => {})
  // @ts-expect-error the socket comes first, the request second
  app.ws('/bad-order', (req: { params: unknown }) => void req)
  const s = await serve(t, app)
  t.same(JSON.parse(await roundTrip(t, s.port, '/feeds/12?verbose=true', 'go')), { id: 12, type: 'number', verbose: true })
})

t.test('decorations reach the ws handler’s request; a handler written apart is typed by WebSocketHandler', async (t) => {
  const app = postern().decorateRequest('user', 'anonymous' as string)
  app.ws('/me', async (socket, req) => {
    assertType<Equal<typeof req.user, string>>()
    // @ts-expect-error not decorated
    void req.tenant
    for await (const _ of socket) await socket.send(req.user)
  })
  const echo: WebSocketHandler<{ word: string }> = async (socket, req) => {
    for await (const _ of socket) await socket.send(req.params.word)
  }
  app.ws('/say/:word', echo)
  // The origin option: its function sees the Origin header and the decorated request.
  app.ws(
    '/mine',
    {
      origin: (origin, req) => {
        assertType<Equal<typeof origin, string>>()
        assertType<Equal<typeof req.user, string>>()
        return origin === `https://${req.user}.example`
      },
    },
    async (socket) => void (await socket.send('mine')),
  )
  app.ws('/listed', { origin: ['https://a.example', 'https://b.example'] }, () => {})
  app.ws('/matched', { origin: /^https:\/\/[a-z]+\.example$/ }, () => {})
  // @ts-expect-error an origin is a string, a list, a RegExp or a function (and refused at run time too)
  t.throws(() => app.ws('/bad-origin', { origin: 42 }, () => {}), /origin option/)
  // @ts-expect-error the function says yes or no
  app.ws('/bad-origin-fn', { origin: () => 'https://a.example' }, () => {})
  const s = await serve(t, app)
  t.equal(await roundTrip(t, s.port, '/me', 'who?'), 'anonymous')
  t.equal(await roundTrip(t, s.port, '/say/hello', 'say'), 'hello')
})
