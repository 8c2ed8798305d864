/**
 * The runner's side of the WebSocket extension [ws-app]: once the server's
 * accept() marks the call upgraded, returning [] ends the call with no
 * response; startResponse after accept() throws; accept() after
 * startResponse or twice throws; a non-empty body is logged, closed and
 * discarded; an app error after accept() closes the socket with 1011.
 *
 * The server is a small GatewayCall subclass that records what the runner
 * asks of its sink, and whose offer calls markUpgraded as a server's
 * accept() does.
 */
import t from 'tap'
import type { Chunk, Environ, GatewayApp } from '../../lib/gateway/spec.js'
import { GatewayCall } from '../../lib/gateway/runner.js'
import { GatewayViolation } from '../../lib/gateway/rules.js'
import type { WebSocketUpgrade } from '../../lib/gateway/websocket.js'

class RecordingCall extends GatewayCall {
  events: string[] = []
  logs: string[] = []
  closes: Array<[number, string]> = []
  ended: Promise<void>
  private end: () => void = () => {}
  constructor() {
    super('GET', '/ws')
    this.ended = new Promise((resolve) => (this.end = resolve))
  }
  /** The offer a server puts in the environ: accept() marks the call upgraded. */
  offer(): WebSocketUpgrade {
    return {
      protocols: [],
      accept: () => {
        const socket = { closeFromServer: (code: number, reason: string) => void this.closes.push([code, reason]) }
        this.markUpgraded(socket)
        this.events.push('101')
        return socket as never
      },
    }
  }
  protected sendWhole(_chunks: readonly Chunk[], total: number): void {
    this.events.push(`whole ${this.code} ${total}`)
  }
  protected sendHead(): void {
    this.events.push('head')
  }
  protected sendChunk(): void {
    this.events.push('chunk')
  }
  protected sendEnd(): void {
    this.events.push('end')
  }
  protected sendError(status: number): void {
    this.events.push(`error ${status}`)
  }
  protected cut(): void {
    this.events.push('cut')
  }
  protected mustWait(): boolean {
    return false
  }
  protected waitWritable(): Promise<void> {
    return Promise.resolve()
  }
  protected log(message: string): void {
    this.logs.push(message)
  }
  protected override finished(): void {
    this.events.push('finished')
    this.end()
  }
}

function run(app: (upgrade: WebSocketUpgrade, ...rest: Parameters<GatewayApp>) => ReturnType<GatewayApp>): RecordingCall {
  const call = new RecordingCall()
  const upgrade = call.offer()
  call.run((environ, startResponse) => app(upgrade, environ, startResponse), {} as Environ)
  return call
}

t.test('accept() then [] ends the call with no response', async (t) => {
  const sync = run((upgrade) => (upgrade.accept(), []))
  await sync.ended
  t.same(sync.events, ['101', 'finished'])
  t.ok(sync.isUpgraded)
  t.ok(sync.committed)
  t.same(sync.logs, [])
  const later = run(async (upgrade) => {
    await new Promise((resolve) => setTimeout(resolve, 2))
    upgrade.accept()
    return []
  })
  await later.ended
  t.same(later.events, ['101', 'finished'])
})

t.test('startResponse after accept() throws [ws-app]; with an error it rethrows that error', async (t) => {
  let thrown: unknown
  let rethrown: unknown
  const boom = new Error('boom')
  const call = run((upgrade, _e, startResponse) => {
    upgrade.accept()
    try {
      startResponse('200 OK', [])
    } catch (error) {
      thrown = error
    }
    try {
      startResponse('500 Internal Server Error', [], boom)
    } catch (error) {
      rethrown = error
    }
    return []
  })
  await call.ended
  t.ok(thrown instanceof GatewayViolation)
  t.equal((thrown as GatewayViolation).rule, 'ws-app')
  t.equal(rethrown, boom)
  t.same(call.events, ['101', 'finished'])
})

t.test('accept() after startResponse, or twice, throws [ws-app] and sends no 101', async (t) => {
  const errors: unknown[] = []
  const after = run((upgrade, _e, startResponse) => {
    startResponse('401 Unauthorized', [])
    try {
      upgrade.accept()
    } catch (error) {
      errors.push(error)
    }
    return ['no']
  })
  await after.ended
  t.same(after.events, ['whole 401 2', 'finished'], 'the 401 goes out, no 101')
  const twice = run((upgrade) => {
    upgrade.accept()
    try {
      upgrade.accept()
    } catch (error) {
      errors.push(error)
    }
    return []
  })
  await twice.ended
  t.same(twice.events, ['101', 'finished'])
  const answered = new RecordingCall()
  const offer = answered.offer()
  answered.run((_e, sr) => (sr('200 OK', []), []), {} as Environ)
  await answered.ended
  t.throws(() => offer.accept(), /after the request was answered/)
  t.equal(errors.length, 2)
  for (const error of errors) t.match(error, { name: 'GatewayViolation', rule: 'ws-app' })
})

t.test('a non-empty body after accept() is logged, closed and discarded', async (t) => {
  let closed = 0
  const call = run((upgrade) => {
    upgrade.accept()
    return Object.assign(['oops'], { close: () => void closed++ })
  })
  await call.ended
  t.same(call.events, ['101', 'finished'])
  t.equal(closed, 1)
  t.match(call.logs.join(''), /\[ws-app\] the app returned a body after accept\(\)/)
  let iterated = false
  const generator = run((upgrade) => {
    upgrade.accept()
    return (function* () {
      iterated = true
      yield 'x'
    })()
  })
  await generator.ended
  t.equal(iterated, false, 'a non-array body is not iterated')
  t.equal(generator.logs.length, 1)
})

t.test('an app error after accept() closes the socket with 1011 and is logged; before accept it is a 500', async (t) => {
  const sync = run((upgrade) => {
    upgrade.accept()
    throw new Error('kaboom')
  })
  await sync.ended
  t.same(sync.closes, [[1011, 'Internal Error']])
  t.same(sync.events, ['101', 'finished'])
  t.match(sync.logs.join(''), /app error after accept\(\): .*kaboom/)
  const rejected = run(async (upgrade) => {
    upgrade.accept()
    await Promise.resolve()
    throw new Error('later')
  })
  await rejected.ended
  t.same(rejected.closes, [[1011, 'Internal Error']])
  const before = run(() => {
    throw new Error('no accept')
  })
  await before.ended
  t.same(before.events, ['error 500', 'finished'])
  t.same(before.closes, [])
})
