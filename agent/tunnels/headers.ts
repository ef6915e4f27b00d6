// Header rewriting at the agent end of a tunnel. Hop-by-hop headers describe one connection
// (visitor↔relay, or agent↔target), so forwarding them would lie about ours; everything else
// passes through untouched, including Content-Encoding and every Set-Cookie line.
export type HeaderList = [string, string][];

/** RFC 9110 §7.6.1 connection-specific fields, plus the legacy ones proxies still meet. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The client WebSocket makes its own handshake; the visitor's would collide with it. */
const WS_HANDSHAKE = new Set(['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'sec-websocket-accept']);

/** Header names a Connection header lists are hop-by-hop too (RFC 9110 §7.6.1). */
function connectionTokens(headers: HeaderList): Set<string> {
  const out = new Set<string>();
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== 'connection') continue;
    for (const token of value.split(',')) if (token.trim()) out.add(token.trim().toLowerCase());
  }
  return out;
}

export interface RequestHeaderOptions {
  /** The target's authority: sent as Host so name-based virtual hosts on the device answer. */
  host: string;
  websocket?: boolean;
}

/**
 * The visitor's request headers as the target should see them. Host becomes the target's own
 * authority (a local server configured for `localhost:8080` would not know the tunnel's public
 * name); the public name survives in X-Forwarded-Host, which the relay sets and we only fill in
 * when it is missing.
 */
export function requestHeaders(visitor: HeaderList, opts: RequestHeaderOptions): HeaderList {
  const listed = connectionTokens(visitor);
  const out: HeaderList = [];
  let visitorHost: string | null = null;
  let forwardedHost = false;
  for (const [rawName, value] of visitor) {
    const name = rawName.toLowerCase();
    if (HOP_BY_HOP.has(name) || listed.has(name)) continue;
    if (name === 'host') {
      visitorHost ??= value;
      continue;
    }
    // The agent's client does not do 100-continue; the body is streamed right away instead.
    if (name === 'expect') continue;
    // The framing header is the agent's own (http1.ts writes exactly one from the body it sends):
    // a visitor's Content-Length beside it is how a request gets smuggled.
    if (name === 'content-length') continue;
    if (opts.websocket && WS_HANDSHAKE.has(name)) continue;
    if (name === 'x-forwarded-host') forwardedHost = true;
    out.push([name, wireValue(value)]);
  }
  out.push(['host', opts.host]);
  if (visitorHost && !forwardedHost) out.push(['x-forwarded-host', visitorHost]);
  return out;
}

/**
 * The target's response headers for the visitor, in the order received: hop-by-hop fields (and
 * those its Connection header names) dropped, every other line kept, each Set-Cookie on its own.
 */
export function responseHeaders(headers: HeaderList): HeaderList {
  const listed = connectionTokens(headers);
  const out: HeaderList = [];
  for (const [name, value] of headers) {
    if (HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out.push([name, value]);
  }
  return out;
}

const utf8 = new TextEncoder();

/**
 * A header value as the bytes to send. The relay's runtime hands on header values decoded as
 * UTF-8, and a request head goes out with each character as one byte (latin1; the agent's client
 * refuses any above U+00FF, as fetch does),
 * so a value with non-ASCII characters goes out as its UTF-8 bytes: what the visitor sent, when
 * that was UTF-8 (bytes that were not valid UTF-8 arrive as U+FFFD and cannot be recovered).
 */
export function wireValue(value: string): string {
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) > 0x7e) {
      const bytes = utf8.encode(value);
      let out = '';
      for (let at = 0; at < bytes.length; at += 8192) out += String.fromCharCode(...bytes.subarray(at, at + 8192));
      return out;
    }
  }
  return value;
}

export function headerValue(headers: HeaderList, name: string): string | undefined {
  for (const [n, v] of headers) if (n.toLowerCase() === name) return v;
  return undefined;
}
