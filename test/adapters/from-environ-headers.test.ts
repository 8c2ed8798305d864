/**
 * `environHeaders` reads an environ's `HTTP_*` keys back as field names for
 * `fromNode` and `fromFetch`, caching each conversion. Clients choose the
 * names: a flood of new long names must not be kept (the core's rule for
 * name caches, `cacheTakes`), or every server that mounts a Node or Fetch
 * app would hold megabytes of them for good.
 */
import t from 'tap'
import { runInNewContext } from 'node:vm'
import { setFlagsFromString } from 'node:v8'
import { environHeaders } from '../../lib/adapters/from-environ-headers.js'
import type { Environ } from '../../lib/gateway/spec.js'

const environWith = (fields: Record<string, string>, extra: Partial<Environ> = {}): Environ => ({ CONTENT_TYPE: '', CONTENT_LENGTH: '', ...fields, ...extra }) as unknown as Environ

t.test('field names come back lower-case with dashes, content headers last', async (t) => {
  const environ = environWith({ HTTP_USER_AGENT: 'curl', HTTP_X_FORWARDED_FOR: '10.0.0.1' }, { CONTENT_TYPE: 'text/plain', CONTENT_LENGTH: '2' })
  t.same(environHeaders(environ), [
    ['user-agent', 'curl'],
    ['x-forwarded-for', '10.0.0.1'],
    ['content-type', 'text/plain'],
    ['content-length', '2'],
  ])
  t.same(environHeaders(environ), environHeaders(environ), 'the cached conversion gives the same names')
})

t.test('a flood of new long names is converted each time, not kept', async (t) => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const NAMES = 1500
  const NAME_CHARS = 15 * 1024
  const heapAfterGc = (): number => {
    gc()
    gc()
    return process.memoryUsage().heapUsed
  }
  const before = heapAfterGc()
  for (let i = 0; i < NAMES; i++) {
    const key = `HTTP_X_${i}_`.padEnd(NAME_CHARS, 'N')
    const [[name]] = environHeaders(environWith({ [key]: 'v' })) as [[string, string]]
    if (name !== key.slice(5).toLowerCase().replace(/_/g, '-')) t.fail(`name ${i} converted wrong`)
  }
  const grownMb = (heapAfterGc() - before) / 1024 / 1024
  // Kept, each name would cost its key and its converted name: about 30 MB for a cache of 1,024.
  t.ok(grownMb < 4, `the heap grew ${grownMb.toFixed(1)} MB over ${NAMES} long names (bound 4)`)
})
