/**
 * HTML responses. The `html` tag builds markup from a template, escaping
 * what is interpolated, so user data cannot open a tag or leave a quoted
 * attribute:
 *
 *   html`<p class="${cls}">${name}</p>`          // an Html value
 *
 * Interpolated strings (and anything else turned into text) are escaped
 * (`& < > " '`); numbers are written as they are; arrays are rendered item
 * by item and joined; `Html` values (a nested `html` template, `raw(s)`)
 * are inserted as they are; `null`, `undefined` and booleans render nothing
 * (so `${cond && html`…`}` works). Arrays nested more than
 * {@link MAX_ARRAY_DEPTH} deep, or holding themselves, are a TypeError (not
 * a stack overflow). Escaping makes text safe in element content and in
 * quoted attribute values, not inside `<script>`, `<style>`, unquoted
 * attributes or URLs (`javascript:`): check those yourself.
 *
 * `htmlFormat` sends `Html` values (and {@link htmlStream} streams) as
 * `text/html; charset=utf-8`; `htmlApp(handler)` makes a bare gateway app
 * of a handler, like `text(handler)` and `json(handler)`.
 */
import type { GatewayApp } from '../lib/gateway/spec.js'
import { responder, type ResponseFormat, type ValueHandler } from './response.js'
import { textFormats } from './text.js'

export const HTML_TYPE = 'text/html; charset=utf-8'

/** Markup that is sent as it is: what `html` and `raw` return. */
export class Html {
  /** The markup. */
  readonly html: string
  constructor(html: string) {
    this.html = html
  }
  toString(): string {
    return this.html
  }
}

/** What a template may interpolate (other values are turned into text and escaped). */
export type HtmlValue = Html | string | number | bigint | boolean | null | undefined | readonly HtmlValue[]

const SPECIAL = /[&<>"']/
const SPECIAL_ALL = /[&<>"']/g
const ENTITY: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return SPECIAL.test(text) ? text.replace(SPECIAL_ALL, (c) => ENTITY[c]!) : text
}

/** How deep arrays may nest in one interpolated value; deeper is a mistake, not a page (and would overflow the stack). */
export const MAX_ARRAY_DEPTH = 100

/**
 * Renders one interpolated value as markup. `parents` are the arrays being
 * rendered around `value`, outermost first: one of them met again is a cycle.
 */
function render(value: unknown, parents: unknown[] = []): string {
  if (typeof value === 'string') return escapeHtml(value)
  if (value instanceof Html) return value.html
  if (value === null || value === undefined || typeof value === 'boolean') return ''
  if (typeof value === 'number' || typeof value === 'bigint') return String(value)
  if (Array.isArray(value)) {
    if (parents.includes(value)) throw new TypeError('html: an array contains itself (directly or through another array); it cannot be rendered')
    if (parents.length >= MAX_ARRAY_DEPTH) throw new TypeError(`html: arrays nested more than ${MAX_ARRAY_DEPTH} deep; flatten the value before interpolating it`)
    parents.push(value)
    let out = ''
    for (let i = 0; i < value.length; i++) out += render(value[i], parents)
    parents.pop()
    return out
  }
  if (typeof (value as { then?: unknown }).then === 'function') {
    throw new TypeError('html: a promise was interpolated; await it before the template (or stream the page with htmlStream)')
  }
  return escapeHtml(String(value))
}

/** The tag: `html\`<p>${name}</p>\`` is an {@link Html} value with `name` escaped. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? strings.raw[0]!
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? strings.raw[i + 1]!)
  return new Html(out)
}

/** Trusted markup, inserted unescaped (never pass it user input). */
export function raw(markup: string): Html {
  return new Html(String(markup))
}

/**
 * A page sent as it is produced: each chunk of `source` (`Html`, or text to
 * escape, as in a template) goes out when it is ready, so the browser can
 * show the head of a page while its end is still being computed.
 */
export class HtmlStream implements AsyncIterable<string> {
  private readonly source: AsyncIterable<HtmlValue> | Iterable<HtmlValue>
  constructor(source: AsyncIterable<HtmlValue> | Iterable<HtmlValue>) {
    this.source = source
  }
  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    // for-await passes an early return (the client left) on to the source.
    for await (const chunk of this.source) {
      const markup = render(chunk)
      if (markup !== '') yield markup
    }
  }
}

/** Streams a page from an (async) iterable of chunks, e.g. an async generator yielding `html` values. */
export function htmlStream(source: AsyncIterable<HtmlValue> | Iterable<HtmlValue>): HtmlStream {
  return new HtmlStream(source)
}

/** `Html` values and {@link HtmlStream}s → `text/html; charset=utf-8` (a plain string stays text/plain). */
export const htmlFormat: ResponseFormat = {
  name: 'html',
  accepts: (value) => value instanceof Html || value instanceof HtmlStream,
  serialize: (value) => ({ type: HTML_TYPE, payload: value instanceof Html ? value.html : (value as HtmlStream) }),
}

/** The formats of {@link htmlApp}: HTML first, then strings, bytes and streams as text does. */
export const htmlFormats: readonly ResponseFormat[] = [htmlFormat, ...textFormats]

/** A gateway app answering with the handler's `Html` value as a page (strings, bytes and streams as `text(handler)` does; `undefined` → 204). */
export function htmlApp(handler: ValueHandler): GatewayApp {
  return responder(handler, htmlFormats)
}
