/**
 * `postern module:export [options]`: loads an app from a `.js` or `.ts`
 * module and serves it, like `gunicorn module:app`. The export may be a
 * gateway app, a Fetch handler (a Hono app) or a `node:http` listener (an
 * Express app); the kind is recognised or given with `--interface`.
 */
import cluster from 'node:cluster'
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { GatewayApp } from './gateway.js'
import type { ServerOptions } from './server/options.js'
import { DEFAULTS } from './server/options.js'
import { createServer } from './server/server.js'
import { UsageError, loadApp } from './load-app.js'
import type { AppInterface } from './load-app.js'

const HELP = `Usage: postern <module>[:<export>] [options]

Serves a gateway app (or a Fetch handler, or a node:http listener) exported
by a .js or .ts module. The export defaults to "default", then "app".

  postern examples/hello.ts:app --port 8888

Options:
  -H, --host <address>          address to listen on (default 127.0.0.1)
  -p, --port <port>             port to listen on (default $PORT or 8888)
  -w, --workers <n>             worker processes sharing the port (default 1)
      --server <postern|node>   postern's own server, or the reference server on node:http
      --interface <kind>        gateway | fetch | node (default: recognised from the export)
      --tls-key <file>          serve HTTPS with this PEM key ...
      --tls-cert <file>         ... and this PEM certificate
      --max-body-size <bytes>   largest request body (default ${DEFAULTS.maxBodySize})
      --max-header-size <bytes> largest request head (default ${DEFAULTS.maxHeaderSize})
      --max-header-count <n>    most header fields (default ${DEFAULTS.maxHeaderCount})
      --headers-timeout <ms>    time to receive a request head (default ${DEFAULTS.headersTimeout})
      --request-timeout <ms>    time to receive a whole request (default ${DEFAULTS.requestTimeout})
      --keep-alive-timeout <ms> idle time before closing a connection (default ${DEFAULTS.keepAliveTimeout})
  -h, --help                    show this help
  -v, --version                 show the version
`

interface CliOptions {
  target: string
  host: string
  port: number
  workers: number
  server: 'postern' | 'node'
  iface: AppInterface | undefined
  serverOptions: ServerOptions
}

function parse(argv: string[]): CliOptions | 'help' | 'version' {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        host: { type: 'string', short: 'H' },
        port: { type: 'string', short: 'p' },
        workers: { type: 'string', short: 'w' },
        server: { type: 'string' },
        interface: { type: 'string' },
        'tls-key': { type: 'string' },
        'tls-cert': { type: 'string' },
        'max-body-size': { type: 'string' },
        'max-header-size': { type: 'string' },
        'max-header-count': { type: 'string' },
        'headers-timeout': { type: 'string' },
        'request-timeout': { type: 'string' },
        'keep-alive-timeout': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    })
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\nRun "postern --help" for the options.`)
  }
  const { values, positionals } = parsed
  if (values.help === true) return 'help'
  if (values.version === true) return 'version'
  if (positionals.length !== 1) throw new UsageError('expected one app, as <module>[:<export>], e.g. "postern examples/hello.ts:app"\nRun "postern --help" for the options.')
  const int = (name: string, value: string | undefined, fallback: number | undefined, min = 1): number | undefined => {
    if (value === undefined) return fallback
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number ≥ ${min}, got ${JSON.stringify(value)}`)
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
    maxHeaderSize: int('max-header-size', values['max-header-size'], undefined),
    maxHeaderCount: int('max-header-count', values['max-header-count'], undefined),
    headersTimeout: int('headers-timeout', values['headers-timeout'], undefined),
    requestTimeout: int('request-timeout', values['request-timeout'], undefined),
    keepAliveTimeout: int('keep-alive-timeout', values['keep-alive-timeout'], undefined),
  }
  const key = values['tls-key']
  const cert = values['tls-cert']
  if ((key === undefined) !== (cert === undefined)) throw new UsageError('--tls-key and --tls-cert go together')
  if (key !== undefined && cert !== undefined) serverOptions.tls = { key: readFile(key, 'tls-key'), cert: readFile(cert, 'tls-cert') }
  return {
    target: positionals[0]!,
    host: values.host ?? '127.0.0.1',
    port: int('port', values.port ?? process.env['PORT'], 8888, 0)!,
    workers: int('workers', values.workers, 1)!,
    server,
    iface,
    serverOptions,
  }
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

async function importModule(file: string): Promise<Record<string, unknown>> {
  const path = resolve(file)
  if (!existsSync(path)) throw new UsageError(`cannot find module ${JSON.stringify(file)} (looked for ${path})`)
  if (/\.[cm]?tsx?$/.test(path)) {
    // Load TypeScript apps through tsx, a small well-kept loader.
    const { register } = await import('tsx/esm/api')
    register()
  }
  try {
    return (await import(pathToFileURL(path).href)) as Record<string, unknown>
  } catch (error) {
    throw new UsageError(`failed to load ${file}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  }
}

/** Serves the app until SIGINT/SIGTERM, then closes gracefully. */
async function serve(options: CliOptions, app: GatewayApp): Promise<void> {
  const multiprocess = options.workers > 1
  let close: () => Promise<void>
  let url: string
  const scheme = options.serverOptions.tls !== undefined ? 'https' : 'http'
  try {
    if (options.server === 'node') {
      const { serveNode } = await import('./adapters/node-server.js')
      const served = await serveNode(app, { host: options.host, port: options.port, tls: options.serverOptions.tls, multiprocess })
      close = served.close
      url = `${scheme}://${formatHost(options.host)}:${served.port}`
    } else {
      const server = createServer(app, { ...options.serverOptions, multiprocess })
      const address = await server.listen({ host: options.host, port: options.port })
      close = () => server.close()
      url = `${scheme}://${formatHost(options.host)}:${address.port}`
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE') throw new UsageError(`port ${options.port} on ${options.host} is already in use: stop the other server or pick another --port`)
    if (code === 'EACCES') throw new UsageError(`no permission to listen on port ${options.port} on ${options.host}: use a port above 1023`)
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UsageError(`cannot listen on ${options.host}: no such local address`)
    throw error
  }
  const who = cluster.isWorker ? `worker ${process.pid}` : `postern (${options.server} server)`
  if (!cluster.isWorker || cluster.worker?.id === 1) process.stdout.write(`${who} serving ${options.target} on ${url}\n`)
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) {
      process.stderr.write(`postern: ${signal} again, exiting now\n`)
      process.exit(1)
    }
    stopping = true
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/** Runs workers that share the port; restarts none (a crashed worker is a bug to see). */
function runPrimary(options: CliOptions): void {
  for (let i = 0; i < options.workers; i++) cluster.fork()
  let alive = options.workers
  cluster.on('exit', (worker, code, signal) => {
    alive--
    if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGINT') process.stderr.write(`postern: worker ${worker.process.pid} exited (${signal ?? code})\n`)
    if (alive === 0) process.exit(code ?? 0)
  })
  const forward = (signal: NodeJS.Signals) => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal)
  }
  process.on('SIGINT', () => forward('SIGTERM'))
  process.on('SIGTERM', () => forward('SIGTERM'))
}

/** The command line's entry point. Throws {@link UsageError} for a mistake in the call. */
export async function main(argv: string[]): Promise<void> {
  const options = parse(argv)
  if (options === 'help') {
    process.stdout.write(HELP)
    return
  }
  if (options === 'version') {
    const { createRequire } = await import('node:module')
    const pkg = createRequire(import.meta.url)('../package.json') as { version: string }
    process.stdout.write(`postern ${pkg.version}\n`)
    return
  }
  const { file, exportName } = splitTarget(options.target)
  const mod = await importModule(file)
  const app = await loadApp(mod, file, exportName, options.iface)
  if (options.workers > 1 && cluster.isPrimary) {
    runPrimary(options)
    return
  }
  await serve(options, app)
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href
if (isMain || process.env['POSTERN_CLI'] === '1') {
  main(process.argv.slice(2)).catch((error: unknown) => {
    if (error instanceof UsageError) process.stderr.write(`postern: ${error.message}\n`)
    else process.stderr.write(`postern: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(2)
  })
}
