/**
 * Serialising response heads. Heads are built as strings: when every header
 * value is ASCII (the common case) the head and a string body go to the
 * socket as one string in one write; a head with obs-text values is encoded
 * as Latin-1 on its own.
 */
import type { Headers } from '../gateway/spec.js'
import { STATUS_TEXT } from '../gateway/headers.js'
import type { HeaderFacts } from '../gateway/rules.js'
import { dateLine } from './date.js'

/**
 * The response head: status line, the app's headers (checked by the runner),
 * Date and Server unless the app set them, the framing and connection lines.
 */
export function renderHead(status: string, headers: Headers, facts: HeaderFacts, serverLine: string, framing: string, connection: string): string {
  let lines = ''
  for (let i = 0; i < headers.length; i++) {
    const header = headers[i]!
    lines += `${header[0]}: ${header[1]}\r\n`
  }
  return `HTTP/1.1 ${status}\r\n${lines}${facts.hasDate ? '' : dateLine()}${facts.hasServer ? '' : serverLine}${framing}${connection}\r\n`
}

/**
 * A complete response the server makes itself (errors, timeouts): plain text
 * saying what was wrong, with the given `Connection` line.
 */
export function simpleResponse(code: number, message: string, serverLine: string, connection: string, head = false): string {
  const body = `${message}\n`
  return (
    `HTTP/1.1 ${code} ${STATUS_TEXT[code] ?? ''}\r\n` +
    dateLine() +
    serverLine +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    connection +
    '\r\n' +
    (head ? '' : body)
  )
}
