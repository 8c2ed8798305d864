import t from 'tap'
import { parseStatus } from '../lib/headers.js'
t.equal(parseStatus('200 OK'), 200)
t.equal(parseStatus('200OK'), -1)
