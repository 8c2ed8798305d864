/**
 * One request and its response on a connection: the gateway runner
 * (lib/gateway/runner.ts) calls the app and keeps the spec's rules; this
 * sink turns what it sends into HTTP/1.1 bytes: the head with its framing
 * (framing.ts) and `Connection` line, chunked encoding, `100 Continue`, and
 * whether the connection carries another request afterwards. Output goes
 * through the connection, which keeps pipelined responses in request order.
 *
 * The fast path: an app that calls `startResponse` and returns an array
 * synchronously gets `Content-Length` framing and its head and body written
 * as one string, with no promise made along the way.
 */
import type { Chunk, Headers } from '../gateway/spec.js'
import { GatewayError } from '../gateway/spec.js'
import { isAsciiValue } from '../gateway/headers.js'
import { GatewayCall } from '../gateway/runner.js'
import type { InputOwner, RequestInput } from './body-input.js'
import { CHUNK_END, FRAME_CHUNKED, FRAME_CLOSE, LAST_CHUNK, chunkHeader, framingLine, framingOf } from './framing.js'
import type { RequestHead } from './parser.js'
import { renderHead, simpleResponse } from './response-head.js'

/** What an exchange needs from its connection. */
export interface ExchangeOwner {
  /** Sends bytes for `ex`, in request order. */
  output(ex: Exchange, data: string | Uint8Array): void
  /** `ex`'s response is complete (or, with `broken`, cut short: the connection must end after it). */
  finish(ex: Exchange): void
  /** Whether `ex` should wait before producing more output (socket or ordering backpressure). */
  mustWait(ex: Exchange): boolean
  /** Resolves when `ex` may produce more output (or the client is gone). */
  waitWritable(ex: Exchange): Promise<void>
  pauseForInput(): void
  resumeForInput(): void
  /** Whether the server is shutting down (responses say `Connection: close`). */
  readonly closing: boolean
  readonly serverLine: string
  readonly errors: { write(message: string): void }
}

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n'

export class Exchange extends GatewayCall implements InputOwner {
  readonly head: RequestHead
  readonly owner: ExchangeOwner
  input: RequestInput | null = null
  /** Whether the connection may carry another request after this response. */
  keepAlive: boolean
  /** The response was cut short: the connection ends after what was sent. */
  broken = false
  private framing = 0
  private continueSent = false
  /** The head lines of a refused WebSocket handshake (its headers and `Connection`), replacing the usual `Connection` line. */
  private refusal: string | null = null

  constructor(owner: ExchangeOwner, head: RequestHead) {
    super(head.method, head.target)
    this.owner = owner
    this.head = head
    this.keepAlive = head.keepAlive
  }

  // --- the runner's sink -----------------------------------------------------

  protected sendWhole(chunks: readonly Chunk[], total: number, strings: boolean): void {
    const head = this.commit(total)
    if (this.noBody || total === 0) this.emit(head)
    else if (strings && typeof head === 'string') this.emit(chunks.length === 1 ? head + (chunks[0] as string) : head + chunks.join(''))
    else {
      this.emit(head)
      for (let i = 0; i < chunks.length; i++) this.emit(chunks[i]!)
    }
  }

  protected sendHead(): void {
    this.emit(this.commit(-1))
  }

  protected sendChunk(chunk: Chunk, length: number): void {
    if (this.framing !== FRAME_CHUNKED) this.emit(chunk)
    else if (typeof chunk === 'string') this.emit(chunkHeader(length) + chunk + CHUNK_END)
    else {
      this.emit(chunkHeader(length))
      this.emit(chunk)
      this.emit(CHUNK_END)
    }
  }

  protected sendEnd(): void {
    if (this.framing === FRAME_CHUNKED) {
      if (!this.noBody) this.emit(LAST_CHUNK)
    } else if (this.framing === FRAME_CLOSE) {
      this.keepAlive = false // the end of the body is the end of the connection
    }
  }

  /** A plain-text error; after a 400, 408 or 413 the request's bytes cannot be trusted, so the connection ends. */
  protected sendError(status: number, message: string): void {
    if (status === 400 || status === 408 || status === 413) this.keepAlive = false
    this.emit(simpleResponse(status, message, this.owner.serverLine, this.refusal ?? this.connectionLine(), this.head.method === 'HEAD'))
  }

  /**
   * Answers an invalid WebSocket handshake without calling the app
   * [ws-handshake]: `status` with `headers` (a 426's `Sec-WebSocket-Version`
   * and `Upgrade`), and the connection closes, as frames may follow.
   */
  refuseHandshake(status: number, message: string, headers: Headers): void {
    let lines = ''
    let upgrade = false
    for (const [name, value] of headers) {
      lines += `${name}: ${value}\r\n`
      if (name.toLowerCase() === 'upgrade') upgrade = true
    }
    this.keepAlive = false
    this.refusal = `${lines}Connection: ${upgrade ? 'upgrade, close' : 'close'}\r\n`
    this.refuse(status, message)
  }

  protected cut(): void {
    this.broken = true
  }

  protected mustWait(): boolean {
    return this.owner.mustWait(this)
  }

  protected waitWritable(): Promise<void> {
    return this.owner.waitWritable(this)
  }

  protected log(message: string): void {
    this.owner.errors.write(message)
  }

  protected override finished(): void {
    if (this.input !== null) this.input.discard()
    this.owner.finish(this)
  }

  // --- HTTP/1.1 ----------------------------------------------------------------

  /**
   * Renders the head with its framing: `length` ≥ 0 when the body's length is
   * known, -1 when it will stream.
   */
  private commit(length: number): string | Uint8Array {
    const facts = this.facts!
    this.framing = framingOf(this.code, facts.declaredLength, length, this.head.minor, this.noBody)
    if (this.framing === FRAME_CLOSE) this.keepAlive = false
    // A 426 names the protocol it wants in Upgrade, which needs the upgrade option in Connection (RFC 9110 §7.8).
    const connection = this.code === 426 ? upgradeConnection(this.connectionLine()) : this.connectionLine()
    const head = renderHead(this.status, this.headers, facts, this.owner.serverLine, framingLine(this.framing, length), connection)
    // A reason phrase or value may hold obs-text (U+0080–U+00FF), sent as Latin-1.
    return facts.ascii && isAsciiStatus(this.status) ? head : Buffer.from(head, 'latin1')
  }

  /**
   * The `Connection` line of the response head, deciding for good whether the
   * connection stays open. It closes when the server shuts down, and when the
   * client still waits for `100 Continue` to send a body we never asked for:
   * whether those bytes will come is unknowable, so they must not be parsed
   * as the next request.
   */
  private connectionLine(): string {
    if (this.owner.closing) this.keepAlive = false
    else if (this.head.expectContinue && !this.continueSent && this.input !== null && !this.input.complete) this.keepAlive = false
    if (!this.keepAlive) return 'Connection: close\r\n'
    return this.head.minor === 0 ? 'Connection: keep-alive\r\n' : ''
  }

  private emit(data: string | Uint8Array): void {
    this.owner.output(this, data)
  }

  /** The client went away: the runner stops, and an app reading the body learns it. */
  override abandon(): void {
    super.abandon()
    if (this.input !== null) this.input.fail(new GatewayError(400, 'the client closed the connection before sending the whole body'))
  }

  // --- InputOwner -----------------------------------------------------------

  inputFirstRead(): void {
    if (this.head.expectContinue && !this.continueSent && !this.committed && this.input !== null && !this.input.complete) {
      this.continueSent = true
      this.emit(CONTINUE)
    }
  }

  inputFull(): void {
    this.owner.pauseForInput()
  }

  inputDrained(): void {
    this.owner.resumeForInput()
  }
}

/** A `Connection` line with the `upgrade` option added. */
function upgradeConnection(line: string): string {
  return line === '' ? 'Connection: upgrade\r\n' : `Connection: upgrade, ${line.slice(12)}`
}

/** The last status found to be ASCII: apps reuse a handful of literals, so most checks are one comparison. */
let asciiStatus = '200 OK'

function isAsciiStatus(status: string): boolean {
  if (status === asciiStatus) return true
  if (!isAsciiValue(status)) return false
  asciiStatus = status
  return true
}
