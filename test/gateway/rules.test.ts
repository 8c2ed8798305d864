/**
 * checkHeaders remembers frozen pairs it found valid, plain and ASCII (the
 * framework shares its content-type pairs between responses). What it
 * learns from a pair must not change by being asked twice: a bad frozen pair
 * is refused every time, and a frozen pair with a meaning (Content-Length,
 * Date, Server, a non-ASCII value) still says it every time.
 */
import t from 'tap'
import { GatewayViolation, checkHeaders } from '../../lib/gateway/rules.js'

const frozen = (name: string, value: string): [string, string] => Object.freeze([name, value]) as [string, string]

t.test('a frozen plain pair is valid every time, and says nothing', async (t) => {
  const pair = frozen('Content-Type', 'application/json; charset=utf-8')
  for (let i = 0; i < 3; i++) t.same(checkHeaders([pair]), { declaredLength: -1, hasDate: false, hasServer: false, ascii: true })
})

t.test('a bad frozen pair is refused every time', async (t) => {
  const pair = frozen('X-Split', 'a\r\nSet-Cookie: b')
  for (let i = 0; i < 3; i++) t.throws(() => checkHeaders([pair]), GatewayViolation)
  const hop = frozen('Connection', 'close')
  for (let i = 0; i < 3; i++) t.throws(() => checkHeaders([hop]), GatewayViolation)
})

t.test('frozen pairs with a meaning say it every time', async (t) => {
  const length = frozen('Content-Length', '5')
  const date = frozen('Date', 'Tue, 01 Dec 2026 10:00:00 GMT')
  const server = frozen('Server', 'mine')
  const latin1 = frozen('X-Name', 'café')
  for (let i = 0; i < 3; i++) {
    t.same(checkHeaders([length, date, server, latin1]), { declaredLength: 5, hasDate: true, hasServer: true, ascii: false })
  }
  t.throws(() => checkHeaders([length, frozen('Content-Length', '6')]), GatewayViolation, 'differing lengths are still found')
})

t.test('a pair that is not frozen is checked every time', async (t) => {
  const pair: [string, string] = ['X-Mutable', 'ok']
  t.same(checkHeaders([pair]).ascii, true)
  pair[1] = 'bad\n'
  t.throws(() => checkHeaders([pair]), GatewayViolation)
})
