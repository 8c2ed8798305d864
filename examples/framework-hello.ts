/**
 * The framework's hello world: text, JSON and a route parameter.
 * Serve it with `postern examples/framework-hello.ts:app`, or run this file
 * directly (`npx tsx examples/framework-hello.ts`) to listen on :8888.
 */
import { postern } from '../lib/framework/app.js'

export const app = postern()

app.get('/hello', () => 'Hello, world!')
app.get('/hello.json', () => ({ hello: 'world' }))
app.get('/users/:id', (req) => ({ id: req.params.id }))

export default app

if (import.meta.url === `file://${process.argv[1]}`) {
  const { port } = await app.listen({ port: 8888 })
  console.log(`listening on http://127.0.0.1:${port}`)
}
