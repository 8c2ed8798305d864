/**
 * The check the static plugin makes on a descriptor after opening it. The
 * real path of a file is checked, then opened; `O_NOFOLLOW` guards only its
 * last component, so a parent folder swapped for a symlink in between leads
 * out of the root. Here the swap is made deterministically between the check
 * and the open, and the open must come back as a miss with its descriptor
 * closed. (Through HTTP the same race is timing-dependent, so it is staged
 * here on the functions the plugin uses.)
 */
import { constants, mkdirSync, mkdtempSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { descriptorPath, openChecked, openInside, refusalOfReal, sameFile } from '../../../plugins/static/lookup.js'
import { HAS_PROC_FD, eventually, openFilesUnder } from '../../fixtures/static-folder.js'

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const INSIDE = 'inside the root\n'
const OUTSIDE = 'OUTSIDE SECRET\n'

/** `<base>/root/d/f` (inside) and `<base>/outside/f`, made afresh for one test. */
function makeFolders(t: Test) {
  const base = realpathSync(mkdtempSync(join(tmpdir(), 'postern-lookup-')))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  const root = join(base, 'root')
  mkdirSync(join(root, 'd'), { recursive: true })
  mkdirSync(join(base, 'outside'))
  writeFileSync(join(root, 'd', 'f'), INSIDE)
  writeFileSync(join(base, 'outside', 'f'), OUTSIDE)
  writeFileSync(join(root, '.env'), 'PASSWORD=hunter2\n')
  mkdirSync(join(root, 'sub'))
  symlinkSync(join('..', '.env'), join(root, 'sub', 'envlink'))
  /** Swaps `root/d` for a symlink to `../outside` (what an attacker does between check and open). */
  const swapOut = () => {
    renameSync(join(root, 'd'), join(root, 'd_real'))
    symlinkSync(join('..', 'outside'), join(root, 'd'))
  }
  /** Puts the real `root/d` back. */
  const swapBack = () => {
    rmSync(join(root, 'd'))
    renameSync(join(root, 'd_real'), join(root, 'd'))
  }
  return { base, root, swapOut, swapBack }
}

async function noOpenFiles(t: Test, base: string): Promise<void> {
  if (!HAS_PROC_FD) return
  t.ok(await eventually(() => openFilesUnder(base).length === 0), `no descriptor left open (${openFilesUnder(base).join(', ')})`)
}

t.test('a parent folder swapped for a symlink after the check: the open is a miss, its descriptor closed', async (t) => {
  const { base, root, swapOut } = makeFolders(t)
  const real = join(root, 'd', 'f')
  t.equal(realpathSync(real), real)
  t.equal(refusalOfReal(root, real, 'ignore'), null, 'the real path passes the check')
  swapOut()
  const plain = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW)
  t.equal((await plain.readFile()).toString(), OUTSIDE, 'O_NOFOLLOW alone opens the outside file')
  await plain.close()
  t.equal(await openChecked(root, real, 'ignore'), 'miss', 'the descriptor is found outside the root')
  await noOpenFiles(t, base)
  t.equal(await openInside(root, real, 'ignore'), 'miss', 'a fresh look-up refuses it too')
})

t.test('an untouched file opens, and its descriptor says where it is', async (t) => {
  const { root } = makeFolders(t)
  const real = join(root, 'd', 'f')
  const found = await openChecked(root, real, 'ignore')
  if (typeof found === 'string') return t.fail(`refused: ${found}`)
  t.teardown(() => found.handle.close())
  t.equal(found.path, real)
  t.equal(found.stats.size, INSIDE.length)
  t.equal((await found.handle.readFile()).toString(), INSIDE)
  if (HAS_PROC_FD) t.equal(await descriptorPath(found.handle), real, 'the kernel path of the descriptor')
})

t.test('the kernel path of a descriptor opened through a swapped parent is the outside file', { skip: !HAS_PROC_FD && 'no /proc/self/fd' }, async (t) => {
  const { base, root, swapOut } = makeFolders(t)
  const real = join(root, 'd', 'f')
  swapOut()
  const handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW)
  t.teardown(() => handle.close())
  t.equal(await descriptorPath(handle), join(base, 'outside', 'f'))
})

t.test('without /proc: the checked path is still real and names the same device and inode', async (t) => {
  const { root, swapOut, swapBack } = makeFolders(t)
  const real = join(root, 'd', 'f')
  const honest = await open(real, constants.O_RDONLY)
  t.teardown(() => honest.close())
  t.ok(await sameFile(honest, real), 'the file the path names')
  swapOut()
  const swapped = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW)
  t.teardown(() => swapped.close())
  t.notOk(await sameFile(swapped, real), 'the swap still in place: the path is no longer its own real path')
  swapBack()
  t.notOk(await sameFile(swapped, real), 'the swap undone: the outside file opened through it is not the one the path names')
  rmSync(real)
  t.notOk(await sameFile(honest, real), 'a path that is gone names no file')
})

t.test('the dotfiles policy applies to the real path below the root', async (t) => {
  const { base, root } = makeFolders(t)
  const link = join(root, 'sub', 'envlink')
  t.equal(await openInside(root, link, 'ignore'), 'miss', 'ignore: a symlink to a dotfile is as if absent')
  t.equal(await openInside(root, link, 'deny'), 'forbidden', 'deny: 403')
  const allowed = await openInside(root, link, 'allow')
  if (typeof allowed === 'string') return t.fail(`allow refused: ${allowed}`)
  t.equal((await allowed.handle.readFile()).toString(), 'PASSWORD=hunter2\n', 'allow: served')
  await allowed.handle.close()
  await noOpenFiles(t, base)

  t.equal(refusalOfReal(root, join(root, '.git', 'config'), 'ignore'), 'miss')
  t.equal(refusalOfReal(root, join(root, 'a', '.b', 'c'), 'deny'), 'forbidden', 'a dot folder anywhere below the root')
  t.equal(refusalOfReal(root, join(root, 'a.b', 'c.d'), 'deny'), null, 'a dot inside a name is no dotfile')
  t.equal(refusalOfReal(root, root, 'deny'), null, 'the root itself')
  const dotRoot = join(base, '.site')
  t.equal(refusalOfReal(dotRoot, join(dotRoot, 'index.html'), 'deny'), null, 'the root may sit under a dot folder: only the part below it counts')
  t.equal(refusalOfReal(root, `${root}-other/f`, 'allow'), 'miss', 'a sibling sharing the prefix is outside')
})
