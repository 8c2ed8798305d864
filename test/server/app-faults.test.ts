/**
 * What the server does when the app misbehaves (lib/gateway.ts, "Servers
 * must"): a 500 with no error details when nothing was sent yet, a truncated
 * response and a closed connection once it had started, errors reported to
 * gateway.errors, the body's close() called exactly once — and it goes on
 * serving. startResponse's rules hold over the real server: no header
 * injection, no hop-by-hop headers from the app.
 */
import t from 'tap'
import type { Body, Chunk, GatewayApp } from '../../lib/gateway/spec.js'
import { header } from '../helpers/raw.js'
import { serve, sleep } from '../helpers/server.js'

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`
const SECRET = 'secret-detail-5f3a'

/** A body that counts its close() calls. */
function closable(chunks: Iterable<Chunk> | AsyncIterable<Chunk>): { body: Body; closes: () => number } {
  let closed = 0
  const body = Object.assign(chunks, {
    close() {
      closed++
    },
  }) as Body
  return { body, closes: () => closed }
}

/** Waits until `check()` holds (or 3 s), for effects that follow a socket event. */
async function eventually(check: () => boolean): Promise<boolean> {
  for (let i = 0; i < 150; i++) {
    if (check()) return true
    await sleep(20)
  }
  return check()
}

const faults: Record<string, GatewayApp> = {
  '/throw': () => {
    throw new Error(SECRET)
  },
  '/throw-after-start': (_e, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    throw new Error(SECRET)
  },
  '/reject': async () => {
    await sleep(1)
    throw new Error(SECRET)
  },
  '/throw-first-chunk': (_e, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return (function* (): Generator<string> {
      throw new Error(SECRET)
    })()
  },
  '/no-start': () => ['body without startResponse'],
  '/start-twice': (_e, startResponse) => {
    startResponse('200 OK', [])
    startResponse('201 Created', [])
    return ['never']
  },
  '/bad-status': (_e, startResponse) => {
    startResponse('200', [])
    return ['never']
  },
  '/informational-status': (_e, startResponse) => {
    startResponse('100 Continue', [])
    return ['never']
  },
  '/bad-chunk': (_e, startResponse) => {
    startResponse('200 OK', [])
    return [42 as unknown as string]
  },
  '/crlf-status': (_e, startResponse) => {
    startResponse('200 OK\r\nX-Injected: 1', [])
    return ['never']
  },
  '/write-bad-chunk': (_e, startResponse) => {
    const write = startResponse('200 OK', [])
    write({} as unknown as string)
    return ['never']
  },
  '/crlf-value': (_e, startResponse) => {
    startResponse('200 OK', [['X-Test', 'a\r\nX-Injected: 1']])
    return ['never']
  },
  '/lf-value': (_e, startResponse) => {
    startResponse('200 OK', [['X-Test', 'a\nX-Injected: 1']])
    return ['never']
  },
  '/nul-value': (_e, startResponse) => {
    startResponse('200 OK', [['X-Test', 'a\0b']])
    return ['never']
  },
  '/bad-name': (_e, startResponse) => {
    startResponse('200 OK', [['X Injected', '1']])
    return ['never']
  },
  '/name-with-colon': (_e, startResponse) => {
    startResponse('200 OK', [['X-Injected: 1\r\nX-A', '1']])
    return ['never']
  },
  '/hop-connection': (_e, startResponse) => {
    startResponse('200 OK', [['Connection', 'close']])
    return ['never']
  },
  '/hop-te': (_e, startResponse) => {
    startResponse('200 OK', [['Transfer-Encoding', 'chunked']])
    return ['never']
  },
  '/hop-keep-alive': (_e, startResponse) => {
    startResponse('200 OK', [['keep-alive', 'timeout=5']])
    return ['never']
  },
  '/hop-upgrade': (_e, startResponse) => {
    startResponse('200 OK', [['Upgrade', 'websocket']])
    return ['never']
  },
}

const app: GatewayApp = (environ, startResponse) => {
  const fault = faults[environ.PATH_INFO]
  if (fault) return fault(environ, startResponse)
  startResponse('200 OK', [['Content-Type', 'text/plain']])
  return ['fine']
}

t.test('faults before the response started: 500, no details, reported, server keeps serving', async (t) => {
  const s = await serve(t, app)
  for (const path of Object.keys(faults)) {
    s.errors.length = 0
    const r = await s.exchange(GET(path), { waitClose: false })
    const res = r.responses[0]
    t.equal(res?.status, 500, `${path}: ${JSON.stringify(r.raw)}`)
    t.notMatch(r.raw, SECRET, `${path}: error details not sent`)
    t.notMatch(r.raw, /X-Injected/i, `${path}: no injected header`)
    t.notMatch(r.raw, /never/, `${path}: app body not sent`)
    if (res) {
      t.equal(header(res, 'transfer-encoding'), undefined, `${path}: 500 is not chunked`)
      t.ok(res.complete, `${path}: 500 is complete`)
    }
    t.ok(s.errors.length > 0, `${path}: reported to gateway.errors`)
    if (path === '/throw' || path === '/reject') t.match(s.errors.join('\n'), SECRET, `${path}: the error itself is in the log`)
    const next = await s.exchange(GET('/fine'))
    t.equal(next.responses[0]?.status, 200, `${path}: next connection served`)
  }
})

t.test('after a 500 the same keep-alive connection still works (or is closed cleanly)', async (t) => {
  const s = await serve(t, app)
  const r = await s.exchange(GET('/throw') + GET('/fine'), { responses: 2 })
  t.equal(r.responses[0]?.status, 500, r.raw)
  if (r.responses.length === 2) t.equal(r.responses[1]?.body.toString(), 'fine')
  else t.ok(r.closed, 'or closed after the 500')
})

t.test('body iterator throwing after the first chunk: truncated chunked response, connection closed', async (t) => {
  const s = await serve(t, (_e, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    return (async function* () {
      yield 'first chunk'
      await sleep(10)
      throw new Error(SECRET)
    })()
  })
  const r = await s.exchange(GET('/') + GET('/again'), { responses: 2, waitClose: true })
  t.equal(r.responses.length, 0, `no complete response: ${JSON.stringify(r.raw)}`)
  const partial = r.partial
  t.equal(partial?.status, 200)
  t.equal(partial?.framing, 'chunked')
  t.notOk(partial?.complete, 'no terminating 0-chunk')
  t.equal(partial?.body.toString(), 'first chunk')
  t.notMatch(r.raw, /\r\n0\r\n\r\n/)
  t.notMatch(r.raw, SECRET)
  t.ok(r.closed, 'connection closed')
  t.ok(await eventually(() => s.errors.join('\n').includes(SECRET)), 'reported to gateway.errors')
})

t.test('body iterator throwing with a Content-Length response: fewer bytes, connection closed', async (t) => {
  const s = await serve(t, (_e, startResponse) => {
    startResponse('200 OK', [['Content-Length', '20']])
    return (async function* () {
      yield 'ten bytes!'
      await sleep(10)
      throw new Error(SECRET)
    })()
  })
  const r = await s.exchange(GET('/'), { waitClose: true })
  t.equal(r.responses.length, 0, JSON.stringify(r.raw))
  t.equal(r.partial?.status, 200)
  t.equal(r.partial?.body.toString(), 'ten bytes!')
  t.ok(r.closed)
})

t.test('app-set Content-Length larger than a body known up front: 500', async (t) => {
  const s = await serve(t, (_e, startResponse) => {
    startResponse('200 OK', [['Content-Length', '10']])
    return ['short']
  })
  const r = await s.exchange(GET('/') + GET('/'), { responses: 2 })
  t.equal(r.responses[0]?.status, 500, JSON.stringify(r.raw))
  t.notMatch(r.raw, /short/)
})

t.test('app-set Content-Length larger than a streamed body: truncated and closed, never a wrong next response', async (t) => {
  const s = await serve(t, (_e, startResponse) => {
    startResponse('200 OK', [['Content-Length', '10']])
    return (async function* () {
      yield 'short'
      await sleep(10)
    })()
  })
  const r = await s.exchange(GET('/') + GET('/'), { responses: 2, waitClose: true })
  t.ok(r.closed, `closed: ${JSON.stringify(r.raw)}`)
  t.equal(r.responses.length, 0, 'no complete response that borrows bytes from the next one')
  t.equal(r.partial?.body.toString(), 'short')
})

t.test('app-set Content-Length smaller than the body: no extra bytes on the wire', async (t) => {
  const s = await serve(t, (_e, startResponse) => {
    startResponse('200 OK', [['Content-Length', '2']])
    return (function* () {
      yield 'toolong'
    })()
  })
  const c = await s.connect()
  c.write(GET('/'))
  const r = await c.read()
  await c.closed(500)
  t.notMatch(c.received, /toolong|olong/, `the extra bytes are not sent: ${JSON.stringify(c.received)}`)
  const res = r.responses[0]
  t.ok(res?.status === 500 || (res?.body.toString() === 'to' && !c.isOpen), 'a 500, or the declared bytes then close')
})

t.test('close() is called once after a normal response', async (t) => {
  let tracker: { closes: () => number } | undefined
  const s = await serve(t, (_e, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    const c = closable(['a', 'b'])
    tracker = c
    return c.body
  })
  const r = await s.exchange(GET('/'))
  t.equal(r.responses[0]?.body.toString(), 'ab', r.raw)
  t.ok(await eventually(() => tracker?.closes() === 1), 'closed once')
  await sleep(50)
  t.equal(tracker?.closes(), 1, 'exactly once')
})

t.test('close() is called once for a generator body, a HEAD request and a 204', async (t) => {
  const trackers: Array<{ path: string; closes: () => number }> = []
  const s = await serve(t, (environ, startResponse) => {
    startResponse(environ.PATH_INFO === '/204' ? '204 No Content' : '200 OK', [])
    const c = closable(
      (function* () {
        yield 'x'
      })(),
    )
    trackers.push({ path: `${environ.REQUEST_METHOD} ${environ.PATH_INFO}`, closes: c.closes })
    return c.body
  })
  await s.exchange(GET('/gen'))
  await s.exchange(`HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n`)
  await s.exchange(GET('/204'))
  t.ok(await eventually(() => trackers.length === 3 && trackers.every((x) => x.closes() === 1)), JSON.stringify(trackers.map((x) => [x.path, x.closes()])))
})

t.test('close() is called once when the body throws', async (t) => {
  let tracker: { closes: () => number } | undefined
  const s = await serve(t, (_e, startResponse) => {
    startResponse('200 OK', [])
    const c = closable(
      (function* () {
        yield 'a'
        throw new Error(SECRET)
      })(),
    )
    tracker = c
    return c.body
  })
  await s.exchange(GET('/'), { waitClose: true })
  t.ok(await eventually(() => tracker?.closes() === 1), `closed once (got ${tracker?.closes()})`)
})

t.test('close() is called once when the client disconnects mid-stream', async (t) => {
  let tracker: { closes: () => number } | undefined
  let produced = 0
  const s = await serve(t, (_e, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    const c = closable(
      (async function* () {
        for (;;) {
          produced++
          yield 'tick\n'
          await sleep(10)
        }
      })(),
    )
    tracker = c
    return c.body
  })
  const c = await s.connect()
  c.write(GET('/stream'))
  t.ok(await c.receivedText('tick'), 'streaming started')
  c.destroy()
  t.ok(await eventually(() => tracker?.closes() === 1), 'close() called after the client left')
  const after = produced
  await sleep(100)
  t.ok(produced <= after + 1, 'the body is no longer pulled')
  t.equal(tracker?.closes(), 1, 'exactly once')
})

t.test('replacing the response with startResponse(…, error) before anything was sent', async (t) => {
  const s = await serve(t, (_e, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']])
    try {
      throw new Error('render failed')
    } catch (err) {
      startResponse('503 Service Unavailable', [['Content-Type', 'text/plain']], err)
      return ['try later']
    }
  })
  const r = await s.exchange(GET('/'))
  t.equal(r.responses[0]?.status, 503, r.raw)
  t.equal(r.responses[0]?.body.toString(), 'try later')
})
