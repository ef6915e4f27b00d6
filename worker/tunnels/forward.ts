// The request a tunnel visitor's request becomes on its way to the DeviceHub (and from there to
// the target on the device): the relay's own credentials and internal headers removed, the
// hop-by-hop headers of RFC 9110 §7.6.1 dropped (a WebSocket upgrade keeps its Upgrade), the
// usual X-Forwarded-* added, our CDN-Loop token appended, and two internal headers that tell the
// hub what this is. The body is handed on as a stream, never read here, so uploads of any size
// pass with backpressure; a Content-Length goes along only when it frames exactly that stream.
import type { Tunnel } from '../../shared/db/schema.ts';
import { parseContentLength, TOKEN } from '../../shared/protocol/http-rules.ts';
import { isRelayAuthorization, withoutSessionCookie } from './credential.ts';
import { INTERNAL, type VisitHead } from '../../durable-objects/hub/contract.ts';

export type ForwardKind = 'tunnel-http' | 'tunnel-tcp';

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'proxy-authorization'];

export interface ForwardOptions {
  /** The Authorization header was the tunnel's own credential (basic, bearer or pirelay). */
  stripAuthorization?: boolean;
  kind?: ForwardKind;
  /** The URL the hub sees; the visitor's by default. */
  url?: string;
}

export function isWebSocketUpgrade(headers: Headers): boolean {
  return headers.get('upgrade')?.trim().toLowerCase() === 'websocket';
}

/** The relay's token in CDN-Loop (RFC 8586): a request that already carries it came back to us. */
export const LOOP_TOKEN = 'pirelay';

/** Whether a CDN-Loop value (a list of `token[; params]`, other CDNs' too) holds our token. */
export function hasLoopToken(value: string | null): boolean {
  if (!value) return false;
  for (const entry of value.split(',')) {
    const semi = entry.indexOf(';');
    if ((semi < 0 ? entry : entry.slice(0, semi)).trim().toLowerCase() === LOOP_TOKEN) return true;
  }
  return false;
}

/** A visitor's request no target may get, found while its headers are walked (the relay answers 400). */
export class BadVisitError extends Error {
  override name = 'BadVisitError';
}

/** What leaves for the target: the visitor's headers, cleaned, plus X-Forwarded-*. */
type HeaderList = [string, string][];

const HOP_BY_HOP_SET = new Set(HOP_BY_HOP);

/**
 * The visitor's headers as the target gets them, in one pass and without copying a Headers object
 * (this runs once per tunnel request): hop-by-hop headers and those Connection names dropped (an
 * upgrade keeps its Upgrade), every x-pirelay-* and CF-Connecting-IP dropped, the relay's own credentials dropped, a
 * Content-Length that does not frame the body we hand on dropped, X-Forwarded-For (appended to),
 * -Proto and -Host set, and our CDN-Loop token appended. A header name that is no token throws
 * BadVisitError.
 */
function forwardHeaderList(req: Request, clientIp: string, opts: Pick<ForwardOptions, 'stripAuthorization'> = {}): HeaderList {
  const h = req.headers;
  const upgrade = isWebSocketUpgrade(h);
  const connection = h.get('connection');
  const listed = connection ? new Set(connection.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean)) : null;
  // With Transfer-Encoding workerd framed the body by its chunks (RFC 9112 §6.3): a Content-Length
  // beside it describes nothing we hand on, and a target that trusted it would read the rest of
  // the body as another request.
  const chunked = h.has('transfer-encoding');
  const out: HeaderList = [];
  let host: string | null = null;
  let prior: string | null = null;
  let loop: string | null = null;
  h.forEach((value, name) => {
    if ((HOP_BY_HOP_SET.has(name) || listed?.has(name)) && !(upgrade && name === 'upgrade')) return;
    if (name.startsWith('x-pirelay-')) return;
    switch (name) {
      case 'authorization':
        // A relay credential is never passed on, even to a public tunnel whose visitor sent one by mistake.
        if (opts.stripAuthorization || isRelayAuthorization(value)) return;
        break;
      case 'content-length':
        if (chunked || parseContentLength(value) === null) return;
        break;
      case 'cdn-loop':
        loop = value;
        return;
      case 'cookie': {
        const rest = withoutSessionCookie(value);
        if (rest) out.push([name, rest]);
        return;
      }
      case 'x-forwarded-for':
        prior = value;
        return;
      // The address the relay believes is in X-Forwarded-For; a visitor's own copy of the edge's
      // header (spoofable wherever the edge did not set it) never reaches the target.
      case 'cf-connecting-ip':
        return;
      case 'x-forwarded-proto':
      case 'x-forwarded-host':
        return;
      case 'host':
        host = value;
        break;
      default:
        // workerd refuses most names that are no HTTP token but lets bytes above 0x7f through; a
        // target's parser may read such a name differently from ours, so it never leaves.
        if (!TOKEN.test(name)) throw new BadVisitError(`the header name ${JSON.stringify(name.slice(0, 64))} is not an HTTP token`);
    }
    out.push([name, value]);
  });
  const https = req.url.startsWith('https:');
  out.push(['x-forwarded-for', prior ? `${prior}, ${clientIp}` : clientIp]);
  out.push(['x-forwarded-proto', https ? 'https' : 'http']);
  out.push(['x-forwarded-host', host ?? new URL(req.url).host]);
  out.push(['cdn-loop', loop ? `${loop}, ${LOOP_TOKEN}` : LOOP_TOKEN]);
  return out;
}

export function buildForwardHeaders(req: Request, tunnel: Pick<Tunnel, 'id'>, clientIp: string, opts: ForwardOptions = {}): Headers {
  const headers = new Headers(forwardHeaderList(req, clientIp, opts));
  headers.set(INTERNAL.kind, opts.kind ?? 'tunnel-http');
  headers.set(INTERNAL.tunnelId, tunnel.id);
  return headers;
}

/**
 * The request a plain (non-upgrade) HTTP visit becomes: its head travels as one JSON header in the
 * shape the hub's OPEN needs, so neither side builds or walks a Headers object of the visitor's
 * headers (this runs for every tunnel request). Accept stays, for the hub's own error pages.
 */
export function buildHttpVisit(req: Request, url: URL, tunnel: Pick<Tunnel, 'id'>, clientIp: string, opts: ForwardOptions = {}): Request {
  const head: VisitHead = { method: req.method, path: url.pathname + url.search, headers: forwardHeaderList(req, clientIp, opts) };
  const headers: Record<string, string> = { [INTERNAL.kind]: opts.kind ?? 'tunnel-http', [INTERNAL.tunnelId]: tunnel.id, [INTERNAL.head]: JSON.stringify(head) };
  const accept = req.headers.get('accept');
  if (accept) headers.accept = accept;
  return forwarded(req, req.url, headers);
}

/** The visitor's request with other headers; its body is handed on as a stream, never read. */
function forwarded(req: Request, url: string, headers: HeadersInit): Request {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD' && req.body !== null;
  const init: RequestInit & { duplex: 'half' } = { method: req.method, headers, body: hasBody ? req.body : null, redirect: 'manual', duplex: 'half' };
  return new Request(url, init);
}

export function buildForwardRequest(req: Request, tunnel: Pick<Tunnel, 'id'>, clientIp: string, opts: ForwardOptions = {}): Request {
  return forwarded(req, opts.url ?? req.url, buildForwardHeaders(req, tunnel, clientIp, opts));
}
