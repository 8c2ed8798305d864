/**
 * The parser's two ways to a head — the whole head in one read (checked four
 * bytes at a time) and a head gathered over several reads (scanned line by
 * line) — must agree on every verdict, down to the message a client sees.
 */
import t from 'tap'
import { DEFAULTS, RequestParser } from '../../lib/server/index.js'
import type { ParseError, RequestHead } from '../../lib/server/index.js'

type Outcome = { head?: RequestHead; error?: { status: number; message: string } }

function parse(chunks: Buffer[]): Outcome {
  const outcome: Outcome = {}
  const parser = new RequestParser(DEFAULTS, {
    onHead: (head) => (outcome.head = head),
    onBody: () => {},
    onBodyEnd: () => {},
    onError: (error: ParseError) => (outcome.error = { status: error.status, message: error.message }),
  })
  for (const chunk of chunks) parser.execute(chunk)
  return outcome
}

const whole = (s: string) => parse([Buffer.from(s, 'latin1')])
const bytewise = (s: string) => parse([...Buffer.from(s, 'latin1')].map((b) => Buffer.from([b])))

const faults: Array<[string, string, number, RegExp]> = [
  ['NUL in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n', 400, /NUL in the value of header X-A/],
  ['bare CR in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n', 400, /bare CR in the value of header X-A/],
  ['DEL in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n', 400, /invalid character 0x7f in the value of header X-A/],
  ['bare LF ending a line', 'GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n', 400, /bare LF/],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  b\r\n\r\n', 400, /obsolete line folding/],
  ['space before the colon', 'GET / HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n', 400, /whitespace between a header name and the colon/],
  ['a quote in a name', 'GET / HTTP/1.1\r\nHost: x\r\nX"A: a\r\n\r\n', 400, /invalid character in a header name/],
  ['a control character in the target', 'GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n', 400, /invalid character in the request target/],
  ['a long method', `${'M'.repeat(DEFAULTS.maxTargetLength + 40)} / HTTP/1.1\r\nHost: x\r\n\r\n`, 414, /longer than/],
]

for (const [label, request, status, message] of faults) {
  t.test(label, async (t) => {
    const a = whole(request)
    const b = bytewise(request)
    t.equal(a.error?.status, status, 'whole: status')
    t.match(a.error?.message, message, 'whole: message')
    t.same(b.error, a.error, 'one byte at a time: the same verdict')
    t.equal(a.head, undefined, 'no head reached the server')
  })
}

t.test('a clean head parses the same both ways, obs-text and tabs included', async (t) => {
  const request = 'GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\nX-Latin: caf\xe9\r\nX-Tab: a\tb \t\r\nCookie: a=1\r\n\r\n'
  const a = whole(request)
  const b = bytewise(request)
  t.equal(a.error, undefined)
  t.same(a.head?.headers, ['Host', 'example.com', 'X-Latin', 'café', 'X-Tab', 'a\tb', 'Cookie', 'a=1'])
  t.same(b.head, a.head)
})

t.test('header names are remembered, never their verdicts on other input', async (t) => {
  // The name cache must not let a bad line through because its name was seen before.
  t.equal(whole('GET / HTTP/1.1\r\nHost: x\r\nX-Seen: ok\r\n\r\n').error, undefined)
  t.match(whole('GET / HTTP/1.1\r\nHost: x\r\nX-Seen: bad\0\r\n\r\n').error?.message, /NUL in the value of header X-Seen/)
  t.match(whole('GET / HTTP/1.1\r\nHost: x\r\nX-Seen : ok\r\n\r\n').error?.message, /whitespace between/)
})

t.test('names remembered by position: a different name in the same place is read as sent, with its own meaning', async (t) => {
  // Each head reuses the positions the previous head filled (on any connection: the memory is shared).
  const heads: RequestHead[] = []
  const errors: string[] = []
  const parser = new RequestParser(DEFAULTS, {
    onHead: (head) => heads.push(head),
    onBody: () => {},
    onBodyEnd: () => {},
    onError: (error: ParseError) => errors.push(error.message),
  })
  const send = (s: string) => parser.execute(Buffer.from(s, 'latin1'))
  send('GET / HTTP/1.1\r\nHost: x\r\nX-Name: 1\r\n\r\n')
  send('GET / HTTP/1.1\r\nHost: x\r\nX-Namex: 2\r\n\r\n') // longer, same prefix
  send('GET / HTTP/1.1\r\nHost: x\r\nX-Nam: 3\r\n\r\n') // shorter
  send('GET / HTTP/1.1\r\nHost: x\r\nx-name: 4\r\n\r\n') // other case: kept as sent
  send('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok') // a framing field where X-Name was
  send('GET / HTTP/1.1\r\nHost: x\r\nX-Name: 6\r\n\r\n')
  t.same(errors, [])
  t.same(
    heads.map((h) => h.headers[2]),
    ['X-Name', 'X-Namex', 'X-Nam', 'x-name', 'Content-Length', 'X-Name'],
  )
  t.equal(heads[4]!.contentLength, 2, 'Content-Length still frames the body in a place another name held')
  send('GET / HTTP/1.1\r\nHost: x\r\nX-Name : 7\r\n\r\n')
  t.match(errors[0], /whitespace between a header name and the colon/, 'a remembered name followed by a space is still refused')
})
