/**
 * What the supervisor and its workers say to each other, and the exit codes
 * both use. Workers speak over the cluster IPC channel: "ready" once they
 * listen (so the supervisor knows when a worker can take traffic, which a
 * fork alone does not tell), "boot-error" when they cannot start (so the
 * supervisor can tell a typo, which no retry fixes, from a crash). The
 * supervisor speaks to workers with signals only (SIGTERM to drain,
 * SIGKILL to stop), so a worker behaves the same whoever signals it.
 */
import cluster from 'node:cluster'

/** Exit codes of the `postern` command, primary and workers alike. */
export const EXIT = {
  /** Stopped cleanly: every request finished. */
  ok: 0,
  /** Requests were cut at the drain deadline, or the stop was forced (SIGINT twice). */
  cut: 1,
  /** A mistake in the call: an option, the module, the export, the port. */
  usage: 2,
  /** Workers kept failing to boot, so the supervisor gave up. */
  bootFailed: 3,
} as const

/** A worker listens and can take connections. */
export interface ReadyMessage {
  postern: 'ready'
  /** The URL it serves, as the serving line prints it. */
  url: string
}

/** A worker could not start; it exits right after. */
export interface BootErrorMessage {
  postern: 'boot-error'
  message: string
  /** True for a mistake in the call (no retry can fix it), false for a crash of the app's code. */
  usage: boolean
}

export type WorkerMessage = ReadyMessage | BootErrorMessage

/** True in a process the supervisor forked. */
export function isSupervisedWorker(): boolean {
  return cluster.isWorker && typeof process.send === 'function'
}

/** Tells the supervisor this worker listens. */
export function reportReady(url: string): void {
  const message: ReadyMessage = { postern: 'ready', url }
  process.send?.(message)
}

/** Tells the supervisor why this worker cannot start, then exits with `code` once the message is out. */
export function reportBootErrorAndExit(message: string, usage: boolean, code: number): void {
  const report: BootErrorMessage = { postern: 'boot-error', message, usage }
  if (process.send === undefined || !process.connected) process.exit(code)
  process.send(report, undefined, undefined, () => process.exit(code))
}

/** Narrows an IPC message to one of ours. */
export function asWorkerMessage(message: unknown): WorkerMessage | null {
  if (message === null || typeof message !== 'object') return null
  const kind = (message as { postern?: unknown }).postern
  return kind === 'ready' || kind === 'boot-error' ? (message as WorkerMessage) : null
}
