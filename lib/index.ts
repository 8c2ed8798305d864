/**
 * postern's public entry point: the framework, the gateway interface's types,
 * the validator and the server. Parts are also importable on their own:
 * `postern/gateway`, `postern/validate`, `postern/server`, `postern/plugins/*`,
 * `postern/adapters/*`.
 */
export { postern, PluginError, Request, Reply } from './framework/app.js'
export type {
  App,
  AppOptions,
  Handler,
  HandlerResult,
  RouteHandler,
  RouteShorthand,
  NoDecorations,
  RouteOptions,
  RouteSchema,
  FullRouteOptions,
  Plugin,
  RegisterOptions,
  Hooks,
  HookName,
  RequestHook,
  SendHook,
  ErrorHook,
  CloseHook,
  ErrorHandler,
  ListenOptions,
  Address,
  WebSocketHandler,
  WebSocketRouteOptions,
  WebSocketSchema,
  WebSocketShorthand,
  WebSocketOrigin,
} from './framework/types.js'
export type { ParamsOf, PathParamNames } from './framework/path-params.js'
export type { FromSchema, BodyOf, QueryOf, ParamsFrom, HeadersOf, ReplyOf } from './framework/schema-type.js'
export type { Query, RequestHeaders } from './framework/request.js'
export type { JsonSchema } from '../plugins/json.js'
export type { ResponseFormat, Payload } from '../plugins/response.js'
/** @deprecated Renamed `ResponseFormat`. */
export type { ResponsePlugin } from '../plugins/response.js'
export { cookies } from '../plugins/cookies.js'
export type { CookieJar, CookieOptions, Cookies, CookiesOptions, SetCookieOptions, UnsignResult } from '../plugins/cookies.js'
export { html, raw, htmlStream, Html } from '../plugins/html.js'
export type { HtmlValue } from '../plugins/html.js'
export { requestLogger, LOG_KEY, REQUEST_ID_KEY } from '../plugins/logger.js'
export type { Logger, LoggerOptions, LoggerSetting, RequestLoggerOptions } from '../plugins/logger.js'
export { cors } from '../plugins/cors.js'
export type { CorsOptions, CorsOrigin, OriginFunction, OriginVerdict } from '../plugins/cors.js'
export { compression } from '../plugins/compress.js'
export type { CompressionEncoding, CompressionOptions } from '../plugins/compress.js'
export { serveStatic, staticApp } from '../plugins/static.js'
export type { DotfilesPolicy, StaticFile, StaticOptions } from '../plugins/static.js'
export { inject } from './gateway/inject.js'
export type { InjectOptions, InjectResponse } from './gateway/inject.js'
export { validate, GatewayViolation } from './gateway/validate.js'
export type { ValidateOptions, ViolationRule } from './gateway/validate.js'
export { createServer, PosternServer } from './server/index.js'
export type { ServerOptions } from './server/index.js'
export { GatewayError, GATEWAY_VERSION } from './gateway/spec.js'
export type { GatewayWebSocket, WebSocketAcceptOptions, WebSocketClose, WebSocketMessage, WebSocketUpgrade } from './gateway/websocket.js'
export type { WebSocketOptions } from './gateway/websocket-limits.js'
export { WebSocketClosedError } from './gateway/websocket-transport.js'
export type { AppResult, Body, BodyIterable, Chunk, Environ, ErrorStream, GatewayApp, GatewayInput, Headers, Middleware, StartResponse, Write } from './gateway/spec.js'
