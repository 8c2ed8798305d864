/**
 * Imports the module an app lives in, whatever its kind: TypeScript or
 * JavaScript, ES module or CommonJS, as `tsx app.ts` runs it, with tsx's ESM
 * and CommonJS hooks both registered. (With the ESM hook alone, a `.ts` file
 * in a folder without `"type": "module"` goes to Node's CommonJS loader,
 * which cannot compile it: ERR_REQUIRE_CYCLE_MODULE. tsx's `tsImport` loads
 * both kinds too, but runs CommonJS code from `data:` URLs, so the stack of
 * an app that throws while it loads would point at no file.)
 *
 * A failure to load becomes one line a user can act on: a syntax error with
 * file:line:column, an import that cannot be found with who imports it. An
 * exception the module throws while it runs is the app's own bug: its stack
 * is kept.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { basename, dirname, extname, isAbsolute, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { UsageError, detectInterface } from './load-app.js'

/** A mistake in the app's files (syntax, a missing file or import): one line, and no retry can fix it. */
export class LoadError extends UsageError {}

/** The app's own code threw while it was imported: a crash, not a typo, so the stack is kept and a supervisor retries. */
export class ImportFailure extends UsageError {}

/** Set by whoever registered tsx's hooks for the whole process (bin/postern.js does before it loads the CLI). */
const REGISTERED = Symbol.for('postern.tsx-hooks')

/** Registers tsx's ESM and CommonJS hooks, once per process. */
async function registerLoader(): Promise<void> {
  const flags = globalThis as { [REGISTERED]?: boolean }
  if (flags[REGISTERED] === true) return
  flags[REGISTERED] = true
  const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')])
  esm.register()
  cjs.register()
}

type Importer = (url: string) => Promise<Record<string, unknown>>
let importer: Importer | null = null

/**
 * `import()` called from JavaScript: from this TypeScript file, tsx would
 * resolve `app.js` to an `app.ts` next to it (TypeScript's convention for
 * imports between .ts files), serving other code than the file named.
 */
async function plainImporter(): Promise<Importer> {
  const source = 'data:text/javascript,export default (url) => import(url)'
  importer ??= ((await import(source)) as { default: Importer }).default
  return importer
}

/**
 * Imports `file` (relative to `cwd`) and returns what it exports, CommonJS
 * unwrapped: a compiled ES module's own exports, module.exports' properties,
 * or module.exports as the default when it is an app itself.
 */
export async function importModule(file: string, cwd = process.cwd()): Promise<Record<string, unknown>> {
  const path = resolve(cwd, file)
  if (!existsSync(path)) throw new UsageError(`cannot find module ${JSON.stringify(file)} (looked for ${path})`)
  await registerLoader()
  let namespace: Record<string, unknown>
  try {
    namespace = await (await plainImporter())(pathToFileURL(path).href)
  } catch (error) {
    throw explain(error, file, path, cwd)
  }
  return exportsOf(namespace, isCommonJs(path))
}

/** What a module exports, with CommonJS interop undone (see {@link importModule}). */
export function exportsOf(namespace: Record<string, unknown>, commonJs: boolean): Record<string, unknown> {
  const main = namespace['module.exports'] ?? namespace['default']
  const objectLike = main !== null && (typeof main === 'object' || typeof main === 'function')
  // An ES module compiled to CommonJS (a .ts file outside "type": "module"): its own exports, `default` included.
  if (objectLike && (main as { __esModule?: unknown }).__esModule === true) return ownExports(main as object)
  if (!commonJs || !objectLike) return withoutKey(namespace, 'module.exports')
  // module.exports is the module's one value: an app (`module.exports = app`), or an object of named exports.
  if (detectInterface(main) !== null) return { default: main }
  return ownExports(main as object)
}

function ownExports(value: object): Record<string, unknown> {
  const exports: Record<string, unknown> = {}
  for (const key of Object.keys(value)) if (key !== '__esModule') exports[key] = (value as Record<string, unknown>)[key]
  return exports
}

function withoutKey(record: Record<string, unknown>, omit: string): Record<string, unknown> {
  const copy: Record<string, unknown> = {}
  for (const key of Object.keys(record)) if (key !== omit) copy[key] = record[key]
  return copy
}

/** Whether Node treats `path` as CommonJS: by its extension, else by the nearest package.json's "type". */
export function isCommonJs(path: string): boolean {
  const ext = extname(path)
  if (ext === '.cjs' || ext === '.cts') return true
  if (ext === '.mjs' || ext === '.mts') return false
  // Node's lookup: the nearest package.json, not looking past a node_modules folder.
  for (let dir = dirname(path); basename(dir) !== 'node_modules'; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json')
    if (existsSync(pkg)) {
      try {
        return (JSON.parse(readFileSync(pkg, 'utf8')) as { type?: unknown }).type !== 'module'
      } catch {
        return true
      }
    }
    if (dirname(dir) === dir) break
  }
  return true
}

/** Codes of Node's and tsx's loaders for a module that cannot be found or loaded: the files' mistake, not a crash. */
const CANNOT_LOAD = new Set([
  'ERR_MODULE_NOT_FOUND',
  'MODULE_NOT_FOUND',
  'ERR_UNSUPPORTED_DIR_IMPORT',
  'ERR_PACKAGE_PATH_NOT_EXPORTED',
  'ERR_PACKAGE_IMPORT_NOT_DEFINED',
  'ERR_UNKNOWN_FILE_EXTENSION',
  'ERR_UNSUPPORTED_ESM_URL_SCHEME',
  'ERR_REQUIRE_ESM',
  'ERR_REQUIRE_ASYNC_MODULE',
  'ERR_REQUIRE_CYCLE_MODULE',
  'ERR_IMPORT_ATTRIBUTE_MISSING',
])

/** esbuild's report, through tsx: `Transform failed with 1 error:\n<file>:<line>:<column>: ERROR: <text>` (column from 0). */
const TRANSFORM_ERROR = /^(.+?):(\d+):(\d+): ERROR: (.+)$/m
/** V8's header of a SyntaxError, as Node puts it in the stack: `<file or URL>:<line>\n<source line>\n<spaces>^`. */
const SYNTAX_HEADER = /^(.+):(\d+)\r?\n(.*)\r?\n( *)\^/
const TOP_LEVEL_AWAIT = 'Top-level await is currently not supported with the "cjs" output format'

/** Turns what `import()` threw into a {@link LoadError} (one line) or an {@link ImportFailure} (the stack). */
function explain(error: unknown, file: string, path: string, cwd: string): UsageError {
  const show = (p: string) => displayPath(p, cwd)
  if (!(error instanceof Error)) return new ImportFailure(`failed to load ${file}: ${String(error)}`)
  const code = (error as NodeJS.ErrnoException).code
  if (error.name === 'TransformError' || error.message.startsWith('Transform failed with')) {
    const found = TRANSFORM_ERROR.exec(error.message)
    if (found !== null) {
      const [, reported, line, column, text] = found as unknown as [string, string, string, string, string]
      const where = `${show(sourcePath(reported, path))}:${line}:${Number(column) + 1}`
      if (text === TOP_LEVEL_AWAIT) {
        return new LoadError(
          `${where}: top-level await needs an ES module: this file is CommonJS (no "type": "module" in its package.json); rename it .mts or add "type": "module"`,
        )
      }
      const more = Number(/^Transform failed with (\d+)/.exec(error.message)?.[1] ?? 1) - 1
      return new LoadError(`${where}: syntax error: ${text}${more > 0 ? ` (and ${more} more)` : ''}`)
    }
  }
  if (error.name === 'SyntaxError') {
    const located = locateSyntaxError(error.stack ?? '') ?? (isJavaScript(path) ? checkSyntax(path) : null)
    const message = error.message.split('\n')[0]!
    const label = message.startsWith('The requested module') ? '' : 'syntax error: '
    if (located !== null) return new LoadError(`${show(located.file)}:${located.line}:${located.column}: ${label}${message}`)
    return new LoadError(`cannot load ${file}: ${label}${message} (in a module it imports)`)
  }
  if (code !== undefined && CANNOT_LOAD.has(code)) return new LoadError(`cannot load ${file}: ${notFound(error) ?? error.message.split('\n')[0]}`)
  return new ImportFailure(`failed to load ${file}: ${error.stack ?? error.message}`)
}

/** "Cannot find module 'x' imported from y" (ESM) or "Cannot find module 'x'" with a require stack (CommonJS), said one way. */
function notFound(error: Error): string | null {
  const esm = /^Cannot find (module|package) '(.+)' imported from (.+)$/m.exec(error.message)
  if (esm !== null) return `cannot find ${esm[1]} '${esm[2]}' (imported by ${stripQuery(esm[3]!)})`
  const cjs = /^Cannot find module '(.+)'/.exec(error.message)
  const requireStack = (error as { requireStack?: unknown }).requireStack
  if (cjs !== null && Array.isArray(requireStack) && typeof requireStack[0] === 'string') return `cannot find module '${cjs[1]}' (imported by ${stripQuery(requireStack[0])})`
  return null
}

/** The file, line and column (from 1) in the header V8 gives a SyntaxError, if it has one. */
function locateSyntaxError(text: string): { file: string; line: number; column: number } | null {
  const found = SYNTAX_HEADER.exec(text)
  if (found === null) return null
  const [, where, line, , caret] = found as unknown as [string, string, string, string, string]
  const file = where.startsWith('file:') ? fileURLToPath(where) : where
  if (!isAbsolute(file)) return null
  return { file, line: Number(line), column: caret.length + 1 }
}

/**
 * Node gives the SyntaxError of an ES module no location; `node --check`
 * prints it. Run only on this error path, and only on the entry file: an
 * error in a module it imports is reported without a location.
 */
function checkSyntax(path: string): { file: string; line: number; column: number } | null {
  // Without NODE_OPTIONS: a preloaded module (an --import hook, instrumentation) has no business in a parse, and may keep it waiting.
  const env = { ...process.env }
  delete env['NODE_OPTIONS']
  const check = spawnSync(process.execPath, ['--check', path], { encoding: 'utf8', env, timeout: 10_000, killSignal: 'SIGKILL' })
  return check.status === 0 ? null : locateSyntaxError(check.stderr ?? '')
}

function isJavaScript(path: string): boolean {
  return ['.js', '.mjs', '.cjs'].includes(extname(path))
}

/**
 * The file esbuild reported: tsx names a `.mts`/`.cts` file `.ts` and a
 * `.mjs` file `.js` for esbuild, so the real file is the entry when the
 * names match, else the first variant that exists.
 */
function sourcePath(reported: string, entry: string): string {
  const file = stripQuery(reported)
  const ext = extname(file)
  const stem = file.slice(0, file.length - ext.length)
  const variants = ext === '.ts' ? ['.ts', '.mts', '.cts'] : ext === '.js' ? ['.js', '.mjs', ''] : [ext]
  const candidates = variants.map((variant) => (variant === '' ? stem : stem + variant))
  if (candidates.includes(entry)) return entry
  return candidates.find((candidate) => existsSync(candidate)) ?? file
}

function stripQuery(path: string): string {
  const query = path.indexOf('?')
  return query === -1 ? path : path.slice(0, query)
}

/** A path as a user reads it: relative to the working directory when inside it. */
function displayPath(path: string, cwd: string): string {
  const rel = relative(cwd, path)
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path
}
