/**
 * Defect 9 of issue 9, the smaller ones: a status reason with U+0080–U+00FF
 * goes out as Latin-1 bytes (obs-text), one above U+00FF is refused (500);
 * chunk extensions follow RFC 9112 §7.1.1 exactly; and `maxConnections`
 * bounds the open connections: past it a plain-HTTP client gets a fast 503
 * with `Connection: close` and `Retry-After` and is closed, a TLS client is
 * closed before its handshake, and the connections already open are served.
 */
import t from 'tap'
import { RawClient, connectionHas, header } from '../helpers/raw.js'
import { fdsBack, makeCert, openSockets, startServer } from '../helpers/process.js'

t.test('status reasons: obs-text is sent as Latin-1, wider characters are refused', async (t) => {
  const s = await startServer(t, {})
  const c = await RawClient.connect(s.port)
  t.teardown(() => c.destroy())
  c.write('GET /status/oke HTTP/1.1\r\nHost: x\r\n\r\n')
  const r = await c.read()
  const line = Buffer.from(r.raw, 'latin1').subarray(0, r.raw.indexOf('\r\n'))
  t.same([...line], [...Buffer.from('HTTP/1.1 200 Ok\u00e9', 'latin1')], `'200 Oké' arrives as the bytes ... 4F 6B E9 (got ${line.toString('hex')})`)
  t.equal(r.responses[0]?.body.toString(), 'latin-1 reason')

  const wide = await s.get('/status/wide')
  t.equal(wide?.status, 500, 'a reason with U+0100 is refused: 500')
  t.notMatch(wide?.raw.toString('latin1') ?? '', /Ok/, 'and the refused reason is not sent in any form')
  t.equal((await s.get('/hello'))?.status, 200, 'a well-behaved client is answered')
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
})

t.test('chunk extensions: exactly RFC 9112 §7.1.1', async (t) => {
  const s = await startServer(t, {})
  // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), chunk-ext-val = token / quoted-string
  const valid = ['2;a', '2;a=b', '2;a="q"', '2;a="q\\"x"', '2;a=""', '2 ;a', '2 ; a = b', '2\t;\ta\t=\tb', '2;a;b=c', "2;!#$%&'*+-.^_`|~=x"]
  const invalid = ['2;', '2; ', '2;=x', '2;a=', '2;a= ', '2;;a', '2;a b', '2;a=b c', '2;a="q', '2;a="q"x', '2;a=@', '2;a=\x7f', '2;a=b;', '2 ', '2 a']
  for (const ext of valid) {
    const r = await s.exchange(`POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${ext}\r\nab\r\n0\r\n\r\n`)
    t.equal(r.responses[0]?.status, 200, `valid ${JSON.stringify(ext)}: 200 (${JSON.stringify(r.raw.slice(0, 40))})`)
    t.equal(r.responses[0]?.body.toString(), 'ab', `valid ${JSON.stringify(ext)}: the body is read`)
  }
  for (const ext of invalid) {
    const r = await s.exchange(`POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${ext}\r\nab\r\n0\r\n\r\n`, { waitClose: true, timeout: 1000 })
    t.equal(r.responses[0]?.status, 400, `invalid ${JSON.stringify(ext)}: 400 (${JSON.stringify(r.raw.slice(0, 40))})`)
    t.ok(r.closed, `invalid ${JSON.stringify(ext)}: the connection is closed`)
  }
  await fdsBack(t, s, 1000)
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
})

t.test('maxConnections: past it, a fast 503 with Connection: close and Retry-After; the others are still served', async (t) => {
  const max = 20
  const s = await startServer(t, { options: { maxConnections: max } })
  const held: RawClient[] = []
  t.teardown(() =>
    held.forEach((c) => {
      c.destroy()
    }),
  )
  for (let i = 0; i < max; i++) {
    const c = await RawClient.connect(s.port)
    held.push(c)
    c.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n')
    const r = await c.read()
    if (r.responses[0]?.status !== 200) t.fail(`connection ${i} not served: ${r.raw}`)
  }
  for (let i = 0; i < 5; i++) {
    const c = await RawClient.connect(s.port, { timeout: 2000 })
    const began = Date.now()
    c.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n')
    const r = await c.read()
    const res = r.responses[0]
    t.equal(res?.status, 503, `connection ${max + 1 + i}: 503 (${JSON.stringify(r.raw.slice(0, 60))})`)
    if (res !== undefined) {
      t.ok(connectionHas(res, 'close'), 'Connection: close')
      t.match(header(res, 'retry-after') ?? '', /^\d+$/, 'Retry-After in seconds')
    }
    t.ok(await c.closed(1000), 'and closed')
    t.ok(Date.now() - began < 1000, `fast (${Date.now() - began} ms)`)
    c.destroy()
  }
  for (const [i, c] of held.entries()) {
    c.write('GET /hello?again HTTP/1.1\r\nHost: x\r\n\r\n')
    const r = await c.read()
    if (r.responses[0]?.body.toString() !== 'hello again') t.fail(`held connection ${i} not served again: ${r.raw}`)
  }
  t.pass(`the ${max} open connections are still served`)
  held.forEach((c) => {
    c.destroy()
  })
  await fdsBack(t, s, 1000)
  t.equal((await s.get('/hello'))?.status, 200, 'with the connections gone, a new client is served')
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
})

t.test('maxConnections: a flood of silent connections past the limit holds no descriptors for long', async (t) => {
  const max = 20
  const flood = 300
  const s = await startServer(t, { options: { maxConnections: max } })
  const held = await openSockets(t, s.port, max)
  await s.waitFdsAtLeast(s.baseline + max, 1000)
  // They send nothing and never read: each refusal's 503 is never taken.
  const over = await openSockets(t, s.port, flood)
  const peak = await s.waitFdsAtLeast(s.baseline + max + flood, 500)
  const left = await s.waitFds(s.baseline + max, 2000)
  t.ok(left >= 0 && left <= s.baseline + max, `within 2 s only the ${max} admitted connections are held (${left - s.baseline}; peak ${peak - s.baseline})`)
  // Read now: each refused client finds a 503 or a closed connection, never a served request.
  let refused = 0
  for (const sock of over.sockets) {
    sock.on('data', (d: Buffer) => {
      if (d.toString('latin1').startsWith('HTTP/1.1 503 ')) refused++
    })
    sock.resume()
  }
  t.equal(await over.allClosed(2000), flood, `every connection past the limit is closed (${refused} with a 503 first)`)
  held.sockets.forEach((sock) => {
    sock.destroy()
  })
  await fdsBack(t, s, 1000)
  t.equal((await s.get('/hello'))?.status, 200, 'a well-behaved client is answered after')
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
})

const cert = makeCert()
t.test('maxConnections on TLS: past it, a connection is closed before the handshake', { skip: cert === null ? 'no openssl' : false }, async (t) => {
  const max = 10
  const s = await startServer(t, { tls: cert!, options: { maxConnections: max } })
  const held = await openSockets(t, s.port, max, { tlsHandshake: true })
  const over = await openSockets(t, s.port, 5)
  t.equal(await over.allClosed(1000), 5, 'the connections past the limit are closed')
  t.ok(s.fds() <= s.baseline + max, `the server holds no more than ${max} client sockets (${s.fds() - s.baseline})`)
  // The held connections still work.
  let served = 0
  await Promise.all(
    held.sockets.map(
      (sock) =>
        new Promise<void>((resolve) => {
          let text = ''
          const timer = setTimeout(resolve, 2000)
          sock.on('data', (d: Buffer) => {
            text += d.toString('latin1')
            if (text.endsWith('hello')) {
              served++
              clearTimeout(timer)
              resolve()
            }
          })
          sock.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n')
        }),
    ),
  )
  t.equal(served, max, `the ${max} open TLS connections are served`)
  held.sockets.forEach((sock) => {
    sock.destroy()
  })
  await fdsBack(t, s, 1000)
  t.equal((await s.get('/hello'))?.status, 200, 'with the connections gone, a new TLS client is served')
  const exit = await s.stop()
  t.equal(exit.code, 0, `exit code 0 after SIGTERM (${exit.ms} ms)`)
})
