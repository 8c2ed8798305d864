/**
 * Property tests of the request parser (lib/server/parser.ts), driven
 * directly: random valid requests (methods, targets, headers, Content-Length
 * and chunked bodies with extensions and trailers, pipelined) parse to
 * exactly what was generated however the bytes are split; random mutations
 * of them give the same outcome whole or split, and nothing ever throws out
 * of the parser. Last, the same pipelines go through a real server (with a
 * small pipeline depth, so reading pauses and resumes) whole and split, and
 * must get the same responses.
 */
import t from 'tap'
import fc from 'fast-check'
import { RequestParser, type RequestHead } from '../lib/server/parser.js'
import { DEFAULTS } from '../lib/server/options.js'
import { serve } from './helpers/server.js'

/** What the parser reported, with body pieces merged so splits do not show. */
type Event =
  | { kind: 'head'; method: string; target: string; path: string; query: string; minor: number; headers: string[]; host: string; contentLength: number }
  | { kind: 'body'; data: string }
  | { kind: 'end'; trailers: string[] }
  | { kind: 'error'; status: number }

const limits = {
  maxHeaderSize: DEFAULTS.maxHeaderSize,
  maxHeaderCount: DEFAULTS.maxHeaderCount,
  maxTargetLength: DEFAULTS.maxTargetLength,
  maxBodySize: DEFAULTS.maxBodySize,
  maxChunkExtensionSize: DEFAULTS.maxChunkExtensionSize,
}

/** Feeds `pieces` to a fresh parser; returns the events, or the exception that escaped. */
function run(pieces: Buffer[]): { events: Event[]; thrown?: unknown; errorCalls: number; afterError: number } {
  const events: Event[] = []
  let errorCalls = 0
  let afterError = 0
  const note = () => {
    if (errorCalls > 0) afterError++
  }
  const parser = new RequestParser(limits, {
    onHead(head: RequestHead) {
      note()
      events.push({ kind: 'head', method: head.method, target: head.target, path: head.path, query: head.query, minor: head.minor, headers: [...head.headers], host: head.host, contentLength: head.contentLength })
    },
    onBody(chunk: Buffer) {
      note()
      if (chunk.length === 0) return
      const last = events[events.length - 1]
      if (last?.kind === 'body') last.data += chunk.toString('latin1')
      else events.push({ kind: 'body', data: chunk.toString('latin1') })
    },
    onBodyEnd(trailers: string[]) {
      note()
      events.push({ kind: 'end', trailers: [...trailers] })
    },
    onError(error) {
      errorCalls++
      events.push({ kind: 'error', status: error.status })
    },
  })
  try {
    for (const p of pieces) parser.execute(p)
  } catch (thrown) {
    return { events, thrown, errorCalls, afterError }
  }
  return { events, errorCalls, afterError }
}

/** Cuts `buf` at the given (sorted, deduplicated) positions. */
function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b)
  const pieces: Buffer[] = []
  let prev = 0
  for (const p of points) {
    pieces.push(buf.subarray(prev, p))
    prev = p
  }
  pieces.push(buf.subarray(prev))
  // Fresh copies: the parser must not depend on pieces sharing one buffer.
  return pieces.map((p) => Buffer.from(p))
}

// ---------- generators of valid requests, with the events they must give ----------

const tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
const token = (max: number) => fc.string({ unit: fc.constantFrom(...tchar), minLength: 1, maxLength: max })
const pchar = 'abcXYZ019-._~!$&\'()*+,;=:@'
const segment = fc.string({ unit: fc.constantFrom(...pchar), maxLength: 8 })
const vchar = fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c))
/** Field values: visible characters with inner spaces/tabs, no leading or trailing whitespace. */
const fieldValue = fc.oneof(
  fc.constant(''),
  fc.tuple(vchar, fc.string({ unit: fc.oneof(vchar, fc.constantFrom(' ', '\t')), maxLength: 20 }), vchar).map(([a, mid, b]) => a + mid + b),
  vchar,
)
const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'expect', 'te', 'upgrade', 'trailer', 'keep-alive'])
const fieldName = token(12).filter((n) => !RESERVED.has(n.toLowerCase()))
const ows = fc.constantFrom('', ' ', '\t', '  ', ' \t')

interface Generated {
  bytes: string
  events: Event[]
}

const chunkExt = fc.oneof(
  fc.constant(''),
  fc.tuple(token(6), fc.option(fc.oneof(token(6), fc.string({ unit: fc.constantFrom(...'abc ;=,'), maxLength: 6 }).map((s) => `"${s}"`)), { nil: undefined })).map(([n, v]) => `;${n}${v === undefined ? '' : `=${v}`}`),
)

const request: fc.Arbitrary<Generated> = fc
  .record({
    method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'), token(10)),
    segments: fc.array(segment, { minLength: 1, maxLength: 4 }),
    query: fc.option(fc.string({ unit: fc.constantFrom(...pchar, '/', '?'), maxLength: 12 }), { nil: undefined }),
    minor: fc.constantFrom(0, 1),
    host: fc.constantFrom('localhost', 'example.com:8080', '127.0.0.1', '[::1]:80'),
    headers: fc.array(fc.tuple(fieldName, ows, fieldValue, ows), { maxLength: 8 }),
    body: fc.oneof(
      fc.constant({ kind: 'none' as const }),
      fc.record({ kind: fc.constant('length' as const), data: fc.string({ maxLength: 60 }) }),
      fc.record({
        kind: fc.constant('chunked' as const),
        chunks: fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 30 }), chunkExt, fc.boolean()), { maxLength: 5 }),
        lastExt: chunkExt,
        trailers: fc.array(fc.tuple(fieldName, fieldValue), { maxLength: 3 }),
      }),
    ),
  })
  .map((g): Generated => {
    const path = '/' + g.segments.join('/')
    const target = g.query === undefined ? path : `${path}?${g.query}`
    let head = `${g.method} ${target} HTTP/1.${g.minor}\r\n`
    const flat: string[] = []
    if (g.minor === 1 || g.host !== 'localhost') {
      head += `Host: ${g.host}\r\n`
      flat.push('Host', g.host)
    }
    for (const [name, pre, value, post] of g.headers) {
      head += `${name}:${pre}${value}${post}\r\n`
      flat.push(name, value)
    }
    const host = flat[0] === 'Host' ? g.host : ''
    const events: Event[] = []
    let body = ''
    let contentLength = 0
    const bodyEvents: Event[] = []
    const body1 = g.body
    if (body1.kind === 'length' || (body1.kind === 'chunked' && g.minor === 0)) {
      // HTTP/1.0 has no chunked: send the same data with a length.
      const data = body1.kind === 'length' ? body1.data : body1.chunks.map(([d]) => d).join('')
      const bytes = Buffer.from(data, 'latin1')
      head += `Content-Length: ${bytes.length}\r\n`
      flat.push('Content-Length', String(bytes.length))
      body = data
      contentLength = bytes.length
      if (bytes.length > 0) bodyEvents.push({ kind: 'body', data })
      bodyEvents.push({ kind: 'end', trailers: [] })
    } else if (body1.kind === 'chunked') {
      head += 'Transfer-Encoding: chunked\r\n'
      flat.push('Transfer-Encoding', 'chunked')
      contentLength = -1
      for (const [data, ext, upper] of body1.chunks) {
        const size = Buffer.byteLength(data, 'latin1').toString(16)
        body += `${upper ? size.toUpperCase() : size}${ext}\r\n${data}\r\n`
      }
      body += `0${body1.lastExt}\r\n`
      const trailerFlat: string[] = []
      for (const [name, value] of body1.trailers) {
        body += `${name}: ${value}\r\n`
        trailerFlat.push(name, value)
      }
      body += '\r\n'
      const data = body1.chunks.map(([d]) => d).join('')
      if (data.length > 0) bodyEvents.push({ kind: 'body', data })
      bodyEvents.push({ kind: 'end', trailers: trailerFlat })
    } else {
      bodyEvents.push({ kind: 'end', trailers: [] })
    }
    events.push({ kind: 'head', method: g.method, target, path, query: g.query ?? '', minor: g.minor, headers: flat, host, contentLength })
    events.push(...bodyEvents)
    return { bytes: head + '\r\n' + body, events }
  })

/** 1–3 pipelined requests; a request after an HTTP/1.0 one is fine for the parser (the server decides). */
const pipeline = fc.array(request, { minLength: 1, maxLength: 3 }).map((reqs) => ({
  bytes: Buffer.from(reqs.map((r) => r.bytes).join(''), 'latin1'),
  events: reqs.flatMap((r) => r.events),
}))

const cuts = fc.array(fc.nat(4000), { maxLength: 12 })

t.test('valid requests parse to what was generated, however they are split', async (t) => {
  fc.assert(
    fc.property(pipeline, cuts, ({ bytes, events }, points) => {
      const whole = run([bytes])
      if (whole.thrown !== undefined) throw whole.thrown
      if (JSON.stringify(whole.events) !== JSON.stringify(events)) {
        throw new Error(`whole: expected ${JSON.stringify(events)}\n got ${JSON.stringify(whole.events)}\n bytes ${JSON.stringify(bytes.toString('latin1'))}`)
      }
      const split = run(splitAt(bytes, points))
      if (split.thrown !== undefined) throw split.thrown
      if (JSON.stringify(split.events) !== JSON.stringify(events)) {
        throw new Error(`split ${JSON.stringify(points)}: expected ${JSON.stringify(events)}\n got ${JSON.stringify(split.events)}`)
      }
    }),
    { numRuns: 400 },
  )
  t.pass('400 random pipelines')
})

t.test('one byte at a time gives the same events', async (t) => {
  fc.assert(
    fc.property(pipeline, ({ bytes, events }) => {
      const pieces = [...bytes].map((b) => Buffer.from([b]))
      const r = run(pieces)
      if (r.thrown !== undefined) throw r.thrown
      if (JSON.stringify(r.events) !== JSON.stringify(events)) throw new Error(`bytewise: expected ${JSON.stringify(events)}\n got ${JSON.stringify(r.events)}`)
    }),
    { numRuns: 60 },
  )
  t.pass('60 random pipelines byte by byte')
})

// ---------- mutated requests ----------

const INTERESTING = [0x20, 0x0d, 0x0a, 0x00, 0x3a, 0x09, 0x3b, 0x2c, 0x30, 0x61, 0x7f, 0xff, 0x22, 0x2d, 0x2b, 0x0b]
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.constantFrom(...INTERESTING) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ op: fc.constant('header' as const), at: fc.nat(), line: fc.constantFrom('Content-Length: 3', 'Content-Length: 0', 'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip', 'Host: a', 'Content-Length: 1, 2', ' folded', 'Transfer-Encoding : chunked', 'Expect: 100-continue', 'Connection: close') }),
)

interface Mutation {
  op: 'set' | 'insert' | 'delete' | 'header'
  at: number
  byte?: number
  len?: number
  line?: string
}

function mutate(bytes: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(bytes)
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % b.length
    if (m.op === 'set') b[at] = m.byte ?? 0
    else if (m.op === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte ?? 0]), b.subarray(at)])
    else if (m.op === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + (m.len ?? 1))])
    else {
      // Insert a header line right after the line that contains `at`.
      const lf = b.indexOf(0x0a, at)
      const pos = lf < 0 ? b.length : lf + 1
      b = Buffer.concat([b.subarray(0, pos), Buffer.from(`${m.line ?? ''}\r\n`, 'latin1'), b.subarray(pos)])
    }
  }
  return b
}

t.test('mutated requests: same outcome whole or split, never a throw, one error at most, nothing after it', async (t) => {
  fc.assert(
    fc.property(pipeline, fc.array(mutation, { minLength: 1, maxLength: 3 }), cuts, ({ bytes }, ms, points) => {
      const mutated = mutate(bytes, ms)
      const whole = run([mutated])
      if (whole.thrown !== undefined) throw new Error(`threw on ${JSON.stringify(mutated.toString('latin1'))}: ${String(whole.thrown)}`)
      const split = run(splitAt(mutated, points))
      if (split.thrown !== undefined) throw new Error(`threw (split) on ${JSON.stringify(mutated.toString('latin1'))}: ${String(split.thrown)}`)
      const bytewise = run([...mutated].map((x) => Buffer.from([x])))
      for (const r of [whole, split, bytewise]) {
        if (r.errorCalls > 1) throw new Error(`onError called ${r.errorCalls} times`)
        if (r.afterError > 0) throw new Error('events after onError')
      }
      const w = JSON.stringify(whole.events)
      if (JSON.stringify(split.events) !== w || JSON.stringify(bytewise.events) !== w) {
        throw new Error(
          `outcome depends on the split for ${JSON.stringify(mutated.toString('latin1'))}\n whole ${w}\n split ${JSON.stringify(points)} ${JSON.stringify(split.events)}\n bytewise ${JSON.stringify(bytewise.events)}`,
        )
      }
      for (const e of whole.events) {
        if (e.kind === 'error' && ![400, 413, 414, 417, 431, 501, 505].includes(e.status)) throw new Error(`unexpected error status ${e.status}`)
      }
    }),
    { numRuns: 600 },
  )
  t.pass('600 random mutations')
})

t.test('random bytes never throw out of the parser', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), cuts, (data, points) => {
      const buf = Buffer.from(data)
      const whole = run([buf])
      const split = run(splitAt(buf, points))
      if (whole.thrown !== undefined || split.thrown !== undefined) throw new Error(`threw on ${JSON.stringify(buf.toString('latin1'))}`)
      if (JSON.stringify(whole.events) !== JSON.stringify(split.events)) throw new Error(`split-dependent outcome on ${JSON.stringify(buf.toString('latin1'))}`)
    }),
    { numRuns: 500 },
  )
  t.pass('500 random byte strings')
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
      const expected = events.filter((e) => e.kind === 'head').length
      const whole = await s.exchange(bytes, { responses: expected })
      const pieces = splitAt(bytes, points).map((p) => p.length)
      const split = await s.exchange(bytes, { responses: expected, splits: pieces })
      const view = (r: typeof whole) => JSON.stringify({ responses: r.responses.map((x) => [x.status, x.body.toString('latin1')]) })
      if (whole.timedOut || split.timedOut) throw new Error(`timed out: ${JSON.stringify(whole.raw)} / ${JSON.stringify(split.raw)}`)
      if (view(whole) !== view(split)) throw new Error(`whole ${view(whole)}\n split ${JSON.stringify(pieces)} ${view(split)}`)
      if (whole.responses.some((x) => x.status !== 200)) throw new Error(`a valid request was refused: ${JSON.stringify(whole.raw)}`)
    }),
    { numRuns: 40 },
  )
  t.pass('40 random pipelines through the server')
})
