/**
 * The live part of `npm run fuzz` at a count that fits the test suite: a
 * real postern server process (bench/fuzz-server.ts) takes valid, mutated,
 * arbitrary and at-the-limit requests over real connections, split at
 * random points, from four concurrent runners, while a well-behaved client
 * on its own connection checks every answer it gets. The server must answer
 * each case exactly as its own parser predicts, survive, and be back to its
 * baseline of file descriptors at the end.
 */
import t from 'tap'
import { exerciseCase, FUZZ_SERVER, liveProblems, newStats, runLive } from '../../bench/fuzz-live.js'
import { startServerProcess } from '../../bench/fuzz-process.js'

t.test('fuzzed connections: exact answers, a served bystander, no crash, no leaked descriptor', async (t) => {
  const seed = (Math.random() * 2 ** 31) | 0
  const report = await runLive({ cases: 600, runners: 4, seedOf: (i) => (seed + i) | 0 })
  t.same(liveProblems(report), [], `seed ${seed}: no problem`)
  t.equal(report.serverExit, null, 'the server process is alive')
  // A runner stops at its first failure (reported above); otherwise every case ran, and more when a failure was shrunk.
  if (report.failures.length === 0) t.ok(report.stats.cases >= 600, `${report.stats.cases} connections`)
  t.ok(report.client.requests > 0, `the well-behaved client got ${report.client.requests} answers`)
  t.ok(report.fds.end <= report.fds.baseline, `descriptors ${report.fds.baseline} → ${report.fds.end}`)
})

t.test('a head at the size limit gets the same answer whole and split over a socket', async (t) => {
  // maxHeaderSize is 16 KiB: heads of 16,385 to 16,389 bytes sit on the boundary.
  const server = await startServerProcess(FUZZ_SERVER)
  t.teardown(() => server.stop())
  const start = 'GET / HTTP/1.1\r\nHost: a\r\nX: '
  for (let size = 16_383; size <= 16_390; size++) {
    const input = Buffer.from(`${start}${'v'.repeat(size - start.length - 4)}\r\n\r\n`)
    for (const cuts of [[], [1], [size - 1], [8000, 16_000]]) {
      const stats = newStats()
      await t.resolves(exerciseCase(server.port, { input, cuts, mode: 'wait', abortAfterMs: 0 }, stats), `${size} bytes cut at ${JSON.stringify(cuts)}`)
    }
  }
})
