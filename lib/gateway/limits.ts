/**
 * Limits every gateway stack enforces, with their defaults: postern's server,
 * the adapters and the plugins read them from here, so a body limit means the
 * same on every server.
 */

/** Largest request body read by `gateway.input.bytes()` when no limit is given, in bytes (1 MiB). Over it: 413. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024

/** Milliseconds a closing server lets requests in flight finish before it cuts them. */
export const DEFAULT_DRAIN_TIMEOUT = 20_000
