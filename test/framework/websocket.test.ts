/**
 * `app.ws()` on postern's server, with the `ws` client: route params,
 * prefixes and encapsulation, hooks that run before the upgrade (and may
 * refuse it), 426 for a plain GET, a plain GET route sharing the path, the
 * subprotocol choice, the origin option (403 for another site's page), the
 * headers of the 101, and the socket's life tied to
 * the handler's (1000 when it returns, 1011 when it throws, the server
 * serving on).
 */
import { once } from 'node:events'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { postern, type App } from '../../lib/index.js'
import { validate, type GatewayViolation } from '../../lib/gateway/validate.js'
import type { GatewayWebSocket } from '../../lib/gateway/websocket.js'
import { serve, within, type Served } from '../helpers/server.js'

/** A ws route's answer when it did not upgrade. */
interface Refusal {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** Every violation of the interface seen by validate(), checked by the last test. */
const violations: string[] = []

/** Serves the app on postern's server under validate(), which checks both sides, the WebSocket extension's rules included. */
async function served(t: Test, app: App): Promise<Served> {
  await app.ready()
  return serve(t, validate(app, { onViolation: (v: GatewayViolation) => violations.push(`${t.name}: ${String(v)}`) }))
}

/** A client socket that keeps what arrives from the moment it opens (a message may come in the same packet as the 101). */
interface Client extends WebSocket {
  upgradeHeaders: Record<string, string | string[] | undefined>
  received: string[]
  closing: Promise<{ code: number; reason: string }>
}

/** Opens a socket, closed with the test; rejects with the {@link Refusal} when the server answers without upgrading. */
function open(t: Test, url: string, protocols: string[] = [], headers: Record<string, string> = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers }) as Client
    t.teardown(() => ws.terminate())
    ws.received = []
    ws.closing = new Promise((done) => ws.once('close', (code, reason) => done({ code, reason: reason.toString() })))
    ws.on('message', (data, binary) => {
      ws.received.push(binary ? `binary:${Buffer.from(data as Buffer).toString('hex')}` : String(data))
      ws.emit('received')
    })
    ws.once('upgrade', (res) => (ws.upgradeHeaders = res.headers))
    ws.once('open', () => resolve(ws))
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => reject({ status: res.statusCode ?? 0, headers: res.headers, body } satisfies Refusal))
    })
    ws.once('error', (error) => reject(error))
  })
}

/** The answer of a request that must not upgrade. */
async function refused(t: Test, url: string, protocols: string[] = [], headers: Record<string, string> = {}): Promise<Refusal> {
  try {
    await open(t, url, protocols, headers)
  } catch (refusal) {
    return refusal as Refusal
  }
  throw new Error(`${url} was upgraded`)
}

/** The next message not read yet, as text (binary ones as `binary:<hex>`). */
async function next(ws: Client): Promise<string> {
  while (ws.received.length === 0) {
    if (ws.readyState === WebSocket.CLOSED) throw new Error('closed before a message')
    await Promise.race([once(ws, 'received'), ws.closing])
  }
  return ws.received.shift()!
}

/** How the socket closed (or will). */
function closed(ws: Client): Promise<{ code: number; reason: string }> {
  return ws.closing
}

t.test('params from the path, messages both ways, text and binary', async (t) => {
  const app = postern()
  app.ws('/chat/:room', async (socket, req) => {
    for await (const message of socket) {
      await socket.send(typeof message === 'string' ? `${req.params.room}: ${message}` : message.reverse())
    }
  })
  const s = await served(t, app)
  const ws = await open(t, `ws://127.0.0.1:${s.port}/chat/tea%20room`)
  ws.send('hello')
  t.equal(await next(ws), 'tea room: hello', 'the param is decoded, the text message echoed')
  ws.send(Buffer.from([1, 2, 3]))
  t.equal(await next(ws), 'binary:030201', 'a binary message arrives as bytes and goes back as bytes')
  const end = closed(ws)
  ws.close(1000, 'bye')
  t.equal((await end).code, 1000)
  t.same(s.errors, [])
})

t.test('a plain GET to a ws route gets 426 with Upgrade: websocket; a plain GET route may share the path', async (t) => {
  const app = postern()
  let upgrades = 0
  app.ws('/live', (socket) => {
    upgrades++
    return socket.send('ws')
  })
  app.get('/both', () => 'plain page')
  app.ws('/both', async (socket) => {
    await socket.send('ws')
  })
  app.post('/live', () => 'posted')
  const s = await served(t, app)
  const base = `http://127.0.0.1:${s.port}`

  const plain = await fetch(`${base}/live`)
  t.equal(plain.status, 426)
  t.equal(plain.headers.get('upgrade'), 'websocket')
  t.match(plain.headers.get('connection') ?? '', /upgrade/i, 'the server names Upgrade in Connection, as RFC 9110 §7.8 asks')
  t.same(await plain.json(), { statusCode: 426, error: 'Upgrade Required', message: '/live takes WebSocket connections only' })
  t.equal((await fetch(`${base}/live`, { method: 'HEAD' })).status, 426, 'HEAD too')
  t.equal(await (await fetch(`${base}/live`, { method: 'POST' })).text(), 'posted', 'other methods keep their routes')
  t.equal(upgrades, 0)

  t.equal(await (await fetch(`${base}/both`)).text(), 'plain page', 'the GET route answers plain GETs')
  const ws = await open(t, `ws://127.0.0.1:${s.port}/both`)
  t.equal(await next(ws), 'ws', 'the ws route takes the upgrades')
  const live = await open(t, `ws://127.0.0.1:${s.port}/live`)
  t.equal(await next(live), 'ws')
  t.equal(upgrades, 1)
  t.same(s.errors, [])
})

t.test('a GET route sharing the path is found however its params are named; the 426 keeps the route constraints', async (t) => {
  const app = postern()
  app.get('/rooms/:id', (req) => `page ${req.params.id}`)
  app.ws('/rooms/:room', (socket, req) => socket.send(`socket ${req.params.room}`))
  app.ws('/hosted', { constraints: { host: 'chat.example' } }, (socket) => socket.send('hosted'))
  const s = await served(t, app)
  t.equal(await (await fetch(`http://127.0.0.1:${s.port}/rooms/7`)).text(), 'page 7')
  t.equal(await next(await open(t, `ws://127.0.0.1:${s.port}/rooms/7`)), 'socket 7')
  t.equal((await fetch(`http://127.0.0.1:${s.port}/hosted`)).status, 404, 'another host: no route')
  const other = await refused(t, `ws://127.0.0.1:${s.port}/hosted`)
  t.equal(other.status, 404, 'an upgrade for another host: no route either')
  t.equal(await next(await open(t, `ws://127.0.0.1:${s.port}/hosted`, [], { host: 'chat.example' })), 'hosted')
})

t.test('adding the same ws route twice fails where it is added', async (t) => {
  const app = postern()
  app.ws('/x/:a', () => {})
  t.throws(() => app.ws('/x/:b', () => {}), /cannot add WebSocket route \/x\/:b/)
  t.throws(() => app.ws('/y', 'nope' as never), /must be a function/)
  t.throws(() => app.ws('/y', { protocol: 'chat' as never }, () => {}), /protocol option .* must be a function/)
  t.match(app.printRoutes(), /^WS \/x\/:a$/m)
})

t.test('hooks run before the upgrade: an onRequest or preHandler hook refuses with 401 and the handler never runs', async (t) => {
  const app = postern()
  const ran: string[] = []
  app.addHook('onRequest', (req, reply) => {
    ran.push(`onRequest ${req.path}`)
    if (req.query.token !== 'good') reply.code(401).send({ error: 'who are you?' })
  })
  app.ws('/private', { preHandler: (req, reply) => void (req.header('x-role') === 'banned' && reply.status(403).send('banned')) }, async (socket) => {
    ran.push('handler')
    await socket.send('welcome')
  })
  const s = await served(t, app)
  const url = `ws://127.0.0.1:${s.port}/private`

  const anonymous = await refused(t, url)
  t.equal(anonymous.status, 401)
  t.same(JSON.parse(anonymous.body), { error: 'who are you?' })
  t.equal(anonymous.headers.upgrade, undefined, 'no upgrade offered back')
  const banned = await refused(t, `${url}?token=good`, [], { 'x-role': 'banned' })
  t.equal(banned.status, 403)
  t.equal(banned.body, 'banned')
  t.same(ran, ['onRequest /private', 'onRequest /private'], 'the handler never ran')

  const ws = await open(t, `${url}?token=good`)
  t.equal(await next(ws), 'welcome')
  t.same(ran, ['onRequest /private', 'onRequest /private', 'onRequest /private', 'handler'])
  t.same(s.errors, [])
})

t.test('the params, query and headers schemas check the upgrade request: 400 before accepting', async (t) => {
  const app = postern()
  let handled = 0
  const schema = {
    params: { type: 'object', properties: { id: { type: 'integer' } } },
    querystring: { type: 'object', properties: { since: { type: 'integer', default: 0 } } },
  } as const
  app.ws('/feeds/:id', { schema }, async (socket, req) => {
    handled++
    await socket.send(JSON.stringify({ id: req.params.id, since: req.query.since }))
  })
  const s = await served(t, app)
  const bad = await refused(t, `ws://127.0.0.1:${s.port}/feeds/seven`)
  t.equal(bad.status, 400)
  t.match(JSON.parse(bad.body), { message: /params\/id must be integer/ })
  t.equal(handled, 0)
  const ws = await open(t, `ws://127.0.0.1:${s.port}/feeds/7?since=3`)
  t.same(JSON.parse(await next(ws)), { id: 7, since: 3 }, 'coerced: numbers, as their types say')
})

t.test('prefixes and encapsulation: a plugin’s hooks and decorations apply to its ws routes only', async (t) => {
  const app = postern()
  const seen: string[] = []
  app.ws('/root', (socket, req) => {
    seen.push(`root hook=${req.headers['x-hooked'] ?? 'none'}`)
    return socket.send('root')
  })
  await app.register(
    async (api) => {
      const decorated = api.decorateRequest('user', 'nobody')
      decorated.addHook('onRequest', (req) => {
        req.user = `user-${req.query.as ?? 'anon'}`
      })
      decorated.ws('/rooms/:room', async (socket, req) => {
        seen.push(`${req.user} in ${req.params.room}`)
        await socket.send(`${req.user}@${req.params.room}`)
      })
    },
    { prefix: '/api' },
  )
  const s = await served(t, app)
  t.equal(await next(await open(t, `ws://127.0.0.1:${s.port}/api/rooms/blue?as=ann`)), 'user-ann@blue')
  t.equal(await next(await open(t, `ws://127.0.0.1:${s.port}/root`)), 'root')
  t.equal((await refused(t, `ws://127.0.0.1:${s.port}/rooms/blue`)).status, 404, 'the route is only under its prefix')
  t.equal((await fetch(`http://127.0.0.1:${s.port}/api/rooms/blue`)).status, 426, 'the plain GET under the prefix: 426')
  t.same(seen, ['user-ann in blue', 'root hook=none'])
})

t.test('the subprotocol: the route chooses among those offered; none when it has no choice to make', async (t) => {
  const app = postern()
  app.ws('/proto', { protocol: (offered) => ['chat.v2', 'chat.v1'].find((p) => offered.includes(p)) }, (socket) => socket.send(`speaking ${socket.protocol || 'nothing'}`))
  app.ws('/plain', (socket) => socket.send(`speaking ${socket.protocol || 'nothing'}`))
  app.ws('/wrong', { protocol: () => 'not-offered' }, (socket) => socket.send('never'))
  const s = await served(t, app)
  const ws = await open(t, `ws://127.0.0.1:${s.port}/proto`, ['chat.v1', 'chat.v2'])
  t.equal(ws.protocol, 'chat.v2', 'the 101 names the chosen one')
  t.equal(await next(ws), 'speaking chat.v2')
  const none = await open(t, `ws://127.0.0.1:${s.port}/proto`)
  t.equal(none.protocol, '')
  t.equal(await next(none), 'speaking nothing')
  await t.rejects(
    open(t, `ws://127.0.0.1:${s.port}/plain`, ['chat.v1']),
    /no subprotocol/,
    'a route without the option picks none; a client that required one fails the connection (as browsers do)',
  )
  const wrong = await refused(t, `ws://127.0.0.1:${s.port}/wrong`, ['chat.v1'])
  t.equal(wrong.status, 500, 'choosing a protocol the client did not offer is the app’s error: 500, not accepted')
  t.match(s.errors.join(''), /chose "not-offered", which the client did not offer/)
})

t.test('headers set by the hooks go out on the 101', async (t) => {
  const app = postern()
  app.addHook('preHandler', (_req, reply) => {
    reply.cookie('session', 'abc', { httpOnly: true })
  })
  app.ws('/cookie', (socket) => socket.send('hi'))
  const s = await served(t, app)
  const ws = await open(t, `ws://127.0.0.1:${s.port}/cookie`)
  t.match(String(ws.upgradeHeaders['set-cookie']), /^session=abc; .*HttpOnly/)
  t.equal(await next(ws), 'hi')
})

t.test('the socket lives as long as the handler: returning closes it with 1000', async (t) => {
  const app = postern()
  let onResponse = (_seen: string) => {}
  const responded = new Promise<string>((resolve) => (onResponse = resolve))
  let returned = false
  app.ws('/once', { onResponse: (_req, reply) => onResponse(`${reply.statusCode} after the handler: ${returned}`) }, async (socket) => {
    await socket.send('one message, then goodbye')
    returned = true
  })
  app.ws('/stay', async (socket) => {
    await socket.send('staying until you leave')
    await socket.closed
  })
  const s = await served(t, app)
  const ws = await open(t, `ws://127.0.0.1:${s.port}/once`)
  const end = closed(ws)
  t.equal(await next(ws), 'one message, then goodbye')
  t.equal((await end).code, 1000)
  t.equal(await within(responded, 2000, 'never'), '101 after the handler: true', 'onResponse ran once the socket closed, with the status 101')

  const stay = await open(t, `ws://127.0.0.1:${s.port}/stay`)
  t.equal(await next(stay), 'staying until you leave')
  const late = await Promise.race([closed(stay), new Promise((resolve) => setTimeout(() => resolve('still open'), 200))])
  t.equal(late, 'still open', 'awaiting socket.closed keeps it open')
  const stayEnd = closed(stay)
  stay.close(4000, 'my choice')
  t.same(await stayEnd, { code: 4000, reason: 'my choice' })
})

t.test('a handler that throws after accepting: the socket closes with 1011, the error is reported, the server serves on', async (t) => {
  const app = postern()
  const observed: string[] = []
  app.addHook('onError', (req, _reply, error) => void observed.push(`${req.path}: ${(error as Error).message}`))
  app.ws('/boom', async (socket) => {
    const first = await socket[Symbol.asyncIterator]().next()
    throw new Error(`kaboom after ${String(first.value)}`)
  })
  app.get('/ok', () => 'ok')
  const s = await served(t, app)
  const ws = await open(t, `ws://127.0.0.1:${s.port}/boom`)
  const end = closed(ws)
  ws.send('hello')
  t.equal((await end).code, 1011)
  t.same(observed, ['/boom: kaboom after hello'], 'the onError hooks saw it')
  t.match(s.errors.join(''), /kaboom after hello[\s\S]*GET \/boom/, 'reported by the server, naming the request')
  t.equal(await (await fetch(`http://127.0.0.1:${s.port}/ok`)).text(), 'ok', 'a plain request is still served')
  const again = await open(t, `ws://127.0.0.1:${s.port}/boom`)
  const againEnd = closed(again)
  again.send('again')
  t.equal((await againEnd).code, 1011, 'and another socket too')
})

t.test('a send() on a socket the client closed is not an app error: no onError hook, nothing reported', async (t) => {
  const app = postern()
  const observed: string[] = []
  app.addHook('onError', (req, _reply, error) => void observed.push(`${req.path}: ${(error as Error).name}`))
  let rejected: unknown = null
  app.ws('/late', async (socket) => {
    await socket.closed
    try {
      await socket.send('too late')
    } catch (error) {
      rejected = error
      throw error
    }
  })
  const s = await served(t, app)
  const ws = await open(t, `ws://127.0.0.1:${s.port}/late`)
  ws.close(1000)
  await closed(ws)
  const settled = (async () => {
    while (rejected === null) await new Promise((resolve) => setTimeout(resolve, 10))
    return true
  })()
  t.equal(await within(settled, 2000, false), true, 'the handler’s send settled')
  t.equal((rejected as Error).name, 'WebSocketClosedError', 'the send was rejected because the socket closed')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(observed, [], 'no onError hook heard of it')
  t.equal(s.errors.join(''), '', 'and the server reported nothing')
})

t.test('the origin option: an allowed page upgrades, another site’s page gets 403 before any hook, a client without Origin passes', async (t) => {
  const app = postern()
  const ran: string[] = []
  app.addHook('onRequest', (req) => void ran.push(`onRequest ${req.path}`))
  const echo = async (socket: GatewayWebSocket) => {
    await socket.send('welcome')
  }
  app.ws('/list', { origin: ['https://chat.example', 'http://localhost:8080'] }, echo)
  app.ws('/one', { origin: 'https://chat.example' }, echo)
  app.ws('/re', { origin: /^https:\/\/[a-z]+\.chat\.example$/g }, echo)
  app.ws('/fn/:room', { origin: (origin, req) => origin === `https://${req.params.room}.example` }, echo)
  app.ws('/open', echo)
  const s = await served(t, app)
  const url = (path: string) => `ws://127.0.0.1:${s.port}${path}`
  const from = (origin: string) => ({ origin })

  for (const [path, origin] of [
    ['/list', 'https://chat.example'],
    ['/list', 'http://localhost:8080'],
    ['/one', 'HTTPS://Chat.Example'],
    ['/re', 'https://a.chat.example'],
    ['/re', 'https://b.chat.example'],
    ['/fn/tea', 'https://tea.example'],
    ['/open', 'https://evil.example'],
  ] as const) {
    const ws = await open(t, url(path), [], from(origin))
    t.equal(await next(ws), 'welcome', `${origin} may open ${path}`)
  }
  t.equal(ran.length, 7, 'the hooks ran for each allowed page')

  ran.length = 0
  for (const [path, origin] of [
    ['/list', 'https://evil.example'],
    ['/one', 'https://chat.example.evil.example'],
    ['/one', 'null'],
    ['/re', 'https://chat.example'],
    ['/fn/tea', 'https://coffee.example'],
  ] as const) {
    const refusal = await refused(t, url(path), [], from(origin))
    t.equal(refusal.status, 403, `${origin} may not open ${path}`)
    t.same(JSON.parse(refusal.body), {
      statusCode: 403,
      error: 'Forbidden',
      message: `${path} does not accept WebSocket connections from origin ${JSON.stringify(origin)}`,
    })
  }
  t.same(ran, [], 'no hook ran for a refused page')

  // Not a browser (no Origin header): the option guards against other sites' pages, not other clients.
  for (const path of ['/list', '/one', '/re', '/fn/tea']) t.equal(await next(await open(t, url(path))), 'welcome', `a client without Origin may open ${path}`)
  t.same(s.errors, [])
})

t.test('a wrong origin option fails where the route is added', async (t) => {
  const app = postern()
  t.throws(() => app.ws('/a', { origin: 42 as never }, () => {}), /origin option of WebSocket route \/a must be an origin string, a list of them, a RegExp or a function/)
  t.throws(() => app.ws('/b', { origin: ['https://ok.example', 7] as never }, () => {}), /origin option of WebSocket route \/b/)
  t.throws(() => app.ws('/c', { origin: 'https://ok.example/' }, () => {}), /ends with "\/": an Origin header is scheme:\/\/host\[:port\], without a path/)
})

t.test('neither the framework nor the server broke a rule of the interface in any test above', async (t) => {
  t.same(violations, [])
})
