/**
 * `postern/gateway`: the gateway interface (its types and rules) and the
 * parts a server needs to speak it. Everything here is the gateway core: it
 * imports nothing else of postern.
 */
export * from './spec.js'
