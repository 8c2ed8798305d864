/**
 * CORS and compression in the framework, one line each: an API that a page
 * on another origin (a dev server on :5173, or any *.example.com site)
 * reads with cookies, its JSON and its NDJSON feed compressed with whatever
 * the client accepts (br, gzip or deflate).
 *
 * Serve it with `node bin/postern.js examples/cors-compress.ts:app`, then:
 *
 *     # the preflight a browser sends before a PUT with a JSON body
 *     curl -i -X OPTIONS http://127.0.0.1:8888/api/notes/1 \
 *       -H 'Origin: http://localhost:5173' -H 'Access-Control-Request-Method: PUT' \
 *       -H 'Access-Control-Request-Headers: content-type'
 *     # the list, compressed, with the headers the page may read
 *     curl -i --compressed -H 'Origin: http://localhost:5173' http://127.0.0.1:8888/api/notes
 *     # a stream, compressed as it is produced
 *     curl -N --compressed http://127.0.0.1:8888/api/feed
 */
import { compression, cors, postern } from '../lib/index.js'
import { isCompressible } from '../plugins/compress.js'

export const app = postern()

app.use(
  cors({
    origin: ['http://localhost:5173', /^https:\/\/[a-z0-9-]+\.example\.com$/],
    credentials: true,
    exposedHeaders: ['X-Total-Count'],
    maxAge: 600,
  }),
)
// mime-db does not know NDJSON; the filter adds it to what is worth compressing.
app.use(compression({ filter: (type) => isCompressible(type) || type.startsWith('application/x-ndjson') }))

interface Note {
  id: number
  title: string
  body: string
}

const notes = new Map<number, Note>(
  Array.from({ length: 50 }, (_, i) => [i + 1, { id: i + 1, title: `Note ${i + 1}`, body: `The text of note ${i + 1}, long enough to be worth compressing.` }]),
)

app.get('/api/notes', (_req, reply) => {
  reply.header('x-total-count', String(notes.size))
  return [...notes.values()]
})

const noteInput = {
  type: 'object',
  required: ['title', 'body'],
  properties: { title: { type: 'string', minLength: 1 }, body: { type: 'string' } },
  additionalProperties: false,
} as const

// A cross-origin PUT with a JSON body: the browser asks first (the preflight, answered by cors()).
app.put('/api/notes/:id', { schema: { body: noteInput } }, (req, reply) => {
  const id = Number(req.params.id)
  if (!notes.has(id)) return reply.status(404).send({ error: `no note ${id}` })
  const note = { id, ...req.body }
  notes.set(id, note)
  return note
})

// One JSON line per note, a little at a time: compression flushes each as it comes.
app.get('/api/feed', (_req, reply) => {
  reply.type('application/x-ndjson')
  return (async function* () {
    for (const note of notes.values()) {
      yield `${JSON.stringify(note)}\n`
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
})

export default app
