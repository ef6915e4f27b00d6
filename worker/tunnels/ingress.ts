// The public side of http tunnels: a request whose Host is `<name>.<TUNNEL_DOMAIN>` (any port) is
// a visit to tunnel <name>. We find the tunnel (cached per isolate), refuse what the relay can
// refuse on its own (unknown, tcp, disabled, closed, wrong credentials), and hand the rest to the
// device's DeviceHub, which carries it to the agent and returns the target's answer, WebSocket
// upgrades included. A request that came back to us (our CDN-Loop token) or that no target may
// get (TRACE, a `//` path, a header name that is no token) is answered here, before any device
// work. Nothing here buffers a body.
import { RESERVED_TUNNEL_NAMES, TUNNEL_NAME_PATTERN } from '../../shared/api/tunnels.ts';
import { REFUSED_METHODS } from '../../shared/protocol/http-rules.ts';
import { hubFor } from '../devices/hub.ts';
import type { NamedTunnel } from './queries.ts';
import { basicMemo, checkTunnelAccess } from './access.ts';
import { principalFor } from '../auth/middleware.ts';
import { BadVisitError, buildForwardRequest, buildHttpVisit, hasLoopToken, isWebSocketUpgrade } from './forward.ts';
import { INTERNAL } from '../../durable-objects/hub/contract.ts';
import { clientIpOf } from '../client-ip.ts';
import { forgetTunnel, tunnelNamed } from './name-cache.ts';
import { visitorError } from '../../shared/http-pages.ts';

export const DEFAULT_TUNNEL_DOMAIN = 'localhost';

export function tunnelDomain(env: Pick<Env, 'TUNNEL_DOMAIN'>): string {
  return (env.TUNNEL_DOMAIN || DEFAULT_TUNNEL_DOMAIN).trim().toLowerCase().replace(/^\.+|\.+$/g, '') || DEFAULT_TUNNEL_DOMAIN;
}

/**
 * The tunnel name a URL's host names, or null when the host is not `<label>.<domain>` (the relay's
 * own host, deeper subdomains) or the label is one the relay keeps for itself (api., www., …).
 */
export function tunnelNameFromHost(url: URL, domain: string): string | null {
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  const suffix = `.${domain}`;
  if (!host.endsWith(suffix)) return null;
  const label = host.slice(0, -suffix.length);
  if (!TUNNEL_NAME_PATTERN.test(label) || RESERVED_TUNNEL_NAMES.has(label)) return null;
  return label;
}

const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/** A visitor's request no target may get (the agent would refuse it too), or null. */
function badRequest(req: Request, url: URL): Response | null {
  if (REFUSED_METHODS.has(req.method.toUpperCase())) {
    return visitorError(req, 405, 'METHOD_NOT_ALLOWED', `The method ${req.method} is not allowed through a tunnel.`, { allow: ALLOWED_METHODS });
  }
  // A path of "//host/…" could read as a network-path reference on the far side.
  const p = url.pathname;
  if (p[1] === '/' || p[1] === '\\') return visitorError(req, 400, 'BAD_REQUEST', 'The path must not start with "//".');
  return null;
}

function closedWithItsDevice(t: NamedTunnel): boolean {
  return !t.deviceOnline && !t.allowClientless && t.deviceLastSeen !== null && t.updatedAt >= t.deviceLastSeen;
}

/** Why the relay refuses a visit before asking the device, or null when it may go on. */
function refusal(req: Request, name: string, tunnel: NamedTunnel | null): Response | null {
  if (!tunnel) return visitorError(req, 404, 'TUNNEL_NOT_FOUND', `There is no tunnel named "${name}" on this relay.`);
  if (tunnel.kind === 'tcp') {
    return visitorError(req, 400, 'NOT_AN_HTTP_TUNNEL', `"${name}" is a TCP tunnel. Connect with \`pirelay tcp\` (a WebSocket to /api/v1/tunnels/${name}/connect on the relay), not a browser.`);
  }
  if (!tunnel.enabled) return visitorError(req, 503, 'TUNNEL_DISABLED', `The tunnel "${name}" is disabled.`);
  if (!tunnel.connected) {
    // A tunnel without allow_clientless closes when its agent goes away (tunnel-control semantics):
    // closed since its device was last seen, and that device still offline, that is the reason.
    if (closedWithItsDevice(tunnel)) return visitorError(req, 503, 'DEVICE_OFFLINE', `The device behind "${name}" is offline.`);
    return visitorError(req, 503, 'TUNNEL_CLOSED', `The tunnel "${name}" is closed; it serves again once it is connected.`);
  }
  // A device that lost its approval can never come back online; do not let visitors wait for it.
  if (tunnel.deviceStatus !== 'approved') return visitorError(req, 503, 'DEVICE_NOT_APPROVED', `The device behind "${name}" is ${tunnel.deviceStatus}.`);
  return null;
}

export async function visitTunnel(req: Request, env: Env, ctx: ExecutionContext, name: string, url = new URL(req.url)): Promise<Response> {
  // A tunnel whose target leads back into the relay would otherwise multiply one request until the device's streams run out.
  if (hasLoopToken(req.headers.get('cdn-loop'))) return visitorError(req, 508, 'LOOP_DETECTED', `The request to "${name}" came back to the relay: the tunnel's target leads into the relay itself.`);
  const bad = badRequest(req, url);
  if (bad) return bad;
  let tunnel = await tunnelNamed(env.DB, name);
  // A second lookup happens only when the hub says our cached row is stale; a request with a body
  // cannot be retried (its stream went to the first attempt), so it gets the 404 instead.
  for (let attempt = 0; ; attempt++) {
    const refused = refusal(req, name, tunnel);
    if (refused) return refused;
    const t = tunnel!;

    const decision = await checkTunnelAccess(t, req.headers, { principal: (cred) => principalFor(env, ctx, cred), basicMemo });
    if (!decision.allow) {
      return visitorError(req, decision.status, decision.status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN', decision.message, decision.challenge ? { 'www-authenticate': decision.challenge } : {});
    }

    const options = { stripAuthorization: decision.stripAuthorization, kind: 'tunnel-http' } as const;
    let forward: Request;
    try {
      // A plain request travels with its head already in the shape of the stream's OPEN.
      forward = isWebSocketUpgrade(req.headers) ? buildForwardRequest(req, t, clientIpOf(req, env), options) : buildHttpVisit(req, url, t, clientIpOf(req, env), options);
    } catch (e) {
      if (e instanceof BadVisitError) return visitorError(req, 400, 'BAD_REQUEST', `${e.message}.`);
      throw e;
    }
    let res: Response;
    try {
      res = await hubFor(env, t.deviceId).fetch(forward);
    } catch (e) {
      console.error('tunnel forward failed', name, e);
      return visitorError(req, 502, 'TUNNEL_UNREACHABLE', `The relay could not reach the device behind "${name}". Try again shortly.`);
    }
    if (res.status !== 404 || res.headers.get(INTERNAL.unknownTunnel) !== '1') return res;

    forgetTunnel(name);
    await res.body?.cancel();
    if (attempt > 0 || req.body !== null) return visitorError(req, 404, 'TUNNEL_NOT_FOUND', `There is no tunnel named "${name}" on this relay.`);
    tunnel = await tunnelNamed(env.DB, name);
  }
}
