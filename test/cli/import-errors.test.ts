/**
 * What `postern file:export` says when the app's files are wrong: a syntax
 * error is one line with file:line:column, whatever the module kind and
 * whichever file of the app has it; an import that cannot be found names
 * the importer; an exception the module throws while it runs keeps its
 * stack, pointing at the user's file (not at a loader's internals).
 * (import-module.test.ts has the modules that load.)
 *
 * Each folder gets its own package.json, so what is above the temp folder
 * (a stray /tmp/package.json with "type": "module", say) does not decide
 * the module kind.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { mapLimit, runPostern, tempDir } from '../helpers/cli.js'

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

t.test('a syntax error is one line with file:line:column, whatever the module kind', async (t) => {
  const dir = project(t, {
    // Defect 7: this gave ERR_REQUIRE_CYCLE_MODULE "in a cycle".
    'plain/bad.ts': 'export const app = (environ: any => {\n',
    'plain/bad.mts': 'const x: number = 1\nexport const app = (environ: any => 1\n',
    'plain/bad.cts': 'module.exports.app = (environ: any => 1\n',
    'plain/main.ts': `import { helper } from './broken'\nexport const app = helper\n`,
    'plain/broken.ts': 'export const helper = 1\nexport const oops = [1, 2\n',
    'plain/bad.js': 'module.exports.app = function (environ) {\n  return [1,\n}\n',
    'esm/bad.mjs': 'export const app = (environ) => {\n  return [1,\n}\n',
    'esm/twice.js': 'export const app = 1\nexport const app = 2\n',
    'esm/main.js': `import { app } from './missing-name.js'\nexport { app }\n`,
    'esm/missing-name.js': 'export const other = 1\n',
  })
  const cases: Array<[string, string]> = [
    ['plain/bad.ts:app', 'plain/bad.ts:1:34: syntax error: Expected ")" but found "=>"'],
    ['plain/bad.mts:app', 'plain/bad.mts:2:34: syntax error: Expected ")" but found "=>"'],
    ['plain/bad.cts:app', 'plain/bad.cts:1:36: syntax error: Expected ")" but found "=>"'],
    ['plain/main.ts:app', 'plain/broken.ts:3:1: syntax error: Expected "]" but found end of file'],
    ['plain/bad.js:app', "plain/bad.js:3:1: syntax error: Unexpected token '}'"],
    ['esm/bad.mjs:app', "esm/bad.mjs:3:1: syntax error: Unexpected token '}'"],
    ['esm/twice.js:app', "esm/twice.js:2:14: syntax error: Identifier 'app' has already been declared"],
    ['esm/main.js:app', "esm/main.js:1:10: The requested module './missing-name.js' does not provide an export named 'app'"],
  ]
  const results = await mapLimit(cases, 3, ([target]) => runPostern([target, '--port', '0'], dir))
  cases.forEach(([target, line], i) => {
    const r = results[i]!
    t.equal(r.code, 2, `${target}: exit 2`)
    t.equal(r.stderr, `postern: ${line}\n`, `${target}: one line`)
  })
})

t.test('top-level await in a CommonJS .ts file: says why, and what to do', async (t) => {
  const dir = project(t, { 'plain/tla.ts': `await Promise.resolve()\nexport const app = ${SIGNATURE} => ${answer('tla')}\n` })
  const r = await runPostern(['plain/tla.ts:app'], dir)
  t.equal(r.code, 2)
  t.equal(r.stderr.split('\n').length, 2, 'one line')
  t.match(
    r.stderr,
    /^postern: plain\/tla\.ts:1:1: top-level await needs an ES module: this file is CommonJS \(no "type": "module" in its package\.json\); rename it \.mts or add "type": "module"\n$/,
  )
})

t.test('an import that cannot be found is one line naming it and the importer', async (t) => {
  const dir = project(t, {
    'plain/imp.ts': `import { nope } from './missing-dep'\nexport const app = nope\n`,
    'esm/imp.js': `import { nope } from './missing-dep.js'\nexport const app = nope\n`,
  })
  const cjs = await runPostern(['plain/imp.ts:app'], dir)
  t.equal(cjs.code, 2)
  t.equal(cjs.stderr, `postern: cannot load plain/imp.ts: cannot find module './missing-dep' (imported by ${join(dir, 'plain', 'imp.ts')})\n`)
  const esm = await runPostern(['esm/imp.js:app'], dir)
  t.equal(esm.code, 2)
  t.equal(esm.stderr, `postern: cannot load esm/imp.js: cannot find module '${join(dir, 'esm', 'missing-dep.js')}' (imported by ${join(dir, 'esm', 'imp.js')})\n`)
})

t.test("an exception the module throws keeps its stack, pointing at the user's file", async (t) => {
  const dir = project(t, {
    'plain/throws.ts': `export const x: number = 1\nthrow new Error('kaboom while loading')\n`,
    'plain/throws.cts': `const x: number = 1\nthrow new Error('kaboom while loading')\n`,
    'esm/throws.ts': `export const x: number = 1\nthrow new Error('kaboom while loading')\n`,
  })
  for (const file of ['plain/throws.ts', 'plain/throws.cts', 'esm/throws.ts']) {
    const r = await runPostern([`${file}:app`], dir)
    t.equal(r.code, 2, `${file}: exit 2`)
    t.match(r.stderr, new RegExp(`^postern: failed to load ${file.replace('.', '\\.')}: Error: kaboom while loading\\n {4}at `), `${file}: the error, then its stack`)
    t.match(r.stderr, `${join(dir, file)}:2:7`, `${file}: the stack points at the throw`)
    t.notMatch(r.stderr, 'data:text/javascript', `${file}: no loader internals in the stack`)
  }
})
