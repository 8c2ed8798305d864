/**
 * The connection as a Node listener sees it through `req.socket` and
 * `res.socket`: addresses and TLS from the environ, a `destroy()` that
 * aborts the response, and a `close` event when the connection is gone
 * (what on-finished and Fastify wait for).
 */
import { EventEmitter } from 'node:events'
import type { Environ } from '../gateway/spec.js'

/** The connection of one request handed to a Node listener by `fromNode()`. */
export class BridgeSocket extends EventEmitter {
  remoteAddress: string
  remotePort: number | undefined
  remoteFamily: string
  localAddress: string
  localPort: number | undefined
  encrypted: true | undefined
  readable = true
  writable = true
  destroyed = false
  /** The response on this connection, which `destroy()` aborts; set by the response. */
  response: { destroy(error?: Error): unknown } | null = null

  constructor(environ: Environ) {
    super()
    this.remoteAddress = environ.REMOTE_ADDR
    this.remotePort = environ.REMOTE_PORT === '' ? undefined : Number(environ.REMOTE_PORT)
    this.remoteFamily = environ.REMOTE_ADDR.includes(':') ? 'IPv6' : 'IPv4'
    this.localAddress = environ.SERVER_NAME
    this.localPort = environ.SERVER_PORT === '' ? undefined : Number(environ.SERVER_PORT)
    this.encrypted = environ['gateway.url_scheme'] === 'https' ? true : undefined
  }
  address(): { address: string; port: number | undefined; family: string } {
    return { address: this.localAddress, port: this.localPort, family: this.localAddress.includes(':') ? 'IPv6' : 'IPv4' }
  }
  destroy(error?: Error): this {
    if (!this.destroyed) this.response?.destroy(error)
    return this
  }
  end(): this {
    return this.destroy()
  }
  /** Marks the connection gone and tells listeners (on-finished, Fastify). */
  gone(): void {
    if (this.destroyed) return
    this.destroyed = true
    this.readable = false
    this.writable = false
    this.emit('close', false)
  }
  setTimeout(): this {
    return this
  }
  setNoDelay(): this {
    return this
  }
  setKeepAlive(): this {
    return this
  }
  ref(): this {
    return this
  }
  unref(): this {
    return this
  }
}
