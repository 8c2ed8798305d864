#!/usr/bin/env node
// The `postern` command: runs lib/cli.ts through tsx, so no build step is needed.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../lib/cli/cli.ts')
const { UsageError } = await import('../lib/cli/load-app.ts')
main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`postern: ${error instanceof UsageError ? error.message : (error?.stack ?? String(error))}\n`)
  process.exit(2)
})
