/**
 * Defect 3 of issue 9: whatever an app throws, and however its body fails,
 * the server answers 500 (or cuts a response that already started) and keeps
 * serving, on postern's server and through `toNodeListener` alike. The
 * thrown values are the nasty ones: an object without a prototype, an error
 * whose `stack`/`toString` throw, a Proxy that throws on every access, a
 * body whose iterator getter throws; sync and async. Each fault is requested
 * of a server in its own process, then: the process is alive, its
 * descriptors are back to baseline, and a well-behaved client is answered.
 * A process that died is restarted, so each fault gets its own verdict.
 */
import t from 'tap'
import type { Test } from 'tap'
import { RawClient } from '../helpers/raw.js'
import { fdsBack, startServer, type HostileConfig, type ServerProcess } from '../helpers/process.js'

/** Faults before anything was sent: the answer must be a 500. */
const BEFORE_START = [
  'sync-null-proto',
  'async-null-proto',
  'sync-unprintable',
  'async-unprintable',
  'sync-proxy',
  'async-proxy',
  'sync-undefined',
  'returns-proxy',
  'async-iterator-getter',
  'iterator-getter',
  'body-first-null-proto',
  'body-first-proxy-sync',
  'chunk-null-proto',
  'chunk-proxy-async',
  'next-returns-proxy',
  'headers-proxy',
  'header-value-proxy',
  'status-proxy',
  'write-proxy',
]
/** Faults after the whole body was handed over (its close() fails): the response goes out whole. */
const AFTER_BODY = ['close-throws', 'close-rejects-proxy', 'close-getter-throws']
/** Faults after the first body chunk went out: a 500, or the response cut short and the connection closed. */
const AFTER_START = ['late-null-proto', 'late-proxy']

async function faults(t: Test, config: HostileConfig): Promise<void> {
  let s: ServerProcess = await startServer(t, config)
  for (const name of [...BEFORE_START, ...AFTER_START, ...AFTER_BODY]) {
    await t.test(name, async (t) => {
      if (!s.alive) s = await startServer(t, config)
      const c = await RawClient.connect(s.port, { timeout: 2000 })
      c.write(`GET /fault/${name} HTTP/1.1\r\nHost: x\r\n\r\n`)
      const r = await c.read()
      const res = r.responses[0]
      if (BEFORE_START.includes(name)) {
        t.equal(res?.status, 500, `answered 500: ${JSON.stringify(r.raw.slice(0, 200))}`)
      } else if (AFTER_START.includes(name)) {
        const cut = res === undefined && r.partial !== undefined && r.partial.status === 200 && !r.partial.complete && r.closed
        t.ok(res?.status === 500 || cut, `a 500, or the started response cut short and the connection closed: ${JSON.stringify(r.raw.slice(0, 200))}`)
      } else {
        t.equal(res?.status, 200, `a body whose close() fails was still sent: ${JSON.stringify(r.raw.slice(0, 200))}`)
      }
      c.destroy()
      // Asked first: a crash an instant after the answer must not pass for a live server.
      const good = await s.get('/hello').catch(() => undefined)
      t.equal(good?.status, 200, 'a well-behaved client is answered')
      t.equal(good?.body.toString(), 'hello')
      t.ok(s.alive, `the server process is alive${s.alive ? '' : `; stderr: ${s.stderr.slice(-500)}`}`)
      await fdsBack(t, s, 1000)
    })
  }
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
}

t.test('postern server', (t) => faults(t, {}))

t.test('node adapter (toNodeListener)', (t) => faults(t, { node: true }))
