/** postern's own HTTP/1.1 server: the public entry point. */
export { createServer, PosternServer } from './server.js'
export type { CloseResult, ListenAddress } from './server.js'
/** @deprecated the framework's `app.listen` options share this name: use {@link ListenAddress}. */
export type { ListenAddress as ListenOptions } from './server.js'
export type { ServerOptions, WebSocketOptions } from './options.js'
export { DEFAULTS, DEFAULT_HOST, DEFAULT_PORT } from './options.js'
export { RequestParser, parseHead, ParseError } from './parser.js'
export type { RequestHead, ParserHandler, ParserLimits } from './parser.js'
