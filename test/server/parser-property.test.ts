/**
 * Property tests of the request parser (lib/server/parser.ts), driven
 * directly: random valid requests (any token as a method, absolute- and
 * asterisk-form targets, HTTP/1.0 to 1.9, obs-text, Content-Length lists,
 * chunked bodies with extensions and trailers, pipelined) parse to exactly
 * what was generated however the bytes are split; random mutations of them,
 * arbitrary bytes and requests at each limit give the same verdict whole or
 * split, and nothing ever throws out of the parser. Node's llhttp reads the
 * same valid requests the same way, except for the documented classes of
 * bench/fuzz-llhttp.ts, each of which must still occur. Last, the same
 * pipelines go through a real server (with a small pipeline depth, so
 * reading pauses and resumes) whole and split, and must get the same
 * responses.
 *
 * These are `npm run fuzz`'s properties (bench/fuzz-*.ts) at a count that
 * fits the test suite; the fuzzer runs a million cases.
 */
import t from 'tap'
import fc from 'fast-check'
import { parserProperties } from '../../bench/fuzz-parser.js'
import { DIVERGENCES, Tally, differentialProperty } from '../../bench/fuzz-llhttp.js'
import { pipeline, splitAt } from '../../bench/fuzz-requests.js'
import { serve } from '../helpers/server.js'

/** Runs a property and asserts it held, with fast-check's seed and path to replay a failure (not its raw counterexample, which may be 100 KB). */
function holds<Ts extends unknown[]>(t: { ok(value: unknown, message: string): unknown }, property: fc.IProperty<Ts>, numRuns: number, label: string): void {
  const details = fc.check(property, { numRuns })
  t.ok(!details.failed, details.failed ? `${label}: ${String(details.errorInstance)}\n(seed ${details.seed}, path ${details.counterexamplePath})` : label)
}

t.test('valid requests parse to what was generated, however they are split', async (t) => {
  holds(t, parserProperties.valid(), 400, '400 random pipelines')
})

t.test('one byte at a time gives the same events', async (t) => {
  holds(t, parserProperties.bytewise(), 60, '60 random pipelines byte by byte')
})

t.test('mutated requests: same outcome whole or split, never a throw, one error at most, nothing after it', async (t) => {
  holds(t, parserProperties.mutated(), 600, '600 random mutations')
})

t.test('random bytes never throw out of the parser', async (t) => {
  holds(t, parserProperties.random(), 500, '500 random byte strings')
})

t.test('requests at each default limit: accepted up to it, refused past it, the same however split', async (t) => {
  holds(t, parserProperties.limits(), 500, '500 requests at the limits')
})

t.test('llhttp reads valid requests the same, or disagrees only as documented', async (t) => {
  const tally = new Tally()
  holds(t, differentialProperty(tally), 1500, '1500 pipelines through both parsers')
  t.ok(tally.agree > 500, `${tally.agree} of 1500 cases read alike, ${tally.messages} messages compared`)
  for (const d of DIVERGENCES) {
    // A class that no longer happens means one of the parsers changed: the documentation must follow.
    t.ok((tally.classes.get(d.id)?.count ?? 0) > 0, `${d.id}: ${d.refuses} still refuses (${tally.classes.get(d.id)?.count ?? 0} times)`)
  }
})

t.test('through a real server: the same responses whole or split', async (t) => {
  const s = await serve(
    t,
    async (environ, startResponse) => {
      const input = environ['gateway.input']
      const body = await input.text()
      startResponse('200 OK', [['Content-Type', 'application/json']])
      return [JSON.stringify([environ.REQUEST_METHOD, environ.REQUEST_URI, environ.SERVER_PROTOCOL, body, input.trailers])]
    },
    { maxPipelineDepth: 2 },
  )
  await fc.assert(
    fc.asyncProperty(pipeline, fc.array(fc.nat(4000), { minLength: 1, maxLength: 6 }), async ({ bytes, events }, points) => {
      // Responses stop after a request that ends the connection.
      const heads = events.filter((e) => e.kind === 'head')
      const closing = heads.findIndex((h) => !h.keepAlive)
      const expected = closing < 0 ? heads.length : closing + 1
      // The methods, for the reader to know which responses answer HEAD.
      const methods = heads.slice(0, expected).map((h) => h.method)
      const whole = await s.exchange(bytes, { responses: expected, methods })
      const pieces = splitAt(bytes, points).map((p) => p.length)
      const split = await s.exchange(bytes, { responses: expected, splits: pieces, methods })
      const view = (r: typeof whole) => JSON.stringify({ responses: r.responses.map((x) => [x.status, x.body.toString('latin1')]) })
      if (whole.timedOut || split.timedOut) throw new Error(`timed out: ${JSON.stringify(whole.raw)} / ${JSON.stringify(split.raw)}`)
      if (view(whole) !== view(split)) throw new Error(`whole ${view(whole)}\n split ${JSON.stringify(pieces)} ${view(split)}`)
      if (whole.responses.length !== expected) throw new Error(`${whole.responses.length} of ${expected} responses: ${JSON.stringify(whole.raw)}`)
      if (whole.responses.some((x) => x.status !== 200)) throw new Error(`a valid request was refused: ${JSON.stringify(whole.raw)}`)
    }),
    { numRuns: 40 },
  )
  t.pass('40 random pipelines through the server')
})
