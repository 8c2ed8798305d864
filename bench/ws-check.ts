/**
 * The check of the WebSocket scenario, before a peer is measured: the
 * handshake's answer goes through the scenario's `check` (101 and its
 * headers), then the socket must echo a text message, a binary one, a
 * non-ASCII text and a burst of sixteen sent without waiting (each
 * unchanged, with its type, in order), and finish the closing handshake.
 * A peer that drops, merges, reorders or retypes messages is not measured.
 * One that answers 426 (a gateway app on a server without the extension)
 * is skipped: {@link PeerUnsupported} is thrown with the reason.
 */
import { WebSocket } from 'ws'
import { PeerUnsupported } from './peer.js'
import type { Scenario } from './scenarios.js'

interface Echo {
  data: Buffer
  binary: boolean
}

function describe(value: string | Buffer): string {
  return JSON.stringify(typeof value === 'string' ? value.slice(0, 40) : `${value.length} bytes`)
}

/** The problem with a peer's WebSocket echo, or null; `wait` is how long to wait for each step's echoes (ms). */
export async function verifyWebSocket(port: number, scenario: Scenario, wait = 3000): Promise<string | null> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${scenario.path}`, { perMessageDeflate: false, handshakeTimeout: 10_000 })
  const echoes: Echo[] = []
  let wake: (() => void) | null = null
  const signal = (): void => {
    wake?.()
    wake = null
  }
  let failure: string | null = null
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on('close', (code, reason) => {
      failure ??= `closed (${code} ${reason.toString()}) before the check ended`
      signal()
      resolve({ code, reason: reason.toString() })
    })
  })
  socket.on('message', (data: Buffer, binary: boolean) => {
    echoes.push({ data, binary })
    signal()
  })
  socket.on('error', (error) => {
    failure ??= `socket error: ${error.message}`
    signal()
  })
  const opened = await new Promise<string | null | PeerUnsupported>((resolve) => {
    socket.once('upgrade', (response) => resolve(scenario.check(response.statusCode ?? 0, '', Buffer.alloc(0), response.headers)))
    socket.once('unexpected-response', (_request, response) => {
      const chunks: Buffer[] = []
      response.on('data', (c: Buffer) => chunks.push(c))
      response.on('end', () => {
        const body = Buffer.concat(chunks)
        // What the extension's spec asks of an app on a server that does not offer it: the stack cannot upgrade (yet).
        if (response.statusCode === 426) return resolve(new PeerUnsupported('answered 426 Upgrade Required: its server does not offer WebSocket upgrades (gateway.websocket) yet'))
        const problem = scenario.check(response.statusCode ?? 0, response.headers['content-type'] ?? '', body, response.headers)
        resolve(`${problem ?? `status ${response.statusCode ?? 0}`} (body ${JSON.stringify(body.toString().slice(0, 80))})`)
      })
      response.on('error', (error) => resolve(`handshake answer failed: ${error.message}`))
    })
    socket.once('error', (error) => resolve(`handshake failed: ${error.message}`))
  })
  if (opened !== null) {
    socket.terminate()
    if (opened instanceof PeerUnsupported) throw opened
    return opened
  }
  await new Promise<void>((resolve) => (socket.readyState === WebSocket.OPEN ? resolve() : socket.once('open', () => resolve())))

  /** Waits for `count` echoes (or a failure, or `wait` ms); returns them. */
  const receive = async (count: number): Promise<Echo[] | string> => {
    const deadline = Date.now() + wait
    while (echoes.length < count && failure === null && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        wake = resolve
        setTimeout(resolve, Math.max(1, deadline - Date.now())).unref()
      })
    }
    if (failure !== null) return failure
    if (echoes.length < count) return `${echoes.length} of ${count} echoes within ${wait} ms`
    return echoes.splice(0, count)
  }
  const burst = Array.from({ length: 16 }, (_, i) => `${String(i).padStart(2, '0')} ${scenario.body ?? ''}`)
  const steps: Array<Array<string | Buffer>> = [
    [scenario.body ?? ''],
    [Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff))],
    ['postern: héllo, wörld — ✓ 🚀'],
    burst,
  ]
  try {
    for (const messages of steps) {
      for (const message of messages) socket.send(message, { binary: typeof message !== 'string' })
      const got = await receive(messages.length)
      if (typeof got === 'string') return got
      for (const [i, message] of messages.entries()) {
        const echo = got[i]
        const binary = typeof message !== 'string'
        const want = binary ? message : Buffer.from(message)
        if (echo === undefined || echo.binary !== binary || !echo.data.equals(want))
          return `sent ${binary ? 'binary' : 'text'} ${describe(message)}, got ${echo === undefined ? 'nothing' : `${echo.binary ? 'binary' : 'text'} ${describe(echo.binary ? echo.data : echo.data.toString())}`}`
      }
    }
    failure = 'closing'
    socket.close(1000, 'check done')
    const timer = setTimeout(() => socket.terminate(), 5000)
    const { code } = await closed
    clearTimeout(timer)
    return code === 1000 ? null : `the closing handshake ended with ${code}, want 1000`
  } finally {
    socket.terminate()
  }
}
