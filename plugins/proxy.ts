/**
 * `trustProxy({ trust })`: gateway middleware for apps behind a reverse
 * proxy, like werkzeug's ProxyFix but with an explicit list of trusted
 * peers. Only when the connection's peer (`REMOTE_ADDR`) is trusted are the
 * proxy's headers believed:
 *
 * - One family of headers, the one the proxy sets (`headers`): by default
 *   `X-Forwarded-For`, `-Proto`, `-Host` and `-Port`, what nginx, HAProxy
 *   and Kubernetes ingress controllers send; or `Forwarded` (RFC 7239).
 *   The other family is ignored, so a client cannot slip in the headers its
 *   proxy does not set.
 * - `REMOTE_ADDR` (and `REMOTE_PORT`): the address chain is walked from the
 *   right, skipping trusted hops; the first untrusted address is the client.
 *   Addresses a client wrote itself sit to the left of it and are never
 *   reached, so a client cannot choose its own address.
 * - `gateway.url_scheme` (`http` or `https` only) and the host (`HTTP_HOST`,
 *   `SERVER_NAME`, `SERVER_PORT`; only a well-formed host is taken).
 *
 * From any other peer these headers change nothing. A malformed value is
 * ignored, never an error. What the server saw is kept in
 * `environ['proxy.original']` whenever the peer was trusted.
 *
 * The proxy must set (or clear) the headers of the family it is trusted for;
 * `X-Forwarded-Host` and `-Port` in particular pass through unless cleared.
 */
import net from 'node:net'
import type { Environ, Middleware } from '../lib/gateway/spec.js'
import { TOKEN } from '../lib/gateway/headers.js'

export interface TrustProxyOptions {
  /**
   * The peers that are proxies: addresses and CIDR ranges, IPv4 or IPv6
   * (`'127.0.0.1'`, `'10.0.0.0/8'`, `'fd00::/8'`), the keywords `loopback`,
   * `private` (RFC 1918 and unique-local IPv6) and `linklocal`, as a list or
   * one comma-separated string; or a function given the peer's address
   * (IPv4-mapped IPv6 already turned into IPv4).
   */
  trust: string | readonly string[] | ((address: string) => boolean)
  /** Which headers the proxy sets: `'x-forwarded'` (the default) or `'forwarded'` (RFC 7239). */
  headers?: 'x-forwarded' | 'forwarded'
}

/** What the server filled in before {@link trustProxy} rewrote it: `environ['proxy.original']`. */
export interface ProxyOriginal {
  REMOTE_ADDR: string
  REMOTE_PORT: string
  'gateway.url_scheme': 'http' | 'https'
  HTTP_HOST: string | undefined
  SERVER_NAME: string
  SERVER_PORT: string
}

/** The environ key holding the {@link ProxyOriginal}. */
export const PROXY_ORIGINAL = 'proxy.original'

/** Named ranges a trust list may use instead of spelling them out. */
const KEYWORDS: ReadonlyMap<string, readonly string[]> = new Map([
  ['loopback', ['127.0.0.0/8', '::1/128']],
  ['private', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']],
  ['linklocal', ['169.254.0.0/16', 'fe80::/10']],
])

const MAPPED_V4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/

/**
 * An IP address in one canonical spelling (IPv6 lower-case and compressed,
 * zone dropped, IPv4-mapped IPv6 as plain IPv4), or null when `value` is not
 * an address. One spelling per address keeps matching and logs honest.
 */
export function normalizeAddress(value: string): string | null {
  const family = net.isIP(value)
  if (family === 4) return value
  if (family !== 6) return null
  const canonical = new net.SocketAddress({ address: value, family: 'ipv6' }).address
  return MAPPED_V4.exec(canonical)?.[1] ?? canonical
}

/** Compiles the trust option into a predicate over normalized addresses; throws on a bad entry. */
export function trustPredicate(trust: TrustProxyOptions['trust']): (address: string) => boolean {
  if (typeof trust === 'function') return trust
  const entries = typeof trust === 'string' ? (trust.trim() === '' ? [] : trust.split(',')) : trust
  if (!Array.isArray(entries)) throw new TypeError('trustProxy: `trust` must be a string, a list of strings or a function')
  if (entries.length === 0) throw new Error('trustProxy: `trust` lists no addresses; give at least one address, range or keyword')
  const list = new net.BlockList()
  for (const raw of entries as readonly unknown[]) {
    if (typeof raw !== 'string') throw new TypeError(`trustProxy: trust entries must be strings, got ${typeof raw}`)
    const entry = raw.trim()
    if (entry === '') throw new Error(`trustProxy: empty entry in trust list ${JSON.stringify(trust)}`)
    const ranges = KEYWORDS.get(entry.toLowerCase())
    if (ranges !== undefined) for (const range of ranges) addEntry(list, range, range)
    else addEntry(list, entry, raw)
  }
  return (address) => list.check(address, net.isIP(address) === 6 ? 'ipv6' : 'ipv4')
}

function addEntry(list: net.BlockList, entry: string, raw: string): void {
  const bad = (why: string) =>
    new Error(`trustProxy: ${JSON.stringify(raw)} ${why}; expected an IP address, a CIDR range such as 10.0.0.0/8, or one of ${[...KEYWORDS.keys()].join(', ')}`)
  const slash = entry.indexOf('/')
  const addressPart = slash === -1 ? entry : entry.slice(0, slash)
  const address = normalizeAddress(addressPart)
  if (address === null) throw bad('is not an IP address')
  const family = net.isIP(address) === 6 ? 'ipv6' : 'ipv4'
  if (slash === -1) {
    list.addAddress(address, family)
    return
  }
  const prefixText = entry.slice(slash + 1)
  if (!/^\d{1,3}$/.test(prefixText)) throw bad('has a malformed prefix length')
  let prefix = Number(prefixText)
  // An IPv4-mapped range (::ffff:10.0.0.0/104) is the IPv4 range it maps.
  if (family === 'ipv4' && net.isIP(addressPart) === 6) prefix -= 96
  if (prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) throw bad('has a prefix length out of range')
  list.addSubnet(address, prefix, family)
}

/** A hop's node: its address and port (`''` when not given). */
interface Node {
  address: string
  port: string
}

const PORT = /^\d{1,5}$/

function validPort(port: string): boolean {
  return PORT.test(port) && Number(port) > 0 && Number(port) <= 65535
}

/**
 * Parses one hop of `X-Forwarded-For` or a `Forwarded` `for=` value:
 * `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`, or a
 * bare IPv6 address. Null for `unknown`, obfuscated names and anything
 * malformed: the walk cannot see past such a hop.
 */
function parseNode(value: string): Node | null {
  let host = value
  let port = ''
  if (value.startsWith('[')) {
    const end = value.indexOf(']')
    if (end === -1) return null
    host = value.slice(1, end)
    const rest = value.slice(end + 1)
    if (net.isIP(host) !== 6) return null
    if (rest !== '') {
      if (!rest.startsWith(':')) return null
      port = rest.slice(1)
    }
  } else if (net.isIP(value) === 0) {
    const colon = value.indexOf(':')
    if (colon === -1) return null
    host = value.slice(0, colon)
    port = value.slice(colon + 1)
    if (net.isIP(host) !== 4) return null
  }
  // An obfuscated port (`_abc`, RFC 7239 §6.3) names no real port: keep the address.
  if (port !== '' && !validPort(port)) {
    if (!/^_[A-Za-z0-9._-]+$/.test(port)) return null
    port = ''
  }
  const address = normalizeAddress(host)
  return address === null ? null : { address, port }
}

/** The client found by walking the hops right to left, and which hop's element describes it. */
interface Walked extends Node {
  /** Index of the last hop examined, -1 when there were none. */
  index: number
}

/**
 * Walks the hops from the right. Each hop was appended by the proxy to its
 * right (the rightmost by our trusted peer); while that proxy is trusted its
 * entry is believed. The first untrusted address is the client; a hop that
 * is not an address ends the walk at the last trusted one.
 */
function walk(hops: readonly string[], peer: Node, trusted: (address: string) => boolean): Walked {
  let current: Node = peer
  let index = -1
  for (let i = hops.length - 1; i >= 0; i--) {
    index = i
    const node = parseNode(hops[i]!.trim())
    if (node === null) break
    current = node
    if (!trusted(node.address)) break
  }
  return { ...current, index }
}

const OWS = (c: number) => c === 0x20 || c === 0x09

/**
 * Parses a `Forwarded` value (RFC 7239 §4) into its elements, each a map of
 * lower-cased parameter names to values (quoted strings unquoted). Null when
 * any part is malformed or a parameter repeats within an element: a header
 * that cannot be read whole is not believed in part.
 */
export function parseForwarded(value: string): Array<Map<string, string>> | null {
  const elements: Array<Map<string, string>> = []
  let element = new Map<string, string>()
  const n = value.length
  let i = 0
  for (;;) {
    while (i < n && OWS(value.charCodeAt(i))) i++
    if (i >= n) break
    const c = value.charCodeAt(i)
    if (c === 0x2c /* , */) {
      if (element.size > 0) elements.push(element)
      element = new Map()
      i++
      continue
    }
    if (c === 0x3b /* ; */) {
      i++
      continue
    }
    const nameStart = i
    while (i < n && TOKEN[value.charCodeAt(i)] === 1) i++
    if (i === nameStart || value.charCodeAt(i) !== 0x3d /* = */) return null
    const name = value.slice(nameStart, i).toLowerCase()
    i++
    let parameter: string
    if (value.charCodeAt(i) === 0x22 /* " */) {
      i++
      parameter = ''
      for (;;) {
        if (i >= n) return null
        const q = value.charCodeAt(i)
        if (q === 0x22) break
        if (q === 0x5c /* \ */) {
          i++
          if (i >= n) return null
        } else if (q < 0x20 ? q !== 0x09 : q === 0x7f) return null
        parameter += value[i]
        i++
      }
      i++
    } else {
      const start = i
      while (i < n && TOKEN[value.charCodeAt(i)] === 1) i++
      if (i === start) return null
      parameter = value.slice(start, i)
    }
    if (element.has(name)) return null
    element.set(name, parameter)
    while (i < n && OWS(value.charCodeAt(i))) i++
    if (i < n && value[i] !== ',' && value[i] !== ';') return null
  }
  if (element.size > 0) elements.push(element)
  return elements
}

/** A host as `Host` carries it: name (brackets kept for IPv6) and port (`''` when absent). */
interface Host {
  name: string
  port: string
}

const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/

/**
 * Parses a forwarded host: a DNS name, an IPv4 address or a bracketed IPv6
 * address, with an optional port. Stricter than RFC 3986's reg-name on
 * purpose: the value ends up in URLs the app builds.
 */
function parseHost(value: string | undefined): Host | null {
  if (value === undefined || value.length > 261) return null
  const match = HOST.exec(value)
  if (match === null) return null
  const name = match[1]!
  const port = match[2] ?? ''
  if (name.startsWith('[') && net.isIP(name.slice(1, -1)) !== 6) return null
  if (port !== '' && !validPort(port)) return null
  return { name, port }
}

function parseScheme(value: string | undefined): 'http' | 'https' | null {
  const scheme = value?.trim().toLowerCase()
  return scheme === 'http' || scheme === 'https' ? scheme : null
}

/** The last of a comma-separated list: the value our trusted peer set. */
function last(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  return value.slice(value.lastIndexOf(',') + 1).trim()
}

/** What the proxy says about the request, each part already checked. */
interface Forwarding {
  client: Node | null
  scheme: 'http' | 'https' | null
  host: Host | null
  port: string | null
}

function fromForwarded(header: string, peer: Node, trusted: (address: string) => boolean): Forwarding | null {
  const elements = parseForwarded(header)
  if (elements === null || elements.length === 0) return null
  const walked = walk(
    elements.map((e) => e.get('for') ?? ''),
    peer,
    trusted,
  )
  // The element the walk stopped in was written by a trusted proxy, about the hop the client made.
  const element = elements[walked.index]!
  return { client: walked, scheme: parseScheme(element.get('proto')), host: parseHost(element.get('host')), port: null }
}

function fromXForwarded(environ: Environ, peer: Node, trusted: (address: string) => boolean): Forwarding {
  const forwardedFor = environ.HTTP_X_FORWARDED_FOR
  const client = forwardedFor === undefined || forwardedFor.trim() === '' ? null : walk(forwardedFor.split(','), peer, trusted)
  const port = last(environ.HTTP_X_FORWARDED_PORT)
  return {
    client,
    scheme: parseScheme(last(environ.HTTP_X_FORWARDED_PROTO)),
    host: parseHost(last(environ.HTTP_X_FORWARDED_HOST)),
    port: port !== undefined && validPort(port) ? port : null,
  }
}

function apply(environ: Environ, forwarding: Forwarding): void {
  const { client, scheme, host, port } = forwarding
  if (client !== null && client.address !== environ.REMOTE_ADDR) {
    environ.REMOTE_ADDR = client.address
    environ.REMOTE_PORT = client.port
  }
  if (scheme !== null) environ['gateway.url_scheme'] = scheme
  const defaultPort = environ['gateway.url_scheme'] === 'https' ? '443' : '80'
  const target = host ?? (port !== null ? parseHost(environ.HTTP_HOST) : null)
  if (target === null) return
  const effectivePort = target.port !== '' && host !== null ? target.port : (port ?? defaultPort)
  environ.SERVER_NAME = target.name
  environ.SERVER_PORT = effectivePort
  environ.HTTP_HOST = effectivePort === defaultPort ? target.name : `${target.name}:${effectivePort}`
}

/** Honours a trusted proxy's forwarding headers; see the file's comment for the rules. */
export function trustProxy(options: TrustProxyOptions): Middleware {
  if (options === null || typeof options !== 'object' || options.trust === undefined) {
    throw new TypeError('trustProxy: pass { trust }, the addresses, ranges or keywords of your proxies')
  }
  const trusted = trustPredicate(options.trust)
  const family = options.headers ?? 'x-forwarded'
  if (family !== 'x-forwarded' && family !== 'forwarded') throw new TypeError(`trustProxy: headers must be 'x-forwarded' or 'forwarded', got ${JSON.stringify(family)}`)
  const useForwarded = family === 'forwarded'
  return (app) => (environ, startResponse) => {
    const address = normalizeAddress(environ.REMOTE_ADDR)
    if (address === null || !trusted(address)) return app(environ, startResponse)
    const original: ProxyOriginal = {
      REMOTE_ADDR: environ.REMOTE_ADDR,
      REMOTE_PORT: environ.REMOTE_PORT,
      'gateway.url_scheme': environ['gateway.url_scheme'],
      HTTP_HOST: environ.HTTP_HOST,
      SERVER_NAME: environ.SERVER_NAME,
      SERVER_PORT: environ.SERVER_PORT,
    }
    environ[PROXY_ORIGINAL] = original
    const peer = { address: environ.REMOTE_ADDR, port: environ.REMOTE_PORT }
    const forwarded = environ.HTTP_FORWARDED
    const forwarding = !useForwarded ? fromXForwarded(environ, peer, trusted) : forwarded !== undefined && forwarded.trim() !== '' ? fromForwarded(forwarded, peer, trusted) : null
    if (forwarding !== null) apply(environ, forwarding)
    return app(environ, startResponse)
  }
}
