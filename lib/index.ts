/**
 * postern's public entry point: the framework, the gateway interface's types,
 * the validator and the server. Parts are also importable on their own:
 * `postern/gateway`, `postern/validate`, `postern/server`, `postern/plugins/*`,
 * `postern/adapters/*`.
 */
export { postern, PluginError, Request, Reply } from './app.js'
export type {
  App,
  AppOptions,
  Handler,
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
  ParamsOf,
  InjectOptions,
  InjectResponse,
  ResponsePlugin,
  Payload,
} from './app.js'
export { inject } from './inject.js'
export { validate, GatewayViolation } from './validate.js'
export type { ValidateOptions, ViolationRule } from './validate.js'
export { createServer, PosternServer } from './server/index.js'
export type { ServerOptions } from './server/index.js'
export { GatewayError, GATEWAY_VERSION } from './gateway.js'
export type { AppResult, Body, BodyIterable, Chunk, Environ, ErrorStream, GatewayApp, GatewayInput, Headers, Middleware, StartResponse, Write } from './gateway.js'
