/**
 * `postern file:export` loads an app from any kind of module a user writes:
 * TypeScript or JavaScript, ES module or CommonJS, in a folder whose
 * package.json says `"type": "module"` or not; a missing file or export is
 * one line that says what is there. (import-errors.test.ts has the
 * mistakes inside the files.)
 *
 * Each folder gets its own package.json, so what is above the temp folder
 * (a stray /tmp/package.json with "type": "module", say) does not decide
 * the module kind.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { mapLimit, runPostern, startPostern, tempDir } from '../helpers/cli.js'

const SIGNATURE = '(_environ: Record<string, unknown>, startResponse: (status: string, headers: [string, string][]) => void)'
const answer = (label: string) => `{ startResponse('200 OK', [['Content-Type', 'text/plain']]); return [${JSON.stringify(label)}] }`

/** Writes `files` (path → source) under a fresh temp folder: `plain/` is CommonJS, `esm/` is "type": "module". */
function project(t: Parameters<typeof tempDir>[0], files: Record<string, string>): string {
  const dir = tempDir(t, 'postern-load-')
  mkdirSync(join(dir, 'plain'))
  mkdirSync(join(dir, 'esm'))
  writeFileSync(join(dir, 'plain', 'package.json'), '{}\n')
  writeFileSync(join(dir, 'esm', 'package.json'), '{ "type": "module" }\n')
  for (const [path, source] of Object.entries(files)) writeFileSync(join(dir, path), source)
  return dir
}

/** Serves `target` from `dir`, asks for `/`, stops; resolves the body and the exit code. */
async function serveOnce(t: Parameters<typeof tempDir>[0], dir: string, target: string): Promise<{ body: string; code: number | null; output: string }> {
  const p = startPostern(t, [target, '--port', '0'], dir)
  const url = (await p.waitFor(/serving .* on (\S+)/))[1]!
  const body = await (await fetch(`${url}/`)).text()
  const { code } = await p.stop()
  return { body, code, output: p.output() }
}

t.test('every kind of module loads, whatever its folder says', async (t) => {
  const dir = project(t, {
    // Defect 7: ES module syntax in a .ts file of a folder without "type": "module".
    'plain/a.ts': `export const app = ${SIGNATURE} => ${answer('ts, esm syntax, commonjs folder')}\n`,
    'plain/d.ts': `const app = ${SIGNATURE} => ${answer('ts default export')}\nexport default app\nexport const other = 1\n`,
    'plain/uses.ts': `import { helper } from './helper'\nexport const app = helper\n`,
    'plain/helper.ts': `export const helper = ${SIGNATURE} => ${answer('ts importing ts')}\n`,
    'plain/fetch.ts': `export default { fetch: (request: Request) => new Response('fetch handler, default export ' + new URL(request.url).pathname) }\n`,
    'plain/c.cts': `module.exports.app = ${SIGNATURE} => ${answer('cts, exports.app')}\n`,
    'plain/f.cts': `module.exports = ${SIGNATURE} => ${answer('cts, module.exports = app')}\n`,
    'plain/m.mts': `export const app = ${SIGNATURE} => ${answer('mts')}\n`,
    'plain/j.js': `module.exports = { app: (_environ, startResponse) => ${answer('js, commonjs')} }\n`,
    'plain/k.cjs': `exports.app = (_environ, startResponse) => ${answer('cjs')}\n`,
    'plain/h.js': `module.exports = { fetch: async () => new Response('commonjs fetch handler') }\n`,
    'esm/e.js': `export const app = (_environ, startResponse) => ${answer('js, esm folder')}\n`,
    'esm/e.ts': `export const app = ${SIGNATURE} => ${answer('ts, esm folder')}\n`,
  })
  const cases: Array<[string, string]> = [
    ['plain/a.ts:app', 'ts, esm syntax, commonjs folder'],
    ['plain/d.ts', 'ts default export'],
    ['plain/uses.ts:app', 'ts importing ts'],
    ['plain/fetch.ts', 'fetch handler, default export /'],
    ['plain/c.cts:app', 'cts, exports.app'],
    ['plain/f.cts', 'cts, module.exports = app'],
    ['plain/m.mts:app', 'mts'],
    ['plain/j.js:app', 'js, commonjs'],
    ['plain/k.cjs:app', 'cjs'],
    ['plain/h.js', 'commonjs fetch handler'],
    ['esm/e.js:app', 'js, esm folder'],
    ['esm/e.ts:app', 'ts, esm folder'],
  ]
  const results = await mapLimit(cases, 3, ([target]) => serveOnce(t, dir, target))
  cases.forEach(([target, body], i) => {
    const result = results[i]!
    t.equal(result.body, body, `${target} serves`)
    t.equal(result.code, 0, `${target}: exit 0 after SIGTERM`)
  })
})

t.test('a missing file, a missing export: one line naming what is there, exit 2', async (t) => {
  const dir = project(t, {
    'plain/a.ts': `export const app = ${SIGNATURE} => ${answer('a')}\nexport const other = 1\n`,
    'plain/j.js': `module.exports = { app: () => [], helper: 1 }\n`,
    'plain/d.ts': `export default 1\nexport const other = 1\n`,
  })
  const missing = await runPostern(['plain/nope.ts:app'], dir)
  t.equal(missing.code, 2)
  t.equal(missing.stderr, `postern: cannot find module "plain/nope.ts" (looked for ${join(dir, 'plain', 'nope.ts')})\n`)

  const ts = await runPostern(['plain/a.ts:nope'], dir)
  t.equal(ts.code, 2)
  t.equal(ts.stderr, 'postern: plain/a.ts has no export "nope" (it exports: app, other)\n', "a TypeScript module's own exports, not its CommonJS wrapper's")
  const cjs = await runPostern(['plain/j.js:nope'], dir)
  t.equal(cjs.stderr, 'postern: plain/j.js has no export "nope" (it exports: app, helper)\n', "a CommonJS module's exports are module.exports' properties")
  const withDefault = await runPostern(['plain/d.ts:nope'], dir)
  t.equal(withDefault.stderr, 'postern: plain/d.ts has no export "nope" (it exports: default, other)\n')
})
