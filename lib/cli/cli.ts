/**
 * `postern module:export [options]`: loads an app from a `.js` or `.ts`
 * module and serves it, like `gunicorn module:app`. The export may be a
 * gateway app, a Fetch handler (a Hono app) or a `node:http` listener (an
 * Express app); the kind is recognised or given with `--interface`. With
 * `--workers N` the process becomes a supervisor (lib/supervisor.ts) and
 * each worker runs this same command. Its flags and their parsing are in
 * args.ts.
 */
import cluster from 'node:cluster'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { GatewayApp, Middleware } from '../gateway/spec.js'
import { Graceful } from './graceful.js'
import { createServer } from '../server/server.js'
import { HELP, type CliOptions, parse, splitTarget } from './args.js'
import { ImportFailure, importModule } from './import-module.js'
import { UsageError, loadApp } from './load-app.js'
import { EXIT, isSupervisedWorker, reportBootErrorAndExit, reportReady } from './supervisor-ipc.js'
import { supervise } from './supervisor.js'
import { followWatcher, isWatchedServer, reportClosed, watch } from './watch.js'
import { health } from '../../plugins/health.js'
import { trustProxy } from '../../plugins/proxy.js'
import { requestLogger } from '../../plugins/logger.js'

/**
 * The middleware the options ask for, outermost first: the health check
 * answers before anything else runs (probes stay out of the access log),
 * then proxy headers are believed (or not), so the access log shows the
 * client's address, then the access log, then the app. Built in every
 * process, so a bad value is a usage error before any worker is forked;
 * each worker logs its own requests (its pid is in each line).
 */
function middleware(options: CliOptions, draining: () => boolean): Middleware {
  const layers: Middleware[] = []
  if (options.health !== undefined) {
    try {
      layers.push(health({ path: options.health, draining }))
    } catch (error) {
      throw new UsageError(`--health: ${(error as Error).message}`)
    }
  }
  if (options.trustProxy !== undefined) {
    try {
      layers.push(trustProxy({ trust: options.trustProxy, headers: options.proxyHeaders }))
    } catch (error) {
      throw new UsageError(`--trust-proxy: ${(error as Error).message}`)
    }
  }
  if (options.accessLog !== undefined) layers.push(requestLogger({ logger: { level: options.accessLog } }))
  return (app) => layers.reduceRight((inner, layer) => layer(inner), app)
}

/** Listens, hands the server to `graceful`, and announces it (to the terminal, or to the supervisor). */
async function serve(options: CliOptions, app: GatewayApp, graceful: Graceful, supervised: boolean): Promise<void> {
  const scheme = options.serverOptions.tls !== undefined ? 'https' : 'http'
  const port = options.port
  let bound: number
  try {
    if (options.server === 'node') {
      const { serveNode } = await import('../adapters/node-server.js')
      const served = await serveNode(app, { host: options.host, port, tls: options.serverOptions.tls, multiprocess: supervised, drainTimeout: options.drainTimeout })
      graceful.serving(() => served.close())
      bound = served.port
    } else {
      const server = createServer(app, { ...options.serverOptions, multiprocess: supervised })
      const address = await server.listen({ host: options.host, port })
      graceful.serving(() => server.close())
      bound = address.port
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE') throw new UsageError(`port ${port} on ${options.host} is already in use: stop the other server or pick another --port`)
    if (code === 'EACCES') throw new UsageError(`no permission to listen on port ${port} on ${options.host}: use a port above 1023`)
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UsageError(`cannot listen on ${options.host}: no such local address`)
    throw error
  }
  const url = `${scheme}://${formatHost(options.host)}:${bound}`
  if (supervised) reportReady(url)
  else {
    process.stdout.write(`postern (${options.server} server) serving ${options.target} on ${url}\n`)
    if (isWatchedServer()) reportReady(url)
  }
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
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
    const pkg = createRequire(import.meta.url)('../../package.json') as { version: string }
    process.stdout.write(`postern ${pkg.version}\n`)
    return
  }
  const supervised = isSupervisedWorker()
  // A server run by --watch: the watcher speaks for it, and learns when its port is free.
  const watched = !supervised && isWatchedServer()
  const graceful = new Graceful({
    name: supervised ? `postern: worker ${process.pid}` : 'postern',
    quiet: supervised || watched,
    drainTimeout: options.drainTimeout,
    hangup: supervised ? null : 'ignored: reloading needs --workers (a lone process cannot replace itself)',
    onDrain: watched ? reportClosed : undefined,
  })
  const wrap = middleware(options, () => graceful.draining)
  // After the options are checked (middleware() too): a mistake in the call is an exit, not a wait for a change.
  if (options.watch !== undefined && !supervised) {
    const { roots, serverArgs } = options.watch
    process.exit(await watch({ roots, serverArgs: (port) => ['--port', String(port), ...serverArgs], port: options.port, drainTimeout: options.drainTimeout, cwd: process.cwd() }))
  }
  if (watched) followWatcher()
  if (options.workers !== undefined && cluster.isPrimary) {
    const code = await supervise({
      workers: options.workers,
      drainTimeout: options.drainTimeout,
      servingLine: (url, workers) => `postern (${options.server} server, ${workers} worker${workers === 1 ? '' : 's'}) serving ${options.target} on ${url}`,
      onServing: watched ? reportReady : undefined,
    })
    process.exit(code)
  }
  graceful.install()
  try {
    const { file, exportName } = splitTarget(options.target)
    const mod = await importModule(file)
    const app = await loadApp(mod, file, exportName, options.iface)
    await serve(options, wrap(app), graceful, supervised)
  } catch (error) {
    if (!supervised) throw error
    // The supervisor reports it once, and decides whether a retry can help.
    const usage = error instanceof UsageError && !(error instanceof ImportFailure)
    const message = error instanceof UsageError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)
    reportBootErrorAndExit(message, usage, usage ? EXIT.usage : EXIT.bootFailed)
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href
if (isMain || process.env['POSTERN_CLI'] === '1') {
  main(process.argv.slice(2)).catch((error: unknown) => {
    if (error instanceof UsageError) process.stderr.write(`postern: ${error.message}\n`)
    else process.stderr.write(`postern: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(EXIT.usage)
  })
}
