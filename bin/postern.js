#!/usr/bin/env node
// The `postern` command: runs lib/cli.ts through tsx, so no build step is needed.
// Both of tsx's hooks, as `tsx app.ts` has them: the ESM one loads the CLI, and
// together they load an app of any kind (a .ts file outside "type": "module" is CommonJS).
import { register as registerCommonJs } from 'tsx/cjs/api'
import { register } from 'tsx/esm/api'

register()
registerCommonJs()
// lib/cli/import-module.ts registers them itself unless this says it is done.
globalThis[Symbol.for('postern.tsx-hooks')] = true
const { main } = await import('../lib/cli/cli.ts')
const { UsageError } = await import('../lib/cli/load-app.ts')
main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`postern: ${error instanceof UsageError ? error.message : (error?.stack ?? String(error))}\n`)
  process.exit(2)
})
