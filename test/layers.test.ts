/**
 * The layers of postern, as the README's layout section draws them, with
 * arrows pointing down only: this test reads every source file's imports and
 * fails on an arrow that points up or sideways.
 *
 *   lib/cli/, lib/index.ts   the command line and the package entry (top)
 *   lib/framework/           app, request, reply: on the middle layer (app.listen() starts the server)
 *   lib/server/, lib/adapters/, plugins/   each on the gateway core only
 *   lib/gateway/             the gateway core: imports nothing else of postern
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** Layer of a source path → the layers it may import. */
const ALLOWED: Record<string, readonly string[]> = {
  'lib/gateway': ['lib/gateway'],
  'lib/server': ['lib/server', 'lib/gateway'],
  'lib/adapters': ['lib/adapters', 'lib/gateway'],
  plugins: ['plugins', 'lib/gateway'],
  'lib/framework': ['lib/framework', 'lib/server', 'lib/adapters', 'plugins', 'lib/gateway'],
  'lib/cli': ['lib/cli', 'lib/framework', 'lib/server', 'lib/adapters', 'plugins', 'lib/gateway'],
  lib: ['lib/framework', 'lib/server', 'lib/adapters', 'plugins', 'lib/gateway'],
}

function layerOf(path: string): string {
  if (path.startsWith('plugins/')) return 'plugins'
  const parts = path.split('/')
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : 'lib'
}

function sources(dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`
    if (entry.isDirectory()) out.push(...sources(path))
    else if (entry.name.endsWith('.ts')) out.push(path)
  }
  return out
}

const files = [...sources('lib'), ...sources('plugins')]

t.test('every source file is in a known layer', async (t) => {
  for (const file of files) t.ok(ALLOWED[layerOf(file)] !== undefined, `${file} is in layer ${layerOf(file)}`)
})

t.test('imports point down only', async (t) => {
  let imports = 0
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8')
    for (const match of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = relative(ROOT, resolve(dirname(join(ROOT, file)), match[1]!))
      const from = layerOf(file)
      const to = layerOf(target)
      imports++
      t.ok(ALLOWED[from]!.includes(to), `${file} → ${target} (${from} may import ${ALLOWED[from]!.join(', ')})`)
    }
  }
  t.ok(imports > 100, `${imports} imports checked`)
})

t.test('the gateway core runs anywhere: no Node built-ins outside the default error stream', async (t) => {
  // toFetch runs on Bun and Deno: the core it imports must not need node: modules.
  for (const file of files.filter((f) => f.startsWith('lib/gateway/'))) {
    const text = readFileSync(join(ROOT, file), 'utf8')
    const nodeImports = [...text.matchAll(/from\s+['"](node:[^'"]+)['"]/g)].map((m) => m[1])
    if (file === 'lib/gateway/validate.ts' || file.startsWith('lib/gateway/validate-')) continue // validate runs under Node's servers
    t.same(nodeImports, [], `${file} imports no node: module`)
  }
})
