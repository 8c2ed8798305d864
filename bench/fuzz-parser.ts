/**
 * The in-process properties of postern's request parser (lib/server/parser.ts),
 * shared by `npm run fuzz` and test/server-parser-property.test.ts:
 *
 * - valid pipelines parse to exactly the generated events, whole, split at
 *   random points, or one byte at a time;
 * - mutated pipelines and arbitrary bytes give the same verdict (requests,
 *   heads, bodies, error status) however they are split, reach `onError` at
 *   most once and report nothing after it, only with the statuses the parser
 *   documents, and never throw out of `execute`;
 * - no fault is an internal exception in disguise: the parser turns anything
 *   it did not throw itself into a generic 400 "malformed request", which
 *   would hide a bug behind a plausible answer, so that message fails too.
 *
 * Each check throws an Error that describes the input, so a fast-check
 * counterexample is readable as it is.
 */
import fc from 'fast-check'
import { DEFAULTS } from '../lib/server/options.js'
import { ParseError, RequestParser, type RequestHead } from '../lib/server/parser.js'
import { atLimits, compactRuns, cuts, mutations, pipeline, printable, splitAt, mutate, type AtLimit, type Event, type Mutation, type Pipeline } from './fuzz-requests.js'

/** The message of the ParseError that `execute` makes out of an exception it did not expect. */
const INTERNAL_FAULT = 'malformed request'

/** Statuses the parser may answer a fault with. */
export const PARSER_STATUSES: readonly number[] = [400, 413, 414, 417, 431, 501, 505]

export interface RunResult {
  events: Event[]
  /** What escaped `execute`, if anything did. */
  thrown?: unknown
  errorCalls: number
  /** Events reported after `onError`. */
  afterError: number
  /** Set when `onError` got something other than a ParseError the parser threw on purpose. */
  internal: string | null
}

/** Feeds `pieces` to a fresh parser with the server's default limits and records what it reports. */
export function run(pieces: Buffer[]): RunResult {
  const events: Event[] = []
  const result: RunResult = { events, errorCalls: 0, afterError: 0, internal: null }
  const note = () => {
    if (result.errorCalls > 0) result.afterError++
  }
  const parser = new RequestParser(DEFAULTS, {
    onHead(head: RequestHead) {
      note()
      events.push({
        kind: 'head',
        method: head.method,
        target: head.target,
        path: head.path,
        query: head.query,
        minor: head.minor,
        headers: [...head.headers],
        host: head.host,
        contentLength: head.contentLength,
        keepAlive: head.keepAlive,
        expectContinue: head.expectContinue,
      })
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
    onError(error: unknown) {
      result.errorCalls++
      if (!(error instanceof ParseError)) result.internal = `onError got a ${typeof error}: ${String(error)}`
      else if (error.message === INTERNAL_FAULT) result.internal = 'an internal exception became a 400 "malformed request"'
      events.push({ kind: 'error', status: error instanceof ParseError ? error.status : 0 })
    },
  })
  try {
    for (const p of pieces) parser.execute(p)
  } catch (thrown) {
    result.thrown = thrown
  }
  return result
}

const show = printable
/** Throws the finding, long runs compacted so a 16 KB value stays readable. */
const fail = (message: string): never => {
  throw new Error(compactRuns(message))
}
const bytewise = (buf: Buffer): Buffer[] => [...buf].map((b) => Buffer.from([b]))

/** Throws when a run threw, hid an internal exception, erred twice, or reported after its error. */
function checkSane(r: RunResult, label: string, input: Buffer): void {
  if (r.thrown !== undefined) fail(`${label}: execute threw ${String(r.thrown)} on ${show(input)}`)
  if (r.internal !== null) fail(`${label}: ${r.internal} on ${show(input)}`)
  if (r.errorCalls > 1) fail(`${label}: onError called ${r.errorCalls} times on ${show(input)}`)
  if (r.afterError > 0) fail(`${label}: events after onError on ${show(input)}`)
  for (const e of r.events) {
    if (e.kind === 'error' && !PARSER_STATUSES.includes(e.status)) fail(`${label}: unexpected error status ${e.status} on ${show(input)}`)
  }
}

/** Valid pipelines parse to exactly the generated events, whole and split at `points`. */
export function checkValid({ bytes, events }: Pipeline, points: number[]): void {
  const expected = JSON.stringify(events)
  const whole = run([bytes])
  checkSane(whole, 'whole', bytes)
  if (JSON.stringify(whole.events) !== expected) fail(`whole: expected ${expected}\n got ${JSON.stringify(whole.events)}\n bytes ${show(bytes)}`)
  const split = run(splitAt(bytes, points))
  checkSane(split, 'split', bytes)
  if (JSON.stringify(split.events) !== expected) fail(`split ${JSON.stringify(points)}: expected ${expected}\n got ${JSON.stringify(split.events)}\n bytes ${show(bytes)}`)
}

/** Valid pipelines fed one byte at a time give the generated events. */
export function checkBytewise({ bytes, events }: Pipeline): void {
  const r = run(bytewise(bytes))
  checkSane(r, 'bytewise', bytes)
  if (JSON.stringify(r.events) !== JSON.stringify(events)) fail(`bytewise: expected ${JSON.stringify(events)}\n got ${JSON.stringify(r.events)}\n bytes ${show(bytes)}`)
}

/** Any input: the same verdict whole, split at `points` and one byte at a time. */
export function checkAnyInput(input: Buffer, points: number[], withBytewise = true): void {
  const whole = run([input])
  checkSane(whole, 'whole', input)
  const split = run(splitAt(input, points))
  checkSane(split, 'split', input)
  const w = JSON.stringify(whole.events)
  if (JSON.stringify(split.events) !== w) fail(`outcome depends on the split for ${show(input)}\n whole ${w}\n split ${JSON.stringify(points)} ${JSON.stringify(split.events)}`)
  if (!withBytewise) return
  const one = run(bytewise(input))
  checkSane(one, 'bytewise', input)
  if (JSON.stringify(one.events) !== w) fail(`outcome differs one byte at a time for ${show(input)}\n whole ${w}\n bytewise ${JSON.stringify(one.events)}`)
}

/** Mutated valid pipelines: {@link checkAnyInput}. */
export function checkMutated(p: Pipeline, ms: Mutation[], points: number[]): void {
  checkAnyInput(mutate(p.bytes, ms), points)
}

/** Arbitrary bytes, alone or after a valid pipeline (so they land in bodies, chunk lines and trailers). */
export const randomInput: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.tuple(pipeline, fc.uint8Array({ maxLength: 120 }), fc.nat()).map(([p, tail, at]) => {
    const cut = at % (p.bytes.length + 1)
    return Buffer.concat([p.bytes.subarray(0, cut), Buffer.from(tail)])
  }),
)

/** Requests around the default limits (lib/server/options.ts). */
export const atDefaultLimits: fc.Arbitrary<AtLimit> = atLimits(DEFAULTS)

/** A request at a limit: accepted up to it, refused past it with the status that names it, however split. */
export function checkAtLimit(c: AtLimit, points: number[]): void {
  checkAnyInput(c.bytes, points, false)
  const r = run([c.bytes])
  const error = r.events.find((e) => e.kind === 'error')
  const got = error?.kind === 'error' ? error.status : null
  if (got === null && r.events[r.events.length - 1]?.kind !== 'end') fail(`${c.limit}: a request of ${c.bytes.length} bytes neither parsed nor refused`)
  if (c.status !== undefined && got !== c.status) fail(`${c.limit}: expected ${c.status ?? 'acceptance'}, got ${got ?? 'acceptance'} for a request of ${c.bytes.length} bytes`)
}

/** The properties by name, as `npm run fuzz` runs them. */
export const parserProperties = {
  valid: () => fc.property(pipeline, cuts, (p, points) => checkValid(p, points)),
  bytewise: () => fc.property(pipeline, (p) => checkBytewise(p)),
  mutated: () => fc.property(pipeline, mutations, cuts, (p, ms, points) => checkMutated(p, ms, points)),
  random: () => fc.property(randomInput, cuts, (input, points) => checkAnyInput(input, points)),
  limits: () => fc.property(atDefaultLimits, cuts, (c, points) => checkAtLimit(c, points)),
}
