/**
 * trustProxy on real sockets, on postern's server and on node:http: a
 * trusted peer's Forwarded / X-Forwarded-* headers set the client address,
 * scheme and host; an untrusted peer's change nothing; a client cannot
 * choose its own address by sending a chain; malformed values are ignored;
 * IPv6 and IPv4-mapped addresses match the same trust list.
 */
import t from 'tap'
import type { Test } from 'tap'
import { trustProxy, type TrustProxyOptions } from '../../plugins/proxy.js'
import { app, type Seen } from '../fixtures/proxy-app.js'
import { SERVERS, listen, rawRequest, type ServerKind } from '../fixtures/proxy-client.js'
import type { Teardown } from '../helpers/server.js'

interface Target {
  port: number
  host: string
  /** The Host header that names this server. */
  authority: string
  errors: string[]
}

async function start(t: Teardown, kind: ServerKind, trust: TrustProxyOptions['trust'], host = '127.0.0.1', headers?: TrustProxyOptions['headers']): Promise<Target> {
  const served = await listen(t, kind, trustProxy({ trust, headers })(app), host)
  const authority = host.includes(':') ? `[${host}]:${served.port}` : `${host}:${served.port}`
  return { ...served, host, authority }
}

/** GETs `/` with extra header lines (raw, in order), from `localAddress` if given. */
async function ask(target: Target, lines: string[] = [], localAddress?: string): Promise<Seen> {
  const head = [`GET / HTTP/1.1`, `Host: ${target.authority}`, ...lines].join('\r\n')
  const res = await rawRequest({ port: target.port, host: target.host, localAddress, head })
  if (res.status !== 200) throw new Error(`status ${res.status}: ${res.body.toString()}`)
  return JSON.parse(res.body.toString('utf8')) as Seen
}

/** The request as the server itself saw it: nothing forwarded was believed. */
function untouched(t: Test, seen: Seen, target: Target, remote: string): void {
  t.equal(seen.remoteAddr, remote, 'REMOTE_ADDR is the peer')
  t.not(seen.remotePort, '', 'REMOTE_PORT is the peer port')
  t.equal(seen.scheme, 'http', 'scheme as connected')
  t.equal(seen.host, target.authority, 'Host as sent')
  t.equal(seen.serverPort, String(target.port), 'SERVER_PORT as connected')
}

const SPOOF = ['X-Forwarded-For: 203.0.113.66', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: evil.example', 'X-Forwarded-Port: 8443']

for (const kind of SERVERS) {
  t.test(`${kind}: an untrusted peer's forwarding headers change nothing`, async (t) => {
    // 127.0.0.1 is trusted; 127.0.0.2 is another loopback peer that is not.
    const target = await start(t, kind, '127.0.0.1')
    const seen = await ask(target, SPOOF, '127.0.0.2')
    untouched(t, seen, target, '127.0.0.2')
    t.equal(seen.serverName, '127.0.0.1')
    t.equal(seen.original, null, 'no proxy.original for an untrusted peer')
    t.equal(seen.forwardedFor, '203.0.113.66', 'the header itself is still there for the app to see')
    const forwarded = await ask(target, ['Forwarded: for=203.0.113.66;proto=https;host=evil.example'], '127.0.0.2')
    untouched(t, forwarded, target, '127.0.0.2')
    // The same headers from the trusted address are believed: the difference is the peer.
    const trusted = await ask(target, SPOOF, '127.0.0.1')
    t.equal(trusted.remoteAddr, '203.0.113.66')
    t.same(target.errors, [])
  })

  t.test(`${kind}: a trusted proxy's X-Forwarded-* set address, scheme and host`, async (t) => {
    const target = await start(t, kind, '127.0.0.1')
    const res = await fetch(`http://${target.authority}/`, {
      headers: { 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'app.example.com' },
    })
    t.equal(res.status, 200)
    const seen = (await res.json()) as Seen
    t.equal(seen.remoteAddr, '203.0.113.7')
    t.equal(seen.remotePort, '', 'the proxy did not say the client port')
    t.equal(seen.scheme, 'https')
    t.equal(seen.host, 'app.example.com')
    t.equal(seen.serverName, 'app.example.com')
    t.equal(seen.serverPort, '443', 'the default port of the forwarded scheme')
    t.match(seen.original, {
      REMOTE_ADDR: '127.0.0.1',
      'gateway.url_scheme': 'http',
      HTTP_HOST: target.authority,
      SERVER_NAME: '127.0.0.1',
      SERVER_PORT: String(target.port),
    })
    t.match((seen.original as { REMOTE_PORT: string }).REMOTE_PORT, /^\d+$/)

    const ported = await ask(target, ['X-Forwarded-Proto: https', 'X-Forwarded-Host: app.example.com', 'X-Forwarded-Port: 8443'])
    t.equal(ported.host, 'app.example.com:8443')
    t.equal(ported.serverPort, '8443')
    const hostPortWins = await ask(target, ['X-Forwarded-Host: app.example.com:9000', 'X-Forwarded-Port: 8443'])
    t.equal(hostPortWins.host, 'app.example.com:9000')
    t.equal(hostPortWins.serverPort, '9000')
    const portOnly = await ask(target, ['X-Forwarded-Port: 9443'])
    t.equal(portOnly.host, '127.0.0.1:9443', 'the port replaces the one in Host')
    t.equal(portOnly.serverPort, '9443')
    const proto = await ask(target, ['X-Forwarded-Proto: HTTPS'])
    t.equal(proto.scheme, 'https', 'scheme is case-insensitive')
    t.equal(proto.host, target.authority, 'no host header: Host untouched')
    const listed = await ask(target, ['X-Forwarded-Proto: http, https'])
    t.equal(listed.scheme, 'https', 'the value our peer added (the last) is the one believed')
    t.same(target.errors, [])
  })

  t.test(`${kind}: a client cannot choose its address with a chain of its own`, async (t) => {
    const target = await start(t, kind, '127.0.0.1, 10.0.0.0/8')
    // The client wrote 6.6.6.6 itself; our proxy appended the address it saw.
    t.equal((await ask(target, ['X-Forwarded-For: 6.6.6.6, 203.0.113.7'])).remoteAddr, '203.0.113.7')
    // Two trusted proxies in a row are skipped.
    t.equal((await ask(target, ['X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.0.0.5'])).remoteAddr, '203.0.113.7')
    // Repeated header lines are one list, in order.
    t.equal((await ask(target, ['X-Forwarded-For: 6.6.6.6', 'X-Forwarded-For: 203.0.113.7, 10.1.2.3'])).remoteAddr, '203.0.113.7')
    // A client claiming to be one of our proxies is still the rightmost untrusted hop.
    t.equal((await ask(target, ['X-Forwarded-For: 10.9.9.9, 203.0.113.7'])).remoteAddr, '203.0.113.7')
    // Every hop trusted: the leftmost is the furthest we can see.
    t.equal((await ask(target, ['X-Forwarded-For: 10.0.0.9, 10.0.0.5'])).remoteAddr, '10.0.0.9')
    // Ports on hops (as some balancers add them) are the client's port.
    const withPort = await ask(target, ['X-Forwarded-For: 6.6.6.6, 203.0.113.7:51000'])
    t.equal(withPort.remoteAddr, '203.0.113.7')
    t.equal(withPort.remotePort, '51000')
    t.same(target.errors, [])
  })

  t.test(`${kind}: by default only X-Forwarded-* is believed: a client's Forwarded passed through changes nothing`, async (t) => {
    // nginx, HAProxy and ingress controllers set X-Forwarded-* and pass other headers through:
    // a Forwarded the client wrote must not outrank what its proxy said.
    const target = await start(t, kind, '127.0.0.1')
    const spoofed = await ask(target, ['Forwarded: for=6.6.6.6;proto=https;host=evil.example', 'X-Forwarded-For: 203.0.113.7', 'X-Forwarded-Proto: http'])
    t.equal(spoofed.remoteAddr, '203.0.113.7')
    t.equal(spoofed.scheme, 'http')
    t.equal(spoofed.host, target.authority)
    const only = await ask(target, ['Forwarded: for=6.6.6.6;proto=https'])
    t.equal(only.remoteAddr, '127.0.0.1', 'Forwarded alone is not read either')
    t.equal(only.scheme, 'http')
    t.throws(() => trustProxy({ trust: 'loopback', headers: 'both' as unknown as 'forwarded' }), /headers must be/)
  })

  t.test(`${kind}: with headers: 'forwarded', Forwarded (RFC 7239) is the source and X-Forwarded-* is ignored`, async (t) => {
    const target = await start(t, kind, '127.0.0.1', '127.0.0.1', 'forwarded')
    const xOnly = await ask(target, ['X-Forwarded-For: 198.51.100.1', 'X-Forwarded-Proto: https'])
    t.equal(xOnly.remoteAddr, '127.0.0.1', 'X-Forwarded-For is not read')
    t.equal(xOnly.scheme, 'http')
    const both = await ask(target, [
      'X-Forwarded-For: 198.51.100.1',
      'X-Forwarded-Proto: http',
      'X-Forwarded-Host: other.example',
      'Forwarded: for=192.0.2.60;proto=https;host="shop.example:8443"',
    ])
    t.equal(both.remoteAddr, '192.0.2.60')
    t.equal(both.scheme, 'https')
    t.equal(both.host, 'shop.example:8443')
    t.equal(both.serverName, 'shop.example')
    t.equal(both.serverPort, '8443')

    // The client's own element sits left of the one our proxy appended; its proto and host are not taken either.
    const chain = await ask(target, ['Forwarded: for=6.6.6.6;proto=http;host=evil.example, for="[2001:db8:cafe::17]:4711";proto=https;host=shop.example'])
    t.equal(chain.remoteAddr, '2001:db8:cafe::17')
    t.equal(chain.remotePort, '4711')
    t.equal(chain.scheme, 'https')
    t.equal(chain.host, 'shop.example')
    t.equal(chain.serverPort, '443')

    const lines = await ask(target, ['Forwarded: for=6.6.6.6', 'Forwarded: For="192.0.2.43:47011";Proto=HTTPS'])
    t.equal(lines.remoteAddr, '192.0.2.43', 'two header lines, names case-insensitive')
    t.equal(lines.scheme, 'https')

    const quoted = await ask(target, ['Forwarded: for=192.0.2.1;by="a,b;c=d", for=192.0.2.2'])
    t.equal(quoted.remoteAddr, '192.0.2.2', 'commas and semicolons inside quotes do not split')

    // An obfuscated or unknown client: the walk stops at our proxy, but what the proxy said of the hop holds.
    const hidden = await ask(target, ['Forwarded: for=_hidden;proto=https;host=shop.example'])
    t.equal(hidden.remoteAddr, '127.0.0.1')
    t.equal(hidden.scheme, 'https')
    t.equal(hidden.host, 'shop.example')
    t.equal((await ask(target, ['Forwarded: for=unknown'])).remoteAddr, '127.0.0.1')
    t.same(target.errors, [])
  })

  t.test(`${kind}: malformed values are ignored, never an error`, async (t) => {
    const target = await start(t, kind, '127.0.0.1, 10.0.0.0/8')
    const forwardedTarget = await start(t, kind, '127.0.0.1, 10.0.0.0/8', '127.0.0.1', 'forwarded')
    const cases: Array<[lines: string[], remote: string, why: string]> = [
      [['X-Forwarded-For: not-an-ip'], '127.0.0.1', 'a name is not an address'],
      [['X-Forwarded-For: 203.0.113.7, garbage'], '127.0.0.1', 'a bad hop from our proxy ends the walk at our proxy'],
      [['X-Forwarded-For: garbage, 203.0.113.7'], '203.0.113.7', 'junk left of the client is never read'],
      [['X-Forwarded-For: 10.0.0.2, , 10.0.0.3'], '10.0.0.3', 'an empty hop ends the walk at the last trusted one'],
      [['X-Forwarded-For: 203.0.113.7:99999'], '127.0.0.1', 'port out of range'],
      [['X-Forwarded-For: 999.1.1.1'], '127.0.0.1', 'octet out of range'],
      [['X-Forwarded-For: 127.000.0.1'], '127.0.0.1', 'leading zeros'],
      [['X-Forwarded-For: [::1'], '127.0.0.1', 'unclosed bracket'],
      [['X-Forwarded-For: ,,,'], '127.0.0.1', 'only commas'],
      [['X-Forwarded-For: 203.0.113.\xff'], '127.0.0.1', 'obs-text'],
      [['Forwarded: for="203.0.113.7', 'X-Forwarded-For: 198.51.100.1'], '127.0.0.1', 'unterminated quote: the header is ignored, not patched from X-Forwarded-For'],
      [['Forwarded: for=203.0.113.7;for=198.51.100.1'], '127.0.0.1', 'a repeated parameter'],
      [['Forwarded: for=203.0.113.7;proto'], '127.0.0.1', 'a parameter without a value'],
      [['Forwarded: for=[2001:db8::1]'], '127.0.0.1', 'IPv6 must be quoted'],
      [['Forwarded: for = 203.0.113.7'], '127.0.0.1', 'spaces around ='],
      [['Forwarded: for=203.0.113.7 junk'], '127.0.0.1', 'text after a value'],
    ]
    for (const [lines, remote, why] of cases) {
      const seen = await ask(lines[0]!.startsWith('Forwarded:') ? forwardedTarget : target, lines)
      t.equal(seen.remoteAddr, remote, why)
      t.equal(seen.scheme, 'http', `${why}: scheme untouched`)
    }
    const schemes = ['ftp', 'javascript', 'https://x', '', 'ht tps']
    for (const scheme of schemes) t.equal((await ask(target, [`X-Forwarded-Proto: ${scheme}`])).scheme, 'http', `proto ${JSON.stringify(scheme)}`)
    const hosts = [
      'evil.example/path',
      'user@evil.example',
      'evil.example:0',
      'evil.example:65536',
      'evil.example:80:80',
      '[::g]',
      '[::1',
      'a b',
      'evil.example?x',
      "a'b",
      '\xe9vil.example',
    ]
    for (const host of hosts) {
      const seen = await ask(target, [`X-Forwarded-Host: ${host}`])
      t.equal(seen.host, target.authority, `host ${JSON.stringify(host)} not taken`)
      t.equal(seen.serverName, '127.0.0.1')
    }
    t.equal((await ask(target, ['X-Forwarded-Port: 0'])).serverPort, String(target.port), 'port 0 not taken')
    t.equal((await ask(target, ['X-Forwarded-Port: 8o'])).serverPort, String(target.port), 'port with a letter not taken')
    t.equal((await ask(forwardedTarget, ['Forwarded: for=192.0.2.1;proto=gopher;host="a b"'])).scheme, 'http', 'bad proto in Forwarded')
    const good = await ask(target, ['X-Forwarded-Host: [2001:db8::1]:8080'])
    t.equal(good.host, '[2001:db8::1]:8080', 'a bracketed IPv6 host is well-formed')
    t.equal(good.serverName, '[2001:db8::1]')
    t.same(target.errors, [], 'nothing reached the error log')
    t.same(forwardedTarget.errors, [])
  })

  t.test(`${kind}: IPv6 peers and IPv4-mapped addresses`, async (t) => {
    const v6 = await start(t, kind, '127.0.0.1', '::1')
    const seen = await ask(v6, ['X-Forwarded-For: 2001:DB8:0:0::1'])
    t.equal(seen.remoteAddr, '::1', 'a trust list without ::1 does not trust ::1')

    const v6trusted = await start(t, kind, '::1/128', '::1')
    const canonical = await ask(v6trusted, ['X-Forwarded-For: 2001:DB8:0:0::1'])
    t.equal(canonical.remoteAddr, '2001:db8::1', 'IPv6 hops are normalised')
    t.match(canonical.original, { REMOTE_ADDR: '::1' })
    const v6forwarded = await start(t, kind, '::1/128', '::1', 'forwarded')
    t.equal((await ask(v6forwarded, ['Forwarded: for="[2001:db8::2]:443"'])).remoteAddr, '2001:db8::2')

    const keyword = await start(t, kind, 'loopback', '::1')
    t.equal((await ask(keyword, ['X-Forwarded-For: 2001:db8::3'])).remoteAddr, '2001:db8::3', 'loopback covers ::1')

    // A dual-stack socket sees IPv4 peers as ::ffff:a.b.c.d; they match IPv4 entries.
    const mapped = await start(t, kind, '127.0.0.1', '::ffff:127.0.0.1')
    const viaMapped = await ask(mapped, ['X-Forwarded-For: ::ffff:203.0.113.9'])
    t.equal(viaMapped.remoteAddr, '203.0.113.9', 'mapped hops become IPv4')
    t.match(viaMapped.original, { REMOTE_ADDR: '::ffff:127.0.0.1' }, 'the original is kept as the server saw it')
    const mappedRange = await start(t, kind, '::ffff:127.0.0.0/104', '127.0.0.1')
    t.equal((await ask(mappedRange, ['X-Forwarded-For: 203.0.113.10'])).remoteAddr, '203.0.113.10', 'a mapped range matches plain IPv4')
    for (const target of [v6, v6trusted, keyword, mapped, mappedRange]) t.same(target.errors, [])
  })

  t.test(`${kind}: keywords and trust functions`, async (t) => {
    const loopback = await start(t, kind, ['loopback'])
    t.equal((await ask(loopback, ['X-Forwarded-For: 203.0.113.7'], '127.0.0.2')).remoteAddr, '203.0.113.7', 'loopback covers 127.0.0.0/8')
    const privateOnly = await start(t, kind, 'private')
    t.equal((await ask(privateOnly, ['X-Forwarded-For: 203.0.113.7'])).remoteAddr, '127.0.0.1', 'private does not cover loopback')
    const asked: string[] = []
    const fn = await start(t, kind, (address) => (asked.push(address), address === '127.0.0.1'), '::ffff:127.0.0.1')
    t.equal((await ask(fn, ['X-Forwarded-For: 10.0.0.1, 203.0.113.7'])).remoteAddr, '203.0.113.7')
    t.same(asked, ['127.0.0.1', '203.0.113.7'], 'the function sees normalised addresses, and only as far as the walk goes')
  })
}

t.test('bad trust entries throw at construction, naming the entry', async (t) => {
  const bad: Array<[TrustProxyOptions['trust'], RegExp]> = [
    ['not-an-ip', /"not-an-ip" is not an IP address/],
    ['10.0.0.0/33', /"10.0.0.0\/33" has a prefix length out of range/],
    ['::1/129', /prefix length out of range/],
    ['10.0.0.0/x', /malformed prefix length/],
    ['10.0.0.0/', /malformed prefix length/],
    ['::ffff:10.0.0.0/8', /prefix length out of range/],
    ['127.0.0.1,,10.0.0.1', /empty entry/],
    ['', /lists no addresses/],
    [[], /lists no addresses/],
    ['127.1', /not an IP address/],
    ['localhost', /one of loopback, private, linklocal/],
  ]
  for (const [trust, message] of bad) t.throws(() => trustProxy({ trust }), message, JSON.stringify(trust))
  t.throws(() => trustProxy({ trust: [42] as unknown as string[] }), /must be strings/)
  t.throws(() => trustProxy({} as TrustProxyOptions), /pass \{ trust \}/)
  for (const good of ['LOOPBACK', 'private, linklocal', ' 10.0.0.0/8 , fd00::/8 ', ['::1', '192.168.1.10'], '0.0.0.0/0']) {
    t.doesNotThrow(() => trustProxy({ trust: good }), JSON.stringify(good))
  }
})
