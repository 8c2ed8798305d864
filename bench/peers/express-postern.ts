/** The Express app of express.ts on postern's server through `fromNode`: the same app, the server swapped. */
import { fromNode } from '../../lib/adapters/from-node.js'
import type { NodeListener } from '../../lib/adapters/from-node.js'
import type { Serve } from '../peer.js'
import { expressApp } from './express.js'
import { listenPostern } from './postern-host.js'

export const serve: Serve = (route, options) => listenPostern(fromNode(expressApp(route) as unknown as NodeListener), options)
