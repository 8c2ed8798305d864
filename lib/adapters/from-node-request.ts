/**
 * The request a Node listener gets from `fromNode()`: a Readable of the body,
 * read from `gateway.input` only as the listener reads (so backpressure
 * reaches the client), with IncomingMessage's fields taken from the environ.
 */
import { Readable } from 'node:stream'
import type { Environ, GatewayInput } from '../gateway/spec.js'
import { environTarget } from '../gateway/target.js'
import { environHeaders } from './from-environ-headers.js'
import { pinMethods, toError } from './from-node-emulation.js'
import type { BridgeSocket } from './from-node-socket.js'

/** An IncomingMessage stand-in over one environ. */
export class BridgeRequest extends Readable {
  method: string
  url: string
  headers: Record<string, string>
  headersDistinct: Record<string, string[]>
  rawHeaders: string[]
  trailers: Record<string, string> = {}
  trailersDistinct: Record<string, string[]> = {}
  rawTrailers: string[] = []
  httpVersion: string
  httpVersionMajor: number
  httpVersionMinor: number
  complete = false
  aborted = false
  upgrade = false
  socket: BridgeSocket
  connection: BridgeSocket
  #input: GatewayInput
  #iterator: AsyncIterator<Uint8Array> | undefined
  #reading = false

  constructor(environ: Environ, socket: BridgeSocket) {
    super()
    pinMethods(this, BridgeRequest.prototype)
    this.socket = this.connection = socket
    this.method = environ.REQUEST_METHOD
    this.url = environTarget(environ)
    const protocol = environ.SERVER_PROTOCOL
    const version = protocol === 'HTTP/1.1' ? null : /^HTTP\/(\d)\.(\d)$/.exec(protocol)
    this.httpVersionMajor = version === null ? 1 : Number(version[1])
    this.httpVersionMinor = version === null ? 1 : Number(version[2])
    this.httpVersion = version === null ? '1.1' : `${this.httpVersionMajor}.${this.httpVersionMinor}`
    this.#input = environ['gateway.input']
    const headers: Record<string, string> = {}
    const distinct: Record<string, string[]> = {}
    const raw: string[] = []
    const fields = environHeaders(environ)
    for (let i = 0; i < fields.length; i++) {
      const [name, value] = fields[i]!
      raw.push(name, value)
      headers[name] = value
      distinct[name] = [value]
    }
    // A body of unknown length came chunked: Node apps (type-is, Fastify) look for this to know a body is there.
    if (this.#input.length === null && headers['transfer-encoding'] === undefined) {
      raw.push('transfer-encoding', (headers['transfer-encoding'] = 'chunked'))
      distinct['transfer-encoding'] = ['chunked']
    }
    this.headers = headers
    this.rawHeaders = raw
    this.headersDistinct = distinct
  }

  override _read(): void {
    if (this.#reading) return
    this.#reading = true
    this.#iterator ??= this.#input[Symbol.asyncIterator]()
    this.#iterator.next().then(
      (step) => {
        this.#reading = false
        if (step.done === true) {
          this.complete = true
          for (const [name, value] of this.#input.trailers) {
            const lower = name.toLowerCase()
            this.rawTrailers.push(name, value)
            this.trailers[lower] = this.trailers[lower] === undefined ? value : `${this.trailers[lower]}, ${value}`
            ;(this.trailersDistinct[lower] ??= []).push(value)
          }
          this.push(null)
        } else this.push(step.value)
      },
      (error: unknown) => {
        this.#reading = false
        this.destroy(toError(error))
      },
    )
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.complete) void this.#iterator?.return?.()?.catch(() => {})
    callback(error)
  }

  setTimeout(): this {
    return this
  }
}
