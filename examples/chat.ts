/**
 * A chat: the page at `/` (rendered with `html`, its script and stylesheet
 * served as static files) opens a WebSocket to `/chat/:room`, and the server
 * sends every message to every socket in that room. Each room is a Set of
 * sockets; a socket leaves it when it closes, which ends its handler's loop.
 *
 * Serve it with `postern examples/chat.ts:app`, open
 * http://localhost:8888/?room=lobby in two windows and talk.
 */
import { html, postern, type GatewayWebSocket } from '../lib/index.js'
import { serveStatic } from '../plugins/static.js'

export const app = postern()

app.use(serveStatic(new URL('./chat/', import.meta.url), { prefix: '/assets' }))

/** A room name: a few letters, digits, `-` or `_` (it is part of the socket's URL). */
const room = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$' } as const

app.get('/', { schema: { querystring: { type: 'object', properties: { room: { ...room, default: 'lobby' } } } } }, (req) => {
  return html`<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>postern chat: ${req.query.room}</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/assets/style.css">
  <script type="module" src="/assets/page.js"></script>
</head>
<body data-room="${req.query.room}">
  <h1>#${req.query.room}</h1>
  <p id="status">connecting…</p>
  <ul id="messages"></ul>
  <form id="send">
    <input id="name" value="guest" maxlength="32" aria-label="Your name">
    <input id="text" autocomplete="off" maxlength="500" placeholder="Say something" aria-label="Message" autofocus>
    <button>Send</button>
  </form>
</body>
</html>`
})

/** The open sockets of each room. */
const rooms = new Map<string, Set<GatewayWebSocket>>()

/** What a client may hold unsent before it is dropped: one that does not read must not grow the server's memory. */
const MAX_BUFFERED = 1024 * 1024

app.ws('/chat/:room', { schema: { params: { type: 'object', properties: { room } } } }, async (socket, req) => {
  const name = req.params.room
  const peers = rooms.get(name) ?? new Set()
  rooms.set(name, peers)
  peers.add(socket)
  try {
    // Ends when the socket closes; the handler returning closes it too.
    for await (const data of socket) {
      const message = parse(data)
      if (message === null) continue
      const text = JSON.stringify(message)
      for (const peer of peers) {
        if (peer.bufferedAmount > MAX_BUFFERED) peer.close(1008, 'too slow')
        // Not awaited: one slow peer must not hold up the room. A peer that closed meanwhile rejects; its own handler removes it.
        else peer.send(text).catch(() => {})
      }
    }
  } finally {
    peers.delete(socket)
    if (peers.size === 0) rooms.delete(name)
  }
})

/** A message as the page sends it, `{ name, text }` in JSON; anything else is ignored. */
function parse(data: string | Uint8Array): { name: string; text: string } | null {
  if (typeof data !== 'string') return null
  try {
    const { name, text } = JSON.parse(data) as { name?: unknown; text?: unknown }
    if (typeof name !== 'string' || typeof text !== 'string' || text.trim() === '') return null
    return { name: name.slice(0, 32) || 'guest', text: text.slice(0, 500) }
  } catch {
    return null
  }
}

export default app
