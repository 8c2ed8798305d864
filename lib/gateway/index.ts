/**
 * `postern/gateway`: the gateway interface (its types and rules) and the
 * parts a server needs to speak it: the environ builder, the runner that
 * calls an app, the error policy, the request-body input and the limits.
 * A new server subclasses `GatewayCall` and implements its sink methods.
 * Everything here is the gateway core: it imports nothing else of postern.
 */
export * from './spec.js'
export { GatewayViolation, RULE_SIDE, checkHeaders, checkStatus, chunkLength, hasNoBody, type HeaderFacts, type RuleId } from './rules.js'
export { describeError, errorAnswer, errorStatus, publicMessage, reportError, statusOf, stderrStream } from './errors.js'
export { MALFORMED_PATH, buildEnviron, type ConnectionInfo, type Mount } from './environ.js'
export { GatewayCall } from './runner.js'
export { chunkBytes, joinChunks } from './chunks.js'
export { StreamInput } from './stream-input.js'
export { DEFAULT_BODY_LIMIT, DEFAULT_DRAIN_TIMEOUT } from './limits.js'
