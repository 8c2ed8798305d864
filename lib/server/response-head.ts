/**
 * Serialising response heads. Heads are built as strings: when every header
 * value is ASCII (the common case) the head and a string body go to the
 * socket as one string in one write; a head with obs-text values is encoded
 * as Latin-1 on its own.
 */
import { STATUS_TEXT, checkHeader, isAsciiValue } from '../gateway/headers.js'
import { dateLine } from './date.js'

/** What a header name means to the server, decided once per name length. */
export const H_PLAIN = 0
export const H_CONTENT_LENGTH = 1
export const H_HOP_BY_HOP = 2
export const H_DATE = 3
export const H_SERVER = 4

/** Classifies a response header name without lower-casing most names. */
export function headerKind(name: string): number {
  switch (name.length) {
    case 2:
      return name.toLowerCase() === 'te' ? H_HOP_BY_HOP : H_PLAIN
    case 4:
      return name.toLowerCase() === 'date' ? H_DATE : H_PLAIN
    case 6:
      return name.toLowerCase() === 'server' ? H_SERVER : H_PLAIN
    case 7: {
      const lower = name.toLowerCase()
      return lower === 'trailer' || lower === 'upgrade' ? H_HOP_BY_HOP : H_PLAIN
    }
    case 10: {
      const lower = name.toLowerCase()
      return lower === 'connection' || lower === 'keep-alive' ? H_HOP_BY_HOP : H_PLAIN
    }
    case 14:
      return name.toLowerCase() === 'content-length' ? H_CONTENT_LENGTH : H_PLAIN
    case 16:
      return name.toLowerCase() === 'proxy-connection' ? H_HOP_BY_HOP : H_PLAIN
    case 17:
      return name.toLowerCase() === 'transfer-encoding' ? H_HOP_BY_HOP : H_PLAIN
    default:
      return H_PLAIN
  }
}

/** What the app's headers say, once checked. */
export interface CheckedHeaders {
  /** Content-Length set by the app, or -1. */
  declaredLength: number
  hasDate: boolean
  hasServer: boolean
  /** Whether every value is ASCII. */
  ascii: boolean
  /** The header lines, `Name: value\r\n` each, ready to append. */
  lines: string
}

/**
 * Checks an app's headers [header-form] [hop-by-hop] and renders them.
 * Throws a TypeError that names the rule, so an app that tries to inject a
 * header gets an exception (and the client a 500), never a split response.
 */
export function checkAndRenderHeaders(headers: unknown): CheckedHeaders {
  if (!Array.isArray(headers)) throw new TypeError('[header-form] headers must be an array of [name, value] pairs')
  let declaredLength = -1
  let hasDate = false
  let hasServer = false
  let ascii = true
  let lines = ''
  for (let i = 0; i < headers.length; i++) {
    const pair: unknown = headers[i]
    if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError(`[header-form] header ${i} must be a [name, value] pair`)
    const name: unknown = pair[0]
    const value: unknown = pair[1]
    const problem = checkHeader(name, value)
    if (problem !== null) throw new TypeError(`[header-form] ${problem}`)
    const n = name as string
    const v = value as string
    switch (headerKind(n)) {
      case H_HOP_BY_HOP:
        throw new TypeError(`[hop-by-hop] header ${JSON.stringify(n)} is hop-by-hop: framing and connection headers are the server's`)
      case H_CONTENT_LENGTH: {
        if (!/^[0-9]{1,15}$/.test(v)) throw new TypeError(`[header-form] Content-Length must be digits, got ${JSON.stringify(v)}`)
        const length = Number(v)
        if (declaredLength !== -1 && declaredLength !== length) throw new TypeError('[header-form] differing Content-Length headers')
        if (declaredLength !== -1) continue
        declaredLength = length
        break
      }
      case H_DATE:
        hasDate = true
        break
      case H_SERVER:
        hasServer = true
        break
    }
    if (ascii && !isAsciiValue(v)) ascii = false
    lines += n + ': ' + v + '\r\n'
  }
  return { declaredLength, hasDate, hasServer, ascii, lines }
}

/** The response head: status line, app headers, Date, Server, framing and connection lines. */
export function renderHead(status: string, checked: CheckedHeaders, serverLine: string, framing: string, connection: string): string {
  return (
    'HTTP/1.1 ' + status + '\r\n' + checked.lines + (checked.hasDate ? '' : dateLine()) + (checked.hasServer ? '' : serverLine) + framing + connection + '\r\n'
  )
}

/**
 * A complete response the server makes itself (errors, timeouts): plain text
 * saying what was wrong, with the given `Connection` line.
 */
export function simpleResponse(code: number, message: string, serverLine: string, connection: string, head = false): string {
  const body = message + '\n'
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
