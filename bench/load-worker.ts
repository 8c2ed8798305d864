/**
 * The autocannon child: runs one load job per message and answers with the
 * result and the CPU time it spent (process.cpuUsage over the run's wall
 * time, as a fraction of one core). It exits when the harness disconnects.
 */
import autocannon from 'autocannon'
import type { LoadResult, WorkerReply, WorkerRequest } from './load.js'

process.on('message', (message: WorkerRequest) => {
  if (message.type !== 'run') return
  void run(message)
})

async function run({ id, job }: WorkerRequest): Promise<void> {
  let reply: WorkerReply
  try {
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const r = await autocannon({
      url: job.url,
      method: job.method,
      headers: job.headers,
      ...(job.body === undefined ? {} : { body: job.body }),
      connections: job.connections,
      pipelining: job.pipelining,
      duration: job.duration,
      ...(job.amount === undefined ? {} : { amount: job.amount }),
    })
    const wallMs = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    const result: LoadResult = {
      requests: r.requests.total,
      seconds: r.duration,
      bytes: r.throughput.total,
      p50: r.latency.p50,
      p99: r.latency.p99,
      errors: r.errors,
      timeouts: r.timeouts,
      non2xx: r.non2xx,
      clientCpu: (cpu.user + cpu.system) / 1000 / wallMs,
    }
    reply = { type: 'result', id, result }
  } catch (error) {
    reply = { type: 'error', id, message: error instanceof Error ? error.message : String(error) }
  }
  process.send?.(reply)
}

process.on('disconnect', () => process.exit(0))
