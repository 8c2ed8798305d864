/**
 * The differential test against Node's own parser, llhttp (through the same
 * internal binding bench/micro.ts times, strict mode, as node:http runs it).
 * Both parse the same generated pipelines; for every message they must agree
 * on method, target, version, header fields (as postern presents them: names
 * as sent, values trimmed of OWS), body, trailers and persistence.
 *
 * Where they may disagree is written down below, one class per reason, each
 * with the side that refuses and the status or llhttp error code it refuses
 * with. A disagreement is accepted only when the message where the two first
 * part ways carries the generator tag of a class that predicts exactly that
 * refusal; anything else fails the run with the bytes and both outcomes.
 *
 * The generator makes valid requests (bench/fuzz-requests.ts), and one in
 * seven is an "edge": a request that llhttp takes but RFC 9110/9112 or
 * postern's limits say to refuse, to show where postern is stricter and why.
 * Comparison stops after a message that ends the connection: llhttp refuses
 * any byte after it (HPE_CLOSED_CONNECTION), postern's parser reads on but
 * its server stops reading there, so neither says anything about those bytes.
 */
import fc from 'fast-check'
import { printable, request, type Event, type Generated } from './fuzz-requests.js'
import { run } from './fuzz-parser.js'

// ---------- llhttp ----------

/** Node's llhttp binding, as node:http drives it (deprecated internal API, still present on Node 20); bench/micro.ts uses it too. */
export interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void
  execute(data: Buffer): number | (Error & { code?: string; reason?: string })
  [callback: number]: (...args: never[]) => void
}
export interface LlhttpBinding {
  allMethods: string[]
  HTTPParser: (new () => LlhttpParser) & Record<'REQUEST' | 'kOnMessageBegin' | 'kOnHeaders' | 'kOnHeadersComplete' | 'kOnBody' | 'kOnMessageComplete' | 'kOnExecute', number>
}

export function llhttpBinding(): LlhttpBinding {
  const quiet = process.noDeprecation
  process.noDeprecation = true // DEP0111: we mean to use it
  try {
    return (process as unknown as { binding(name: string): LlhttpBinding }).binding('http_parser')
  } finally {
    process.noDeprecation = quiet
  }
}

/** One message as a parser presents it, in a shape both parsers can fill. */
export interface Message {
  method: string
  target: string
  minor: number
  headers: string[]
  body: string
  trailers: string[]
  keepAlive: boolean
}

/** Everything a parser made of one input. */
export interface Outcome {
  messages: Message[]
  /** How it refused: a status for postern, an error code for llhttp; null when it did not. */
  refusal: string | null
  /** llhttp asked to hand the connection over (Upgrade or CONNECT) after the last message. */
  upgrade: boolean
  /** A message was begun and not finished. */
  incomplete: boolean
}

let binding: LlhttpBinding | null = null

/** Parses `bytes` with llhttp in strict mode, collecting messages as node:http's glue code does. */
export function parseWithLlhttp(bytes: Buffer): Outcome {
  binding ??= llhttpBinding()
  const { HTTPParser, allMethods } = binding
  const parser = new HTTPParser()
  parser.initialize(HTTPParser.REQUEST, {}, 0, 0)
  const outcome: Outcome = { messages: [], refusal: null, upgrade: false, incomplete: false }
  // Headers and URL may arrive in pieces through kOnHeaders (more than 32 fields, or trailers).
  let pending: string[] = []
  let url = ''
  let current: Message | null = null
  const body: Buffer[] = []
  parser[HTTPParser.kOnMessageBegin] = () => {
    pending = []
    url = ''
    body.length = 0
  }
  parser[HTTPParser.kOnHeaders] = ((headers: string[], piece: string) => {
    pending.push(...headers)
    url += piece
  }) as (...args: never[]) => void
  parser[HTTPParser.kOnHeadersComplete] = ((
    major: number,
    minor: number,
    headers: string[] | undefined,
    method: number,
    target: string | undefined,
    _s: unknown,
    _m: unknown,
    upgrade: boolean,
    keepAlive: boolean,
  ) => {
    current = {
      method: allMethods[method] ?? `#${method}`,
      target: target ?? url,
      minor: major === 1 ? minor : -1,
      headers: headers ?? pending,
      body: '',
      trailers: [],
      keepAlive,
    }
    pending = []
    url = ''
    if (upgrade) outcome.upgrade = true
  }) as (...args: never[]) => void
  parser[HTTPParser.kOnBody] = ((chunk: Buffer) => {
    body.push(Buffer.from(chunk))
  }) as (...args: never[]) => void
  parser[HTTPParser.kOnMessageComplete] = () => {
    if (current === null) return
    current.body = Buffer.concat(body).toString('latin1')
    current.trailers = pending
    pending = []
    outcome.messages.push(current)
    current = null
  }
  parser[HTTPParser.kOnExecute] = () => {}
  const result = parser.execute(bytes)
  if (result instanceof Error) outcome.refusal = result.code ?? 'error'
  outcome.incomplete = current !== null
  return outcome
}

/** Parses `bytes` with postern's parser (whole, default limits) into the same shape. */
export function parseWithPostern(bytes: Buffer): Outcome {
  const r = run([bytes])
  return fromEvents(r.events)
}

function fromEvents(events: Event[]): Outcome {
  const outcome: Outcome = { messages: [], refusal: null, upgrade: false, incomplete: false }
  let current: Message | null = null
  for (const e of events) {
    if (e.kind === 'head') current = { method: e.method, target: e.target, minor: e.minor, headers: e.headers, body: '', trailers: [], keepAlive: e.keepAlive }
    else if (e.kind === 'body' && current !== null) current.body += e.data
    else if (e.kind === 'end' && current !== null) {
      current.trailers = e.trailers
      outcome.messages.push(current)
      current = null
    } else if (e.kind === 'error') outcome.refusal = String(e.status)
  }
  outcome.incomplete = current !== null
  return outcome
}

// ---------- the documented classes of disagreement ----------

export interface Divergence {
  /** The generator tag that marks a request of this class. */
  id: string
  /** Which parser refuses a message the other takes. */
  refuses: 'postern' | 'llhttp'
  /** The statuses (postern) or error codes (llhttp) it may refuse with. */
  with: string[]
  /** Why, with the rule behind it. */
  reason: string
}

// biome-ignore format: one divergence per line, read as a table
export const DIVERGENCES: readonly Divergence[] = [
  // postern is stricter: llhttp frames these and leaves judging them to its caller.
  { id: 'duplicate-host', refuses: 'postern', with: ['400'], reason: 'RFC 9112 §3.2: a server MUST answer 400 to a request with more than one Host field line; llhttp leaves Host to node:http' },
  { id: 'missing-host', refuses: 'postern', with: ['400'], reason: 'RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host (node:http does too, above llhttp)' },
  { id: 'invalid-host', refuses: 'postern', with: ['400'], reason: 'RFC 9112 §3.2: MUST answer 400 to a Host whose value is not uri-host [":" port] (RFC 3986)' },
  { id: 'fragment', refuses: 'postern', with: ['400'], reason: 'RFC 9112 §3.2.1: origin-form is absolute-path ["?" query]; a "#" fragment is never sent, so a target holding one is malformed' },
  { id: 'asterisk-not-options', refuses: 'postern', with: ['400'], reason: 'RFC 9112 §3.2.4: the asterisk-form "*" is only for OPTIONS' },
  { id: 'te-on-http10', refuses: 'postern', with: ['400'], reason: 'RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request means faulty framing; postern refuses rather than guess' },
  { id: 'te-unknown-coding', refuses: 'postern', with: ['501'], reason: 'RFC 9112 §6.1: a server SHOULD answer 501 to a transfer coding it does not understand; llhttp frames by the final chunked and passes gzip/br/deflate data on undecoded' },
  { id: 'expect-unknown', refuses: 'postern', with: ['417'], reason: 'RFC 9110 §10.1.1: a server MAY answer 417 to an expectation it does not support (node:http does, above llhttp)' },
  { id: 'many-empty-lines', refuses: 'postern', with: ['400'], reason: 'RFC 9112 §2.2 asks to ignore at least one empty line before a request; postern ignores four, so a stream of CRLF cannot hold a connection' },
  { id: 'too-many-fields', refuses: 'postern', with: ['431'], reason: 'maxHeaderCount (100 by default, RFC 6585 §5); node:http drops fields past its maxHeadersCount silently' },
  // llhttp is stricter than the RFCs: postern takes these valid requests.
  { id: 'custom-method', refuses: 'llhttp', with: ['HPE_INVALID_METHOD'], reason: 'RFC 9110 §9.1: a method is any token, case-sensitive; llhttp knows a fixed list of methods' },
  { id: 'minor-above-1', refuses: 'llhttp', with: ['HPE_INVALID_VERSION'], reason: 'RFC 9110 §6.2: HTTP/1.x with x > 1 is to be treated as the highest 1.x minor the server supports; strict llhttp refuses it' },
  { id: 'content-length-list', refuses: 'llhttp', with: ['HPE_INVALID_CONTENT_LENGTH', 'HPE_UNEXPECTED_CONTENT_LENGTH'], reason: 'RFC 9110 §8.6: a recipient MAY take a list of identical Content-Length values (or the field repeated with one value) as that value; llhttp refuses both' },
  { id: 'chunk-ext-bws', refuses: 'llhttp', with: ['HPE_STRICT', 'HPE_INVALID_CHUNK_SIZE'], reason: 'RFC 9112 §7.1.1: chunk-ext has BWS around ";" and "="; strict llhttp refuses whitespace there' },
]

const BY_ID = new Map(DIVERGENCES.map((d) => [d.id, d]))

// ---------- edge requests: valid for llhttp, refused by postern for a stated reason ----------

interface Parts {
  lead: string
  method: string
  target: string
  version: string
  fields: string[]
  body: string
}

function partsOf(bytes: string): Parts {
  let at = 0
  while (bytes.startsWith('\r\n', at)) at += 2
  const lineEnd = bytes.indexOf('\r\n', at)
  const [method = '', target = '', version = ''] = bytes.slice(at, lineEnd).split(' ')
  const headEnd = bytes.indexOf('\r\n\r\n', lineEnd)
  const fields = headEnd === lineEnd ? [] : bytes.slice(lineEnd + 2, headEnd).split('\r\n')
  return { lead: bytes.slice(0, at), method, target, version, fields, body: bytes.slice(headEnd + 4) }
}

function render(p: Parts): string {
  return `${p.lead}${p.method} ${p.target} ${p.version}\r\n${p.fields.map((f) => `${f}\r\n`).join('')}\r\n${p.body}`
}

const isField = (name: string) => (line: string) => line.toLowerCase().startsWith(`${name}:`)
const without = (fields: string[], ...names: string[]) => fields.filter((f) => !names.some((n) => isField(n)(f)))
const pick = <T>(list: readonly T[], r: number): T => list[r % list.length]!
const originTarget = (target: string) => (target.startsWith('/') ? target : '/p')
/** HTTP/1.1 with exactly the Host it had (or one). */
function asHttp11(p: Parts): Parts {
  return { ...p, version: 'HTTP/1.1', fields: p.fields.some(isField('host')) ? p.fields : ['Host: a.b', ...p.fields] }
}
const CHUNKED_BODY = '3\r\nabc\r\n0\r\n\r\n'

const EDGES: Record<string, (p: Parts, r: number) => Parts> = {
  'duplicate-host': (p, r) => {
    const fields = without(p.fields, 'host')
    fields.splice(r % (fields.length + 1), 0, 'Host: a.b', pick(['Host: a.b', 'Host: c.d', 'host:a.b'], r))
    return { ...p, fields }
  },
  'missing-host': (p) => ({ ...p, version: 'HTTP/1.1', fields: without(p.fields, 'host') }),
  'invalid-host': (p, r) => ({
    ...p,
    target: p.target === '*' ? '*' : originTarget(p.target),
    fields: [`Host: ${pick(['a b', 'a/b', 'user@h', 'h:port', '[::1', 'a\\b'], r)}`, ...without(p.fields, 'host')],
  }),
  fragment: (p, r) => ({ ...p, target: `${originTarget(p.target)}#${pick(['', 'f', 'top?x', '/a'], r)}` }),
  'asterisk-not-options': (p, r) => ({ ...p, method: pick(['GET', 'POST', 'DELETE', 'HEAD'], r), target: '*' }),
  'te-on-http10': (p, r) => ({
    ...p,
    version: 'HTTP/1.0',
    fields: [...without(p.fields, 'content-length', 'transfer-encoding', 'expect'), `Transfer-Encoding: ${pick(['chunked', 'Chunked'], r)}`],
    body: CHUNKED_BODY,
  }),
  'te-unknown-coding': (p, r) => {
    const h = asHttp11(p)
    const te = pick([['gzip, chunked'], ['br, chunked'], ['deflate,chunked'], ['gzip', 'chunked'], ['x-custom, chunked']], r).map((v) => `Transfer-Encoding: ${v}`)
    return { ...h, fields: [...without(h.fields, 'content-length', 'transfer-encoding'), ...te], body: CHUNKED_BODY }
  },
  'expect-unknown': (p, r) => {
    const h = asHttp11(p)
    return { ...h, fields: [...without(h.fields, 'expect'), `Expect: ${pick(['foo', '200-ok', '100-continue, foo', 'continue'], r)}`] }
  },
  'many-empty-lines': (p, r) => ({ ...p, lead: '\r\n'.repeat(5 + (r % 4)) }),
  'too-many-fields': (p, r) => ({ ...p, fields: [...p.fields, ...Array.from({ length: 101 + (r % 10) }, (_, i) => `X-Fill-${i}: ${i}`)] }),
}

/** A request for the differential, with its tags. */
interface Tagged {
  bytes: string
  tags: string[]
}

const edgeRequest: fc.Arbitrary<Tagged> = fc
  .tuple(request, fc.constantFrom(...Object.keys(EDGES)), fc.nat())
  .map(([g, edge, r]) => ({ bytes: render(EDGES[edge]!(partsOf(g.bytes), r)), tags: [...g.tags, edge] }))
const validRequest: fc.Arbitrary<Tagged> = request.map((g: Generated) => ({ bytes: g.bytes, tags: g.tags }))

/** 1–3 pipelined requests, about one in seven an edge. */
export const differentialCase = fc.array(fc.oneof({ arbitrary: validRequest, weight: 6 }, { arbitrary: edgeRequest, weight: 1 }), { minLength: 1, maxLength: 3 }).map((reqs) => ({
  bytes: Buffer.from(reqs.map((r) => r.bytes).join(''), 'latin1'),
  tags: reqs.map((r) => r.tags),
}))

// ---------- comparison ----------

/** What the comparison found, for the tally. */
export type Verdict = { kind: 'agree'; messages: number } | { kind: 'both-refuse'; at: number; tags: string[] } | { kind: 'divergence'; id: string }

const view = (m: Message) => JSON.stringify(m)

/** Compares both parsers on one case; returns the verdict, or throws with the details when it is unexplained. */
export function compare(bytes: Buffer, tags: string[][]): Verdict {
  const p = parseWithPostern(bytes)
  const l = parseWithLlhttp(bytes)
  const fail = (why: string): never => {
    throw new Error(`${why}\n bytes  ${printable(bytes)}\n tags   ${JSON.stringify(tags)}\n postern ${printable(JSON.stringify(p))}\n llhttp  ${printable(JSON.stringify(l))}`)
  }
  const n = Math.min(p.messages.length, l.messages.length)
  for (let k = 0; k < n; k++) {
    const pm = p.messages[k]!
    const lm = l.messages[k]!
    if (view(pm) !== view(lm)) fail(`message ${k}: the parsers read it differently`)
    // The connection ends after this message: nothing after it is read by either server.
    if (!pm.keepAlive) return { kind: 'agree', messages: k + 1 }
    // llhttp hands the connection over (Upgrade, CONNECT); postern ignores Upgrade (RFC 9110 §7.8 allows it).
    if (l.upgrade && k === l.messages.length - 1) return { kind: 'agree', messages: k + 1 }
  }
  if (p.messages.length === l.messages.length) {
    if (p.refusal === null && l.refusal === null && !p.incomplete && !l.incomplete) return { kind: 'agree', messages: n }
    if (p.refusal !== null && l.refusal !== null) {
      // Both refuse the same message: fine only for a request generated to be refusable.
      const at = tags[n] ?? tags[tags.length - 1] ?? []
      if (at.length === 0) fail(`both parsers refuse message ${n}, a valid request`)
      return { kind: 'both-refuse', at: n, tags: at }
    }
    fail(`the parsers end differently after message ${n}`)
  }
  // One parser has message n, the other refused it: only a documented class may explain that.
  const refuser: 'postern' | 'llhttp' = p.messages.length < l.messages.length ? 'postern' : 'llhttp'
  const refusal = refuser === 'postern' ? p.refusal : l.refusal
  if (refusal === null) fail(`${refuser} stops at message ${n} without refusing it (waiting for more bytes)`)
  for (const tag of tags[n] ?? []) {
    const d = BY_ID.get(tag)
    if (d !== undefined && d.refuses === refuser && d.with.includes(refusal!)) return { kind: 'divergence', id: d.id }
  }
  return fail(`${refuser} refuses message ${n} with ${String(refusal)}, and no documented class explains it`)
}

/** Counts of each verdict, with the shortest example of each class, for the summary. */
export class Tally {
  cases = 0
  agree = 0
  messages = 0
  bothRefuse = 0
  readonly classes = new Map<string, { count: number; example: string }>()

  add(verdict: Verdict, bytes: Buffer): void {
    this.cases++
    if (verdict.kind === 'agree') {
      this.agree++
      this.messages += verdict.messages
    } else if (verdict.kind === 'both-refuse') this.bothRefuse++
    else {
      const entry = this.classes.get(verdict.id)
      const example = bytes.toString('latin1')
      if (entry === undefined) this.classes.set(verdict.id, { count: 1, example })
      else {
        entry.count++
        if (example.length < entry.example.length) entry.example = example
      }
    }
  }
}

/** The differential property; each verdict goes to `tally` when given. */
export function differentialProperty(tally?: Tally): fc.IPropertyWithHooks<[{ bytes: Buffer; tags: string[][] }]> {
  return fc.property(differentialCase, ({ bytes, tags }) => {
    const verdict = compare(bytes, tags)
    tally?.add(verdict, bytes)
  })
}
