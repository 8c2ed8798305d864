/**
 * Run by tap before and after a covered run (`npm run test:tap`): removes the
 * directory NODE_V8_COVERAGE names. That script sets the variable only so that
 * tsx puts the TypeScript text into its source maps; without it, c8 cannot map
 * V8's counts back to the .ts files and reports every loaded file as 100 %
 * covered. Node also writes its own profiles there (a few hundred MB for the
 * whole suite), which nothing reads.
 */
import { rmSync } from 'node:fs'

rmSync(new URL('../../.tap/node-v8-coverage', import.meta.url), { recursive: true, force: true })
