/**
 * Static files from a folder, as gateway middleware (`serveStatic`: files it
 * has are served, every other request passes to the app) or as a gateway app
 * of its own (`staticApp`: 404 for a miss, 405 for a method other than GET
 * and HEAD). What users of serve-static, send and @fastify/static expect:
 *
 * - `Content-Type` from the file's extension (mime-types), with
 *   `charset=utf-8` for text; `application/octet-stream` when unknown;
 *   `X-Content-Type-Options: nosniff`.
 * - A weak `ETag` (size and modification time, as send makes it),
 *   `Last-Modified`, `Cache-Control` (`maxAge`, `immutable`), and the
 *   conditional requests of RFC 9110 §13 (304, 412): plugins/static/conditional.ts.
 * - `Range` (206, 416, `If-Range`): one range, or several that coalesce
 *   into one, is a 206; several disjoint ranges get the whole file as a 200,
 *   which RFC 9110 allows (no multipart/byteranges): plugins/static/range.ts.
 * - Index files (`index.html`), and a directory asked for without its
 *   trailing slash redirected (301) to it, query kept, when it has an index.
 * - Dotfiles ignored (as if absent) by default, or denied (403), or allowed.
 * - No way out of the folder: plugins/static/lookup.ts says how.
 * - The body streamed from the file with backpressure, its descriptor
 *   closed exactly once whatever happens: plugins/static/file-body.ts.
 *
 * A file that cannot be read for lack of permission is a 403; another
 * file-system failure is thrown, so the gateway error policy answers 500
 * (lib/gateway/errors.ts) and no path reaches the client.
 */
import { realpathSync, statSync, type Stats } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { extname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { contentType as mimeContentType } from 'mime-types'
import type { Body, Environ, GatewayApp, Headers, Middleware, StartResponse } from '../lib/gateway/spec.js'
import { statusLine } from '../lib/gateway/headers.js'
import { decodePath, encodePath, splitTarget } from '../lib/gateway/target.js'
import { fileEtag, ifRangeHolds, preconditions, type Validators } from './static/conditional.js'
import { CHUNK_SIZE, fileBody, readWhole } from './static/file-body.js'
import { checkPath, joinInside, openInside, type DotfilesPolicy, type OpenFile, type Refusal } from './static/lookup.js'
import { parseRange } from './static/range.js'

export type { DotfilesPolicy } from './static/lookup.js'

/** The file being answered, as `setHeaders` sees it. */
export interface StaticFile {
  /** The file's real path on disk (for the app's own use; never sent). */
  path: string
  stats: Stats
}

export interface StaticOptions {
  /** The URL path the folder is served under (`'/static'`); default `'/'`. Compared with `PATH_INFO`, below any mount point. */
  prefix?: string
  /** Index files tried, in order, for a directory; `false` for none. Default `['index.html']`. */
  index?: false | string | readonly string[]
  /** Files and folders whose name starts with `.`: `'ignore'` (as if absent, the default), `'deny'` (403) or `'allow'`. */
  dotfiles?: DotfilesPolicy
  /** How long caches may keep a file: milliseconds, or a string such as `'1h'`, `'7d'`, `'1y'` (units ms, s, m, h, d, w, y). Default 0; at most one year. */
  maxAge?: number | string
  /** Adds `immutable` to `Cache-Control`: for file names that change when their content does (`app.3f9a1c.js`). */
  immutable?: boolean
  /** Send `Cache-Control` at all; default true. */
  cacheControl?: boolean
  /** Send a weak `ETag` and honour `If-None-Match`/`If-Match` with it; default true. */
  etag?: boolean
  /** Send `Last-Modified` and honour the date conditions; default true. */
  lastModified?: boolean
  /** Honour `Range` and send `Accept-Ranges: bytes`; default true. */
  acceptRanges?: boolean
  /** Redirect a directory asked for without its trailing slash (`/docs` → `/docs/`) when it has an index file; default true. */
  redirect?: boolean
  /** Called with the headers of every 200, 206 and 304 before it is sent: push or replace pairs (CORS, `Content-Disposition`, …). */
  setHeaders?: (headers: Headers, file: StaticFile) => void
}

const OPTION_NAMES: ReadonlySet<string> = new Set([
  'prefix',
  'index',
  'dotfiles',
  'maxAge',
  'immutable',
  'cacheControl',
  'etag',
  'lastModified',
  'acceptRanges',
  'redirect',
  'setHeaders',
])

/** `Cache-Control: max-age` never goes beyond a year (RFC 9111 advice, and what send does). */
const MAX_AGE_LIMIT_MS = 365 * 24 * 60 * 60 * 1000
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_557_600_000 }

/** Files up to this size are read in one go and sent with their head in one write. */
const WHOLE_FILE_LIMIT = CHUNK_SIZE

const TEXT = 'text/plain; charset=utf-8'
const BYTES = 'application/octet-stream'

/** The compiled options: everything a request needs, decided once. */
interface Config {
  root: string
  prefix: string
  index: readonly string[]
  dotfiles: DotfilesPolicy
  cacheControl: string | null
  etag: boolean
  lastModified: boolean
  acceptRanges: boolean
  redirect: boolean
  setHeaders: ((headers: Headers, file: StaticFile) => void) | null
}

/**
 * Serves the files of `root` under `options.prefix`, as middleware: a GET or
 * HEAD for a file it has is answered; a miss, another method or a path
 * outside the prefix goes to the app. A request it refuses (a `..`
 * segment, a NUL byte, a denied dotfile, an unreadable file) is answered
 * 400/403, not passed on. `root` is resolved from the working directory
 * (or give a `file:` URL) and must be a directory; options are checked now.
 */
export function serveStatic(root: string | URL, options: StaticOptions = {}): Middleware {
  const config = compile('serveStatic', root, options)
  return (app) => (environ, startResponse) => {
    const method = environ.REQUEST_METHOD
    if (method !== 'GET' && method !== 'HEAD') return app(environ, startResponse)
    const rest = below(environ.PATH_INFO, config.prefix)
    if (rest === null) return app(environ, startResponse)
    return answer(config, environ, startResponse, rest, app)
  }
}

/**
 * Serves the files of `root` as an app on its own: 404 for a file it does
 * not have (or a path outside `options.prefix`), 405 with `Allow: GET, HEAD`
 * for other methods. Same options and checks as {@link serveStatic}.
 */
export function staticApp(root: string | URL, options: StaticOptions = {}): GatewayApp {
  const config = compile('staticApp', root, options)
  return (environ, startResponse) => {
    const method = environ.REQUEST_METHOD
    if (method !== 'GET' && method !== 'HEAD') return plain(startResponse, 405, [['Allow', 'GET, HEAD']])
    const rest = below(environ.PATH_INFO, config.prefix)
    if (rest === null) return plain(startResponse, 404)
    return answer(config, environ, startResponse, rest, null)
  }
}

/** The path below the prefix (`''`, `/`, `/a.css`), or null when `path` is not under it. */
function below(path: string, prefix: string): string | null {
  if (prefix === '/') return path
  if (!path.startsWith(prefix)) return null
  if (path.length === prefix.length) return ''
  return path.charCodeAt(prefix.length) === 0x2f /* / */ ? path.slice(prefix.length) : null
}

/**
 * Whether the raw target held an encoded `/` (`%2F`): `PATH_INFO` shows it
 * as a separator, but it was inside a segment, and no file name holds one.
 * When middleware rewrote the path, the raw target no longer says it and
 * `PATH_INFO` is taken as it is.
 */
function hadEncodedSlash(environ: Environ): boolean {
  const uri = environ.REQUEST_URI
  if (typeof uri !== 'string' || uri.indexOf('%') < 0) return false
  const { path } = splitTarget(uri)
  if (!/%2f/i.test(path)) return false
  return decodePath(path) === environ.SCRIPT_NAME + environ.PATH_INFO
}

async function answer(config: Config, environ: Environ, startResponse: StartResponse, rest: string, app: GatewayApp | null): Promise<Body> {
  const checked = checkPath(rest, config.dotfiles, hadEncodedSlash(environ))
  if (typeof checked === 'string') return refuse(checked, environ, startResponse, app)
  const found = await openInside(config.root, joinInside(config.root, checked.segments), config.dotfiles)
  if (typeof found === 'string') return refuse(found, environ, startResponse, app)
  let file: OpenFile | Refusal = found
  if (found.stats.isDirectory()) {
    await found.handle.close()
    file = await indexOf(config, found.path)
    if (typeof file === 'string') return refuse(file, environ, startResponse, app)
    if (!checked.directory) {
      await file.handle.close()
      return config.redirect ? redirectToSlash(environ, startResponse) : refuse('miss', environ, startResponse, app)
    }
  } else if (checked.directory || !found.stats.isFile()) {
    // `/style.css/` names a directory; a FIFO, socket or device is no file to serve
    await found.handle.close()
    return refuse('miss', environ, startResponse, app)
  }
  return send(config, environ, startResponse, file)
}

/** The first index file of a directory (its real path `dir`) that is a regular file. */
async function indexOf(config: Config, dir: string): Promise<OpenFile | Refusal> {
  for (const name of config.index) {
    const found = await openInside(config.root, joinInside(dir, [name]), config.dotfiles)
    if (typeof found === 'string') {
      if (found === 'forbidden') return found
      continue
    }
    if (found.stats.isFile()) return found
    await found.handle.close()
  }
  return 'miss'
}

function refuse(refusal: Refusal, environ: Environ, startResponse: StartResponse, app: GatewayApp | null): Body | Promise<Body> {
  if (refusal === 'bad') return plain(startResponse, 400, [], 'Bad Request: the path holds a NUL byte')
  if (refusal === 'forbidden') return plain(startResponse, 403)
  if (app !== null) return app(environ, startResponse)
  return plain(startResponse, 404)
}

/** A short text answer that names no file: `Not Found`, `Forbidden`, … */
function plain(startResponse: StartResponse, status: number, extra: Headers = [], message = statusLine(status).slice(4)): Body {
  startResponse(statusLine(status), [['Content-Type', TEXT], ['X-Content-Type-Options', 'nosniff'], ...extra])
  return [message]
}

/**
 * 301 to the same path with a trailing slash, query kept, as serve-static
 * does. The path is encoded afresh from `SCRIPT_NAME` + `PATH_INFO`, so
 * nothing the client sent reaches the header unescaped.
 */
function redirectToSlash(environ: Environ, startResponse: StartResponse): Body {
  // `//evil.example/dir` would be a protocol-relative URL: never send the client elsewhere
  const path = `${(environ.SCRIPT_NAME + environ.PATH_INFO).replace(/^\/{2,}/, '/')}/`
  const location = encodePath(path) + (environ.QUERY_STRING === '' ? '' : `?${environ.QUERY_STRING}`)
  return plain(startResponse, 301, [['Location', location]], `Redirecting to ${location}`)
}

/** Answers a GET or HEAD for an open regular file; always closes it, or hands it to the body that will. */
async function send(config: Config, environ: Environ, startResponse: StartResponse, file: OpenFile): Promise<Body> {
  const { handle, stats } = file
  let owned: FileHandle | null = handle
  try {
    const validators: Validators = {
      etag: config.etag ? fileEtag(stats.size, stats.mtimeMs) : null,
      lastModified: config.lastModified ? Math.floor(stats.mtimeMs / 1000) * 1000 : null,
    }
    const common: Headers = []
    if (validators.etag !== null) common.push(['ETag', validators.etag])
    if (validators.lastModified !== null) common.push(['Last-Modified', new Date(validators.lastModified).toUTCString()])
    if (config.cacheControl !== null) common.push(['Cache-Control', config.cacheControl])

    const outcome = preconditions(environ, validators)
    if (outcome === 'failed') return plain(startResponse, 412)
    if (outcome === 'not-modified') {
      config.setHeaders?.(common, { path: file.path, stats })
      startResponse(statusLine(304), common)
      return []
    }

    const size = stats.size
    let start = 0
    let length = size
    let status = 200
    const headers: Headers = [['Content-Type', typeOf(file.path)], ['X-Content-Type-Options', 'nosniff'], ...common]
    if (config.acceptRanges) {
      headers.push(['Accept-Ranges', 'bytes'])
      const range = environ.HTTP_RANGE
      if (range !== undefined && environ.REQUEST_METHOD === 'GET' && ifRangeHolds(environ, validators)) {
        const ranges = parseRange(range, size)
        if (ranges === 'unsatisfiable')
          return plain(startResponse, 416, [
            ['Content-Range', `bytes */${size}`],
            ['Accept-Ranges', 'bytes'],
          ])
        if (ranges !== null && ranges.length === 1) {
          const { start: first, end } = ranges[0]!
          start = first
          length = end - first + 1
          status = 206
          headers.push(['Content-Range', `bytes ${first}-${end}/${size}`])
        }
      }
    }
    headers.push(['Content-Length', String(length)])
    config.setHeaders?.(headers, { path: file.path, stats })

    if (environ.REQUEST_METHOD === 'HEAD' || length === 0) {
      startResponse(statusLine(status), headers)
      return []
    }
    if (length <= WHOLE_FILE_LIMIT) {
      const bytes = await readWhole(handle, start, length)
      startResponse(statusLine(status), headers)
      return [bytes]
    }
    startResponse(statusLine(status), headers)
    owned = null
    return fileBody(handle, start, length)
  } finally {
    if (owned !== null) await owned.close().catch(() => {})
  }
}

/** The Content-Type of a file by its extension: charset=utf-8 for text, octet-stream when unknown. */
function typeOf(path: string): string {
  const ext = extname(path)
  // A name without an extension is not looked up: mime-types would take `json` itself for one.
  return (ext !== '' && mimeContentType(ext)) || BYTES
}

/** Checks the options and the root once, with messages that say what to change. */
function compile(name: string, root: string | URL, options: StaticOptions): Config {
  if (options === null || typeof options !== 'object') throw new TypeError(`${name}: options must be an object`)
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.has(key)) throw new TypeError(`${name}: unknown option ${JSON.stringify(key)}; known options are ${[...OPTION_NAMES].join(', ')}`)
  }
  let dir: string
  if (root instanceof URL) {
    if (root.protocol !== 'file:') throw new TypeError(`${name}: root must be a folder path or a file: URL, got ${root.href}`)
    dir = fileURLToPath(root)
  } else if (typeof root === 'string' && root !== '') dir = resolve(root)
  else throw new TypeError(`${name}: root must be a folder path (a non-empty string) or a file: URL`)
  let stats: Stats
  try {
    stats = statSync(dir)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new Error(`${name}: root folder ${JSON.stringify(dir)} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`, { cause: error })
  }
  if (!stats.isDirectory()) throw new Error(`${name}: root ${JSON.stringify(dir)} is not a folder`)

  const prefix = options.prefix ?? '/'
  if (typeof prefix !== 'string' || !prefix.startsWith('/') || /[?#%\\\0]/.test(prefix) || /\/\.{1,2}(\/|$)/.test(prefix)) {
    throw new Error(`${name}: prefix must be a path starting with "/" (like "/static"), without "?", "#", "%", "\\" or dot segments; got ${JSON.stringify(prefix)}`)
  }
  const index = options.index === undefined ? ['index.html'] : options.index === false ? [] : typeof options.index === 'string' ? [options.index] : options.index
  if (!Array.isArray(index)) throw new TypeError(`${name}: index must be false, a file name or a list of file names`)
  for (const file of index as readonly unknown[]) {
    if (typeof file !== 'string' || file === '' || file === '.' || file === '..' || /[/\\\0]/.test(file)) {
      throw new Error(`${name}: index entries must be plain file names like "index.html", got ${JSON.stringify(file)}`)
    }
  }
  const dotfiles = options.dotfiles ?? 'ignore'
  if (dotfiles !== 'ignore' && dotfiles !== 'deny' && dotfiles !== 'allow') {
    throw new Error(`${name}: dotfiles must be 'ignore', 'deny' or 'allow', got ${JSON.stringify(dotfiles)}`)
  }
  for (const flag of ['immutable', 'cacheControl', 'etag', 'lastModified', 'acceptRanges', 'redirect'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') throw new TypeError(`${name}: ${flag} must be true or false, got ${JSON.stringify(options[flag])}`)
  }
  if (options.setHeaders !== undefined && typeof options.setHeaders !== 'function') throw new TypeError(`${name}: setHeaders must be a function (headers, file) => void`)
  const maxAge = Math.floor(Math.min(parseMaxAge(name, options.maxAge ?? 0), MAX_AGE_LIMIT_MS) / 1000)
  return {
    root: realpathSync(dir),
    prefix: prefix.length > 1 && prefix.endsWith('/') ? prefix.replace(/\/+$/, '') || '/' : prefix,
    index,
    dotfiles,
    cacheControl: options.cacheControl === false ? null : `public, max-age=${maxAge}${options.immutable === true ? ', immutable' : ''}`,
    etag: options.etag !== false,
    lastModified: options.lastModified !== false,
    acceptRanges: options.acceptRanges !== false,
    redirect: options.redirect !== false,
    setHeaders: options.setHeaders ?? null,
  }
}

/** `maxAge` in milliseconds: a number of them, or a string with a unit (`'30s'`, `'7d'`). */
function parseMaxAge(name: string, value: number | string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value
  if (typeof value === 'string') {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$/i.exec(value)
    if (match !== null) return Number(match[1]) * UNIT_MS[(match[2] ?? 'ms').toLowerCase()]!
  }
  throw new Error(`${name}: maxAge must be milliseconds (a number ≥ 0) or a duration like "1h", "7d", "1y", got ${JSON.stringify(value)}`)
}
