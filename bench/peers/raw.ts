/**
 * The raw socket ceiling: a node:net server that answers every `\r\n\r\n` it
 * sees with a precomputed response. No parsing, no routing, no allocation
 * per request: what one core can push through Node's sockets, the bound no
 * HTTP server in Node can beat. Request bodies are ignored (they hold no
 * blank line); pipelined requests get their answers in one write.
 */
import net from 'node:net'
import { ECHO_BODY, JSON_BODY, STREAM_CHUNK, STREAM_CHUNKS, TEXT_BODY, USER_FIELDS, USER_ID, userReply, type Route } from '../scenarios.js'
import type { Serve } from '../peer.js'

const DATE = new Date().toUTCString()

function response(type: string, body: Buffer): Buffer {
  const head = `HTTP/1.1 200 OK\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\nDate: ${DATE}\r\nConnection: keep-alive\r\n\r\n`
  return Buffer.concat([Buffer.from(head, 'latin1'), body])
}

function chunkedStream(): Buffer {
  const head = `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nDate: ${DATE}\r\nConnection: keep-alive\r\n\r\n`
  const parts: Buffer[] = [Buffer.from(head, 'latin1')]
  for (let i = 0; i < STREAM_CHUNKS; i++) parts.push(Buffer.from(`${STREAM_CHUNK.length.toString(16)}\r\n`), STREAM_CHUNK, Buffer.from('\r\n'))
  parts.push(Buffer.from('0\r\n\r\n'))
  return Buffer.concat(parts)
}

function responseFor(route: Route): Buffer {
  const json = 'application/json; charset=utf-8'
  switch (route) {
    case 'text':
      return response('text/plain; charset=utf-8', Buffer.from(TEXT_BODY))
    case 'json':
      return response(json, Buffer.from(JSON.stringify(JSON_BODY)))
    case 'user':
      return response(json, Buffer.from(JSON.stringify(userReply(USER_ID, USER_FIELDS))))
    case 'echo':
      return response(json, Buffer.from(ECHO_BODY))
    case 'stream':
      return chunkedStream()
    case 'plugins':
      // One precomputed answer cannot tell a valid signed cookie from a forged one, which scenario 8 checks.
      throw new Error('the raw socket ceiling does not serve scenario 8: it cannot check a signed cookie')
    case 'ws':
      throw new Error('the raw socket ceiling does not serve the WebSocket scenario (ws on node:http is its reference)')
  }
}

const END = Buffer.from('\r\n\r\n')

/** How many bytes at the end of `chunk` start a `\r\n\r\n` (0–3). */
function partialEnd(chunk: Buffer): number {
  const n = chunk.length
  if (n >= 3 && chunk[n - 3] === 13 && chunk[n - 2] === 10 && chunk[n - 1] === 13) return 3
  if (n >= 2 && chunk[n - 2] === 13 && chunk[n - 1] === 10) return 2
  if (n >= 1 && chunk[n - 1] === 13) return 1
  return 0
}

export const serve: Serve = async (route, options) => {
  const one = responseFor(route)
  const many: Buffer[] = [Buffer.alloc(0), one]
  const answers = (count: number): Buffer => (many[count] ??= Buffer.concat(Array.from({ length: count }, () => one)))

  const server = net.createServer({ noDelay: true }, (socket) => {
    let carry = 0
    socket.on('data', (chunk: Buffer) => {
      let count = 0
      let from = 0
      if (carry > 0 && chunk.length >= 4 - carry && chunk.compare(END, carry, 4, 0, 4 - carry) === 0) {
        count++
        from = 4 - carry
      }
      for (let at = chunk.indexOf(END, from); at !== -1; at = chunk.indexOf(END, at + 4)) {
        count++
        from = at + 4
      }
      carry = from === chunk.length ? 0 : partialEnd(chunk)
      if (count > 0) socket.write(answers(count))
    })
    socket.on('error', () => socket.destroy())
    if (options.keepAliveTimeout !== undefined) socket.setTimeout(options.keepAliveTimeout, () => socket.destroy())
  })
  await new Promise<void>((resolve) => server.listen(options.port, options.host, resolve))
  const address = server.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : options.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
