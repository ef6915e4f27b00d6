// The request a tunnel visitor's request becomes on its way to the DeviceHub (and from there to
// the target on the device): the relay's own credentials and internal headers removed, the
// hop-by-hop headers of RFC 9110 §7.6.1 dropped (a WebSocket upgrade keeps its Upgrade), the
// usual X-Forwarded-* added, and two internal headers that tell the hub what this is. The body
// is handed on as a stream, never read here, so uploads of any size pass with backpressure.
import type { Tunnel } from '../db/schema.ts';
import { credentialFrom, API_KEY_PREFIX } from '../auth/principal.ts';
import { SESSION_COOKIE } from './credential.ts';

export type ForwardKind = 'tunnel-http' | 'tunnel-tcp';

/** Headers the hub reads; a visitor can never set them (every x-pirelay-* is stripped first). */
export const INTERNAL = {
  kind: 'x-pirelay-kind',
  tunnelId: 'x-pirelay-tunnel-id',
  unknownTunnel: 'x-pirelay-unknown-tunnel',
} as const;

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

/** The Cookie header without the relay's session cookie; null when nothing else is left. */
export function withoutSessionCookie(cookie: string): string | null {
  const kept = cookie
    .split(';')
    .map((c) => c.trim())
    .filter((c) => c && c.split('=', 1)[0]!.trim() !== SESSION_COOKIE);
  return kept.length ? kept.join('; ') : null;
}

export function buildForwardHeaders(req: Request, tunnel: Pick<Tunnel, 'id'>, clientIp: string, opts: ForwardOptions = {}): Headers {
  const headers = new Headers(req.headers);
  const upgrade = isWebSocketUpgrade(req.headers);

  // Connection names further hop-by-hop headers; they go with it.
  const listed = (req.headers.get('connection') ?? '').split(',').map((t) => t.trim().toLowerCase()).filter(Boolean);
  for (const name of [...HOP_BY_HOP, ...listed]) {
    if (upgrade && name === 'upgrade') continue;
    headers.delete(name);
  }
  const internal: string[] = [];
  headers.forEach((_, name) => {
    if (name.startsWith('x-pirelay-')) internal.push(name);
  });
  for (const name of internal) headers.delete(name);

  // A relay API key is never passed on, even to a public tunnel whose visitor sent one by mistake.
  const authorization = req.headers.get('authorization');
  if (authorization && (opts.stripAuthorization || credentialFrom(authorization)?.startsWith(API_KEY_PREFIX))) headers.delete('authorization');
  const cookie = req.headers.get('cookie');
  if (cookie) {
    const rest = withoutSessionCookie(cookie);
    if (rest) headers.set('cookie', rest);
    else headers.delete('cookie');
  }

  const url = new URL(req.url);
  const prior = req.headers.get('x-forwarded-for');
  headers.set('x-forwarded-for', prior ? `${prior}, ${clientIp}` : clientIp);
  headers.set('x-forwarded-proto', url.protocol.replace(':', ''));
  headers.set('x-forwarded-host', req.headers.get('host') ?? url.host);

  headers.set(INTERNAL.kind, opts.kind ?? 'tunnel-http');
  headers.set(INTERNAL.tunnelId, tunnel.id);
  return headers;
}

export function buildForwardRequest(req: Request, tunnel: Pick<Tunnel, 'id'>, clientIp: string, opts: ForwardOptions = {}): Request {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD' && req.body !== null;
  const init: RequestInit & { duplex: 'half' } = {
    method: req.method,
    headers: buildForwardHeaders(req, tunnel, clientIp, opts),
    body: hasBody ? req.body : null,
    redirect: 'manual',
    duplex: 'half',
  };
  return new Request(opts.url ?? req.url, init);
}

/** The visitor's address as Cloudflare reports it; workerd exposes no socket address besides. */
export function clientIpOf(req: Request): string {
  return req.headers.get('cf-connecting-ip')?.trim() || 'unknown';
}
