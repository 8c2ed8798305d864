/**
 * The command line of `postern`: its help text, its flags, and parsing
 * argv into the options cli.ts acts on, with a usage error (and a "did you
 * mean") for anything it does not take.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { ServerOptions } from '../server/options.js'
import { DEFAULTS, DEFAULT_HOST, DEFAULT_PORT } from '../server/options.js'
import { UsageError } from './load-app.js'
import type { AppInterface } from './load-app.js'
import { EXIT } from './supervisor-ipc.js'
import { MAX_BOOT_FAILURES } from './supervisor.js'
import { type ArgToken, commandWithout } from './watch.js'
import { LOG_LEVELS, type LogLevel } from '../../plugins/logger.js'

export const HELP = `Usage: postern <module>[:<export>] [options]

Serves a gateway app (or a Fetch handler, or a node:http listener) exported
by a .js or .ts module. The export defaults to "default", then "app".

  postern examples/hello.ts:app --port 8888

Options:
  -H, --host <address>          address to listen on (default 127.0.0.1)
  -p, --port <port>             port to listen on (default $PORT or 8888)
  -w, --workers <n>             run a supervisor and n worker processes sharing the port
                                (default: none, one process serves)
      --server <postern|node>   postern's own server (default), or the reference server on node:http
      --interface <kind>        gateway | fetch | node (default: recognised from the export)
      --tls-key <file>          serve HTTPS with this PEM key ...
      --tls-cert <file>         ... and this PEM certificate
      --trust-proxy <list>      believe X-Forwarded-* only from these peers: addresses,
                                CIDRs or loopback, private, linklocal, comma-separated (default: none)
      --proxy-headers <family>  x-forwarded (default) or forwarded (RFC 7239): what the proxy sets
      --health <path>           answer GET <path> with 200 ok, 503 while draining (default: off)
      --access-log              log one JSON line per request to stdout (pino): reqId, method, url,
                                status, responseTime in ms; errors the app reports name their request
                                (request id from X-Request-Id when plausible, else a UUID)
      --log-level <level>       with --access-log: trace, debug, info (default), warn, error,
                                fatal or silent; requests are logged at info, errors at error
      --watch                   for development: restart when a .ts, .js (or .mts, .cts, .tsx,
                                .jsx, .mjs, .cjs) or .json file under the app's folder changes
                                (node_modules and .git aside; a burst of saves restarts once).
                                Each start is a new process, so the new code loads; the old server
                                drains its requests while the new one starts on the same port. A
                                file that does not load is reported, and the next change restarts.
                                With --workers, every worker restarts.
      --watch-path <dir>        watch this folder too (repeatable; implies --watch)

Limits (postern's server; with --server node only --drain-timeout applies):
      --max-body-size <bytes>   largest request body (default ${DEFAULTS.maxBodySize})
      --max-chunk-count <n>     most chunks in one chunked body (default ${DEFAULTS.maxChunkCount})
      --max-header-size <bytes> largest request head (default ${DEFAULTS.maxHeaderSize})
      --max-header-count <n>    most header fields (default ${DEFAULTS.maxHeaderCount})
      --max-connections <n>     open connections; past it a fast 503 (default ${DEFAULTS.maxConnections})
      --headers-timeout <ms>    time to receive a request head (default ${DEFAULTS.headersTimeout})
      --request-timeout <ms>    time to receive a whole request (default ${DEFAULTS.requestTimeout})
      --keep-alive-timeout <ms> idle time before closing a connection (default ${DEFAULTS.keepAliveTimeout})
      --send-timeout <ms>       time a client may leave a response unread (default ${DEFAULTS.sendTimeout})
      --handshake-timeout <ms>  time to finish a TLS handshake (default ${DEFAULTS.handshakeTimeout})
      --drain-timeout <ms>      on SIGTERM, time in-flight requests get before they are cut
                                (default ${DEFAULTS.drainTimeout})

  -h, --help                    show this help
  -v, --version                 show the version

Signals:
  SIGTERM, SIGINT   drain: stop accepting, let requests finish within --drain-timeout
  SIGINT twice      stop at once
  SIGHUP            with --workers: reload, replacing workers one at a time (new code,
                    no failed requests); with --watch: restart now; otherwise ignored
  With --workers, a worker that dies is replaced (with a back-off when it dies early).

Exit codes:
  ${EXIT.ok}  stopped cleanly
  ${EXIT.cut}  requests were cut at the drain deadline, or the stop was forced
  ${EXIT.usage}  a mistake in the call (option, module, export, port)
  ${EXIT.bootFailed}  workers failed to boot ${MAX_BOOT_FAILURES} times in a row
`

export interface CliOptions {
  target: string
  host: string
  port: number
  /** Undefined: one process serves, unsupervised. */
  workers: number | undefined
  server: 'postern' | 'node'
  iface: AppInterface | undefined
  serverOptions: ServerOptions
  drainTimeout: number
  trustProxy: string[] | undefined
  proxyHeaders: 'x-forwarded' | 'forwarded'
  health: string | undefined
  /** The access log's level, or undefined for no access log. */
  accessLog: LogLevel | undefined
  /** With --watch: the folders to watch, and the command line for the server (no watch options, no port). */
  watch: { roots: string[]; serverArgs: string[] } | undefined
}

/** The command line's flags, as node:util parseArgs takes them. */
const FLAGS = {
  host: { type: 'string', short: 'H' },
  port: { type: 'string', short: 'p' },
  workers: { type: 'string', short: 'w' },
  server: { type: 'string' },
  interface: { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-cert': { type: 'string' },
  'trust-proxy': { type: 'string' },
  'proxy-headers': { type: 'string' },
  health: { type: 'string' },
  watch: { type: 'boolean' },
  'watch-path': { type: 'string', multiple: true },
  'access-log': { type: 'boolean' },
  'log-level': { type: 'string' },
  'max-body-size': { type: 'string' },
  'max-chunk-count': { type: 'string' },
  'max-header-size': { type: 'string' },
  'max-header-count': { type: 'string' },
  'max-connections': { type: 'string' },
  'headers-timeout': { type: 'string' },
  'request-timeout': { type: 'string' },
  'keep-alive-timeout': { type: 'string' },
  'send-timeout': { type: 'string' },
  'handshake-timeout': { type: 'string' },
  'drain-timeout': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const

/** The flags that take a value, long and short: `--port`, `-p`, … */
const VALUED = new Set(Object.entries(FLAGS).flatMap(([name, flag]) => (flag.type === 'string' ? [`--${name}`, ...('short' in flag ? [`-${flag.short}`] : [])] : [])))

/** The flags of `argv`; a usage error names what was wrong. */
function readFlags(argv: string[]) {
  // parseArgs calls "--port -1" ambiguous; a negative number is the value, for the range check to report.
  const args: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const next = argv[i + 1]
    if (arg === '--') {
      args.push(...argv.slice(i))
      break
    }
    if (VALUED.has(arg) && next !== undefined && /^-\d/.test(next)) {
      args.push(arg.startsWith('--') ? `${arg}=${next}` : `${arg}${next}`)
      i++
    } else args.push(arg)
  }
  try {
    return parseArgs({ args, allowPositionals: true, options: FLAGS, tokens: true })
  } catch (error) {
    const { code, message } = error as Error & { code?: string }
    const unknown = code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /^Unknown option '([^']+)'/.exec(message) : null
    if (unknown !== null) {
      const option = unknown[1]!
      const near = nearestFlag(option)
      throw new UsageError(`unknown option ${option}${near === null ? '' : `, did you mean ${near}?`} (run "postern --help" for the options)`)
    }
    throw new UsageError(`${message}\nRun "postern --help" for the options.`)
  }
}

/** The long option a mistyped `--name` most likely meant, when one is a typo or two away. */
function nearestFlag(option: string): string | null {
  if (!option.startsWith('--')) return null
  const typed = option.slice(2).toLowerCase()
  let best: string | null = null
  let bestDistance = typed.length <= 4 ? 2 : 3
  for (const name of Object.keys(FLAGS)) {
    const d = editDistance(typed, name)
    if (d < bestDistance) {
      best = `--${name}`
      bestDistance = d
    }
  }
  return best
}

/** Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

export function parse(argv: string[]): CliOptions | 'help' | 'version' {
  const { values, positionals, tokens } = readFlags(argv)
  if (values.help === true) return 'help'
  if (values.version === true) return 'version'
  if (positionals.length !== 1) throw new UsageError('expected one app, as <module>[:<export>], e.g. "postern examples/hello.ts:app"\nRun "postern --help" for the options.')
  const int = (name: string, value: string | undefined, fallback: number | undefined, min = 1, max?: number, label = `--${name}`): number | undefined => {
    if (value === undefined) return fallback
    const n = value.trim() === '' ? Number.NaN : Number(value)
    if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
      throw new UsageError(`${label} must be a whole number ${max === undefined ? `≥ ${min}` : `${min}-${max}`}, got ${JSON.stringify(value)}`)
    }
    return n
  }
  const server = values.server ?? 'postern'
  if (server !== 'postern' && server !== 'node') throw new UsageError(`--server must be "postern" or "node", got ${JSON.stringify(server)}`)
  const iface = values.interface
  if (iface !== undefined && iface !== 'gateway' && iface !== 'fetch' && iface !== 'node') {
    throw new UsageError(`--interface must be "gateway", "fetch" or "node", got ${JSON.stringify(iface)}`)
  }
  const serverOptions: ServerOptions = {
    maxBodySize: int('max-body-size', values['max-body-size'], undefined),
    maxChunkCount: int('max-chunk-count', values['max-chunk-count'], undefined),
    maxHeaderSize: int('max-header-size', values['max-header-size'], undefined),
    maxHeaderCount: int('max-header-count', values['max-header-count'], undefined),
    maxConnections: int('max-connections', values['max-connections'], undefined),
    headersTimeout: int('headers-timeout', values['headers-timeout'], undefined),
    requestTimeout: int('request-timeout', values['request-timeout'], undefined),
    keepAliveTimeout: int('keep-alive-timeout', values['keep-alive-timeout'], undefined),
    sendTimeout: int('send-timeout', values['send-timeout'], undefined),
    handshakeTimeout: int('handshake-timeout', values['handshake-timeout'], undefined),
    drainTimeout: int('drain-timeout', values['drain-timeout'], undefined),
  }
  const key = values['tls-key']
  const cert = values['tls-cert']
  if ((key === undefined) !== (cert === undefined)) throw new UsageError('--tls-key and --tls-cert go together')
  if (key !== undefined && cert !== undefined) serverOptions.tls = { key: readFile(key, 'tls-key'), cert: readFile(cert, 'tls-cert') }
  const trust = values['trust-proxy']
  const proxyHeaders = values['proxy-headers'] ?? 'x-forwarded'
  if (proxyHeaders !== 'x-forwarded' && proxyHeaders !== 'forwarded')
    throw new UsageError(`--proxy-headers must be "x-forwarded" or "forwarded", got ${JSON.stringify(proxyHeaders)}`)
  if (values['proxy-headers'] !== undefined && trust === undefined) throw new UsageError('--proxy-headers goes with --trust-proxy')
  const level = values['log-level']
  if (level !== undefined && values['access-log'] !== true) throw new UsageError('--log-level goes with --access-log')
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`)
  }
  return {
    target: positionals[0]!,
    host: values.host ?? DEFAULT_HOST,
    port: int('port', values.port ?? process.env['PORT'], DEFAULT_PORT, 0, 65535, values.port === undefined ? '$PORT' : '--port')!,
    workers: int('workers', values.workers, undefined),
    server,
    iface,
    serverOptions,
    drainTimeout: serverOptions.drainTimeout ?? DEFAULTS.drainTimeout,
    trustProxy:
      trust === undefined
        ? undefined
        : trust
            .split(',')
            .map((entry) => entry.trim())
            .filter((entry) => entry !== ''),
    proxyHeaders,
    health: values.health,
    accessLog: values['access-log'] === true ? ((level ?? 'info') as LogLevel) : undefined,
    watch: values.watch === true || values['watch-path'] !== undefined ? watchOptions(positionals[0]!, values['watch-path'] ?? [], tokens) : undefined,
  }
}

/** What --watch watches: the app module's folder and each --watch-path, which must be folders. */
function watchOptions(target: string, paths: string[], tokens: ArgToken[]): { roots: string[]; serverArgs: string[] } {
  const roots = [dirname(resolve(splitTarget(target).file))]
  for (const path of paths) {
    let folder = false
    try {
      folder = statSync(path).isDirectory()
    } catch {}
    if (!folder) throw new UsageError(`--watch-path: no such folder: ${path}`)
    roots.push(resolve(path))
  }
  if (!existsSync(roots[0]!)) throw new UsageError(`--watch: the app's folder does not exist: ${roots[0]}`)
  return { roots, serverArgs: commandWithout(tokens, ['watch', 'watch-path', 'port']) }
}

function readFile(path: string, option: string): Buffer {
  if (!existsSync(path)) throw new UsageError(`--${option}: no such file: ${path}`)
  return readFileSync(path)
}

/** Splits `path/to/mod.ts:export` (a Windows drive letter's colon is not a separator). */
export function splitTarget(target: string): { file: string; exportName: string | undefined } {
  const colon = target.lastIndexOf(':')
  if (colon > 1 || (colon === 1 && !/^[A-Za-z]:[\\/]/.test(target))) {
    return { file: target.slice(0, colon), exportName: target.slice(colon + 1) || undefined }
  }
  return { file: target, exportName: undefined }
}
