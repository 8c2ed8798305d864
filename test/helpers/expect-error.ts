/**
 * The shared check for a request the server must refuse: the exact status,
 * `Connection: close`, the connection closed, nothing after it — and a
 * second connection, open before the bad request, still served afterwards.
 */
import type { Test } from 'tap'
import { connectionHas } from './raw.js'
import type { Served } from './server.js'

/**
 * Sends `bytes` on a new connection and checks the server refuses them with
 * `status`. `served` must run an app that answers `GET /ok` with 200.
 */
export async function expectRefused(t: Test, served: Served, bytes: string | Buffer, status: number, label: string): Promise<void> {
  const bystander = await served.connect()
  bystander.write('GET /ok HTTP/1.1\r\nHost: x\r\n\r\n')
  const before = await bystander.read()
  t.equal(before.responses[0]?.status, 200, `${label}: bystander connection works before`)
  const r = await served.exchange(bytes, { waitClose: true })
  const res = r.responses[0]
  const shown = JSON.stringify(typeof bytes === 'string' ? bytes : bytes.toString('latin1'))
  t.equal(res?.status, status, `${label}: status for ${shown} (got ${JSON.stringify(r.raw)})`)
  if (res) t.ok(connectionHas(res, 'close'), `${label}: Connection: close`)
  t.equal(r.responses.length, 1, `${label}: exactly one response`)
  t.ok(r.closed, `${label}: connection closed`)
  bystander.write('GET /ok HTTP/1.1\r\nHost: x\r\n\r\n')
  const after = await bystander.read()
  t.equal(after.responses[0]?.status, 200, `${label}: bystander connection unaffected`)
  bystander.destroy()
}
