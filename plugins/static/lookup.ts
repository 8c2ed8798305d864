/**
 * From a request path to an open file inside the root folder, or a reason
 * not to serve one. This is the security boundary of the static plugin:
 *
 * - the path is checked before the file system sees it: a NUL byte is a bad
 *   request; `.` and `..` segments and backslashes (a separator on Windows)
 *   are refused; an encoded `/` inside a segment names no file; dotfiles
 *   follow the `dotfiles` policy; over-long paths and names name no file;
 * - the file is found with `realpath`, and must lie inside the root's own
 *   real path: a symlink inside the root that points inside it is followed,
 *   one that points out is treated as absent. The dotfiles policy applies to
 *   the real path below the root too, so a symlink (`sub/envlink → ../.env`)
 *   cannot reach a dotfile that the request path could not name;
 * - the real path is opened with `O_NONBLOCK` (opening a FIFO does not hang)
 *   and `O_NOFOLLOW`, which guards the last component only: a parent folder
 *   swapped for a symlink between the check and the open still leads out.
 *   So the open descriptor is checked again: on Linux the kernel's own path
 *   for it (`/proc/self/fd/N`) must pass the same checks as the real path;
 *   where there is no /proc, the real path must still be its own real path
 *   and name a file with the descriptor's device and inode, which narrows
 *   the race but cannot close it (a swap undone and redone between those
 *   two calls goes unnoticed). A descriptor that fails is closed and the
 *   file treated as absent;
 * - everything after is read from that one descriptor.
 */
import { constants } from 'node:fs'
import { open, readlink, realpath, stat, type FileHandle } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { join, sep } from 'node:path'

/** What to do with a path under the root folder. */
export type DotfilesPolicy = 'ignore' | 'deny' | 'allow'

/** A file found and opened: the caller owns `handle` and must close it. */
export interface OpenFile {
  handle: FileHandle
  stats: Stats
  /** The file's real path (for `setHeaders`, never sent to the client). */
  path: string
}

/** Why no file is served: absent (`miss`), refused (`forbidden`, 403), malformed (`bad`, 400). */
export type Refusal = 'miss' | 'forbidden' | 'bad'

/** The path split into the segments to look up, or a refusal. */
export interface CheckedPath {
  segments: string[]
  /** The request path ends with `/`, so it names a directory (`''`, the prefix itself, does not). */
  directory: boolean
}

/** Longest path (after the prefix) looked up at all; longer ones name no file (Linux's PATH_MAX is 4096). */
export const MAX_PATH_LENGTH = 4096
/** Longest name of one segment, in UTF-8 bytes (NAME_MAX on common file systems). */
const MAX_NAME_BYTES = 255

/**
 * Checks the part of the decoded path below the prefix (`''`, `/`, `/a/b.css`)
 * before any file-system call. `encodedSlash` says that the raw target had
 * `%2F` in it, so some segment held a `/` that decoding turned into a
 * separator: no file name holds one.
 */
export function checkPath(rest: string, dotfiles: DotfilesPolicy, encodedSlash: boolean): CheckedPath | Refusal {
  if (rest.includes('\0')) return 'bad'
  if (rest.length > MAX_PATH_LENGTH || encodedSlash) return 'miss'
  const segments: string[] = []
  const parts = rest.split('/')
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!
    if (part === '') continue // the leading slash, a trailing one, or `//`
    if (part === '.' || part === '..' || part.includes('\\')) return 'forbidden'
    if (part.charCodeAt(0) === 0x2e /* . */ && dotfiles !== 'allow') return dotfiles === 'deny' ? 'forbidden' : 'miss'
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) return 'miss'
    segments.push(part)
  }
  return { segments, directory: rest.endsWith('/') }
}

/** Errors that mean "no such file here" rather than a failure. */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'ENAMETOOLONG', 'ELOOP', 'EINVAL', 'EISDIR'])
/** Errors that mean "not yours to read". */
const DENIED = new Set(['EACCES', 'EPERM'])

/** What a file-system error means for the response: absent, forbidden, or a real failure (null: rethrow, 500). */
export function refusalOf(error: unknown): Refusal | null {
  const code = (error as NodeJS.ErrnoException | null)?.code
  if (typeof code !== 'string') return null
  if (ABSENT.has(code)) return 'miss'
  if (DENIED.has(code)) return 'forbidden'
  return null
}

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0)

/** Whether `path` (a real path) is `root` or inside it; `root` is a real path too. */
export function isInside(root: string, path: string): boolean {
  if (path === root) return true
  const base = root.endsWith(sep) ? root : root + sep
  return path.startsWith(base)
}

/** Whether a path below the root (`/sub/.env`, `''`) has a segment starting with `.`. */
function hasDotSegment(below: string): boolean {
  for (const part of below.split(sep)) if (part.charCodeAt(0) === 0x2e /* . */) return true
  return false
}

/**
 * Why the real path `real` is not to be served (outside `root`, or a dotfile
 * the policy hides or denies), or null when it may be. Only the part below
 * `root` is looked at: the root folder itself may sit under a dot folder.
 */
export function refusalOfReal(root: string, real: string, dotfiles: DotfilesPolicy): Refusal | null {
  if (!isInside(root, real)) return 'miss'
  if (dotfiles !== 'allow' && hasDotSegment(real.slice(root.length))) return dotfiles === 'deny' ? 'forbidden' : 'miss'
  return null
}

/** Linux (and Android) say where an open descriptor is in /proc/self/fd. */
const PROC_FD = process.platform === 'linux' || process.platform === 'android'

/**
 * The kernel's path of an open descriptor, read from `/proc/self/fd/N`, or
 * null where /proc cannot say. `readlink`, not `realpath`: `realpath` would
 * resolve the link's text by name again, re-opening the race it is checking.
 */
export async function descriptorPath(handle: FileHandle): Promise<string | null> {
  if (!PROC_FD) return null
  try {
    return await readlink(`/proc/self/fd/${handle.fd}`)
  } catch {
    return null // no /proc mounted: the caller falls back to device and inode
  }
}

/**
 * Whether `handle` is the file `real` names now, judged by name where there
 * is no /proc: `real` must still be its own real path (a parent swapped for
 * a symlink and still in place shows here; a bare `stat` would follow it as
 * the open did), then a fresh `stat` of it must have the handle's device and
 * inode. A swap slips through only if undone before the `realpath` and
 * redone before the `stat`. False when `real` is gone.
 */
export async function sameFile(handle: FileHandle, real: string): Promise<boolean> {
  let now: Awaited<ReturnType<typeof stat>>
  try {
    if ((await realpath(real)) !== real) return false
    now = await stat(real, { bigint: true })
  } catch (error) {
    if (refusalOf(error) === null) throw error
    return false
  }
  const opened = await handle.stat({ bigint: true })
  return opened.dev === now.dev && opened.ino === now.ino
}

/** Whether the descriptor opened from `real` is still a file `real` passed the checks for: by its kernel path, else by device and inode. */
export async function openedInside(root: string, real: string, handle: FileHandle, dotfiles: DotfilesPolicy): Promise<boolean> {
  const where = await descriptorPath(handle)
  if (where !== null) return refusalOfReal(root, where, dotfiles) === null
  return sameFile(handle, real)
}

/**
 * Opens `path` (under `root`, both absolute; `root` already real) if its
 * real path lies inside `root` and the dotfiles policy allows it. Returns
 * the open file, or why there is none. Errors other than absent/denied are
 * thrown (a 500 by the error policy).
 */
export async function openInside(root: string, path: string, dotfiles: DotfilesPolicy): Promise<OpenFile | Refusal> {
  let real: string
  try {
    real = await realpath(path)
  } catch (error) {
    const refusal = refusalOf(error)
    if (refusal === null) throw error
    return refusal
  }
  const refusal = refusalOfReal(root, real, dotfiles)
  if (refusal !== null) return refusal
  return openChecked(root, real, dotfiles)
}

/**
 * Opens `real`, a real path that {@link refusalOfReal} let through, and
 * checks that the descriptor is still inside `root` (a parent folder may
 * have been swapped for a symlink since). A descriptor that fails the check
 * is closed here and the file is a `miss`; otherwise the caller owns it.
 */
export async function openChecked(root: string, real: string, dotfiles: DotfilesPolicy): Promise<OpenFile | Refusal> {
  let handle: FileHandle
  try {
    handle = await open(real, OPEN_FLAGS)
  } catch (error) {
    // ENOENT here: the file vanished between realpath and open. As if it never was.
    const refusal = refusalOf(error)
    if (refusal === null) throw error
    return refusal
  }
  try {
    if (!(await openedInside(root, real, handle, dotfiles))) {
      await handle.close()
      return 'miss'
    }
    const stats = await handle.stat()
    return { handle, stats, path: real }
  } catch (error) {
    await handle.close().catch(() => {})
    throw error
  }
}

/** `root` joined with the segments (already checked by {@link checkPath}). */
export function joinInside(root: string, segments: readonly string[]): string {
  return segments.length === 0 ? root : join(root, ...segments)
}
