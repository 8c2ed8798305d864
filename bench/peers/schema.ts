/**
 * The request validator for peers that have none built in (node:http, Hono,
 * Express, the bare gateway app): Ajv, compiled once at start-up, the way
 * those stacks' docs suggest validating a JSON body.
 */
import { Ajv } from 'ajv'
import { ECHO_SCHEMA } from '../scenarios.js'

const ajv = new Ajv()
export const validateEcho = ajv.compile(ECHO_SCHEMA)
