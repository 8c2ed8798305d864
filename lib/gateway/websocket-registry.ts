/**
 * The open WebSockets of one server or adapter, and its shutdown
 * [ws-shutdown], written once so every server closes alike: `closeAll()`
 * closes each open socket with 1001 and, from then on, a socket the app
 * accepts (one that was awaiting before `accept()` when the server began
 * closing) is closed with 1001 at once rather than left open past the
 * shutdown.
 */
import type { WebSocketClose } from './websocket.js'

/** What the registry needs of an accepted socket (TransportWebSocket has it). */
export interface RegisteredWebSocket {
  readonly closed: Promise<WebSocketClose>
  closeFromServer(code: number, reason: string): void
}

const SHUTDOWN_REASON = 'server shutting down'

export class WebSocketRegistry<S extends RegisteredWebSocket = RegisteredWebSocket> {
  private readonly open = new Set<S>()
  private closing = false

  /**
   * Registers a socket the app accepted (after its 101 went out). Returns
   * false when the registry is closing: the socket was closed with 1001
   * and is not tracked. `onClosed` runs once the socket is closed and gone
   * from the registry.
   */
  add(socket: S, onClosed?: () => void): boolean {
    if (this.closing) {
      socket.closeFromServer(1001, SHUTDOWN_REASON)
      return false
    }
    this.open.add(socket)
    void socket.closed.then(() => {
      this.open.delete(socket)
      onClosed?.()
    })
    return true
  }

  /** The sockets open now. */
  get size(): number {
    return this.open.size
  }

  /** Closes every open socket with 1001 and refuses those added from now on; resolves once all are closed. */
  closeAll(): Promise<void> {
    this.closing = true
    const all = [...this.open]
    for (const socket of all) socket.closeFromServer(1001, SHUTDOWN_REASON)
    return Promise.all(all.map((socket) => socket.closed)).then(() => {})
  }
}
