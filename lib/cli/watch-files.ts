/**
 * Watches folder trees for changed code, for `postern --watch`: one
 * non-recursive fs.watch per folder (inotify on Linux), skipping
 * node_modules and .git, and following folders as they are created and
 * removed. Only modules count (.ts, .js, their variants, and .json), as
 * nodemon does by default: an app that writes its log or its SQLite
 * database next to its code must not restart itself with each write. Node 20's `fs.watch(dir, { recursive: true })` on Linux cannot
 * skip anything: it walks and watches every folder, node_modules included,
 * blocking the process for seconds in a project with its dependencies
 * installed.
 */
import { type Dirent, type FSWatcher, readdirSync, statSync, watch } from 'node:fs'
import { basename, extname, join, sep } from 'node:path'

/** Folders that are never watched: dependencies and version control, which change without the app's code changing. */
const IGNORED_FOLDERS = new Set(['node_modules', '.git'])

/** The files a change of which restarts the server: what an app imports. */
export const WATCHED_EXTENSIONS: ReadonlySet<string> = new Set(['.ts', '.tsx', '.mts', '.cts', '.js', '.jsx', '.mjs', '.cjs', '.json'])

/** Emacs' lock files (`.#app.ts`): written as an edit begins, before anything is saved. Other editors' scratch files (`.swp`, `~`, `4913`) are not code. */
function isScratch(name: string): boolean {
  return name.startsWith('.#')
}

export interface TreeWatcher {
  /** How many folders are watched. */
  readonly folders: number
  close(): void
}

/** Calls `onChange(path)` for each file created, changed or removed under `roots` (folders). */
export function watchTrees(roots: readonly string[], onChange: (path: string) => void): TreeWatcher {
  const watchers = new Map<string, FSWatcher>()

  const add = (dir: string): void => {
    if (watchers.has(dir) || IGNORED_FOLDERS.has(basename(dir))) return
    let watcher: FSWatcher
    try {
      watcher = watch(dir, { persistent: true }, (_event, name) => changed(dir, name === null ? null : String(name)))
    } catch {
      return // gone already, or not readable: nothing to watch there
    }
    watcher.on('error', () => remove(dir))
    watchers.set(dir, watcher)
    let entries: Dirent[] = []
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      // removed while being read
    }
    // Symbolic links are not followed: a link to a parent folder would loop.
    for (const entry of entries) if (entry.isDirectory()) add(join(dir, entry.name))
  }

  const remove = (dir: string): void => {
    for (const [path, watcher] of watchers) {
      if (path === dir || path.startsWith(dir + sep)) {
        watcher.close()
        watchers.delete(path)
      }
    }
  }

  const changed = (dir: string, name: string | null): void => {
    if (name === null || IGNORED_FOLDERS.has(name) || isScratch(name)) return
    const path = join(dir, name)
    let isFolder = false
    try {
      isFolder = statSync(path).isDirectory()
    } catch {
      remove(path) // removed: if it was a folder, so are its watchers
    }
    // A new folder (mkdir, a checkout, a move) is watched from now on.
    if (isFolder) add(path)
    else if (WATCHED_EXTENSIONS.has(extname(name))) onChange(path)
  }

  for (const root of roots) add(root)
  return {
    get folders() {
      return watchers.size
    },
    close() {
      for (const watcher of watchers.values()) watcher.close()
      watchers.clear()
    },
  }
}
