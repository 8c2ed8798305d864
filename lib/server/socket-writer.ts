/**
 * A connection's output side: batches writes into as few socket writes as
 * possible and tracks when the socket's buffer is full and when it drains.
 *
 * Writes made while the connection handles one read (`gathering`), or in one
 * microtask turn, go out together as one socket write: on the server's hot
 * path that is one write per batch of requests. Nothing here allocates per
 * write beyond the batch array itself; the owner hears about the buffer
 * through two methods rather than per-write callbacks or promises.
 */
import type { Socket } from 'node:net'

/** Writes gathered beyond this many bytes are flushed at once. */
const BATCH_LIMIT = 64 * 1024
/**
 * A batch of strings and bytes up to this size is copied into one buffer:
 * one plain write costs less than the copy, where corked writes go through
 * Node's `writev` path (an array and a request per write).
 */
const COPY_LIMIT = 16 * 1024

/** What the writer tells its connection. */
export interface WriterOwner {
  /** The socket's buffer went over its high-water mark: stop reading (the client is not reading us). */
  writeBlocked(): void
  /** The buffer drained after `writeBlocked`: reading may resume. Waiters are already woken. */
  writeDrained(): void
}

export class SocketWriter {
  private readonly socket: Socket
  private readonly owner: WriterOwner

  /** Set while the connection handles one read: writes wait for the `flush()` at its end. */
  gathering = false

  private batch: Array<string | Uint8Array> = []
  private batchBytes = 0
  private flushScheduled = false
  private readonly flushBound = () => this.flush()

  private blocked = false
  /** The socket drained since the owner last asked (see `takeDrained`). */
  private drained = false
  /** Exchanges waiting for the socket to drain (or for their turn); made into promises only when waiting. */
  private waiters: Array<() => void> = []
  private closed = false

  constructor(socket: Socket, owner: WriterOwner) {
    this.socket = socket
    this.owner = owner
    socket.on('drain', () => this.onDrain())
  }

  /** The socket's buffer is over its high-water mark and has not drained yet. */
  get needDrain(): boolean {
    return this.blocked
  }

  write(data: string | Uint8Array): void {
    this.batch.push(data)
    this.batchBytes += typeof data === 'string' ? data.length : data.byteLength
    if (this.batchBytes > BATCH_LIMIT) this.flush()
    else if (!this.gathering && !this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(this.flushBound)
    }
  }

  /** Sends the batch as one socket write: strings joined, buffers corked together. */
  flush(): void {
    this.flushScheduled = false
    const batch = this.batch
    if (batch.length === 0 || this.closed) return
    const bytes = this.batchBytes
    this.batch = []
    this.batchBytes = 0
    const socket = this.socket
    if (batch.length === 1) socket.write(batch[0]!)
    else {
      let strings = true
      for (let i = 0; i < batch.length; i++) if (typeof batch[i] !== 'string') strings = false
      if (strings) socket.write(batch.join(''))
      else if (bytes <= COPY_LIMIT) socket.write(joinBatch(batch))
      else {
        socket.cork()
        for (let i = 0; i < batch.length; i++) socket.write(batch[i]!)
        socket.uncork()
      }
    }
    if (!this.blocked && socket.writableLength > socket.writableHighWaterMark) {
      this.blocked = true
      this.owner.writeBlocked()
    }
  }

  private onDrain(): void {
    this.drained = true
    if (!this.blocked) return
    this.blocked = false
    this.wake()
    this.owner.writeDrained()
  }

  /** Resolves at the next `wake()`: the caller re-checks its condition then. */
  nextWake(): Promise<void> {
    return new Promise<void>((resolve) => this.waiters.push(resolve))
  }

  /** Wakes everyone waiting in `nextWake()`. */
  wake(): void {
    const waiters = this.waiters
    if (waiters.length === 0) return
    this.waiters = []
    for (const resolve of waiters) resolve()
  }

  /** Whether the socket drained since the last call: the client is reading (for the send timeout). */
  takeDrained(): boolean {
    const drained = this.drained
    this.drained = false
    return drained
  }

  /** Bytes written but not yet taken by the kernel: our stream buffer, libuv's write queue, and the batch. */
  unsentBytes(): number {
    const handle = (this.socket as Socket & { _handle?: { writeQueueSize?: unknown } | null })._handle
    const queued = handle !== null && handle !== undefined && typeof handle.writeQueueSize === 'number' ? handle.writeQueueSize : 0
    return this.socket.writableLength + queued + this.batchBytes
  }

  /** The socket closed: nothing more is written. */
  close(): void {
    this.closed = true
  }
}

/** A batch of strings (UTF-8, as `socket.write` sends them) and bytes as one buffer. */
function joinBatch(batch: ReadonlyArray<string | Uint8Array>): Buffer {
  let total = 0
  for (let i = 0; i < batch.length; i++) {
    const part = batch[i]!
    total += typeof part === 'string' ? Buffer.byteLength(part) : part.byteLength
  }
  const out = Buffer.allocUnsafe(total)
  let offset = 0
  for (let i = 0; i < batch.length; i++) {
    const part = batch[i]!
    if (typeof part === 'string') offset += out.write(part, offset)
    else {
      out.set(part, offset)
      offset += part.byteLength
    }
  }
  return out
}
