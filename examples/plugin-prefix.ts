/**
 * A plugin mounted under a prefix: its routes, hook and decorator stay in
 * its own scope. `GET /api/users/1` needs `x-api-key: secret`; `GET /` does
 * not. Serve it with `postern examples/plugin-prefix.ts:app`.
 */
import { postern, type App } from '../lib/framework/app.js'

interface UsersOptions {
  users: Record<string, { name: string }>
}

/** Users API: a plugin is a function of a scope and its options. */
async function usersApi(api: App, options: UsersOptions) {
  api.addHook('onRequest', (req, reply) => {
    if (req.header('x-api-key') !== 'secret') reply.status(401).send({ error: 'missing or wrong x-api-key' })
  })
  api.get('/users', () => Object.keys(options.users))
  api.get('/users/:id', (req, reply) => {
    const user = options.users[req.params.id]
    if (user === undefined) {
      reply.status(404)
      return { error: `no user ${req.params.id}` }
    }
    return user
  })
}

export const app = postern()
app.get('/', () => 'public home page')
await app.register(usersApi, { prefix: '/api', users: { '1': { name: 'Ada' }, '2': { name: 'Linus' } } })

export default app
