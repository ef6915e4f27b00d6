// Turns tunnel rows into what the APIs show: the native Tunnel (never a secret: the basic-auth
// hash and the bearer token's hash stay in D1) and the public address visitors use. The address
// depends on where the relay runs: under a real domain it is https on the default port; under
// localhost (wrangler dev) it keeps the scheme and port the API was called on, so the printed
// URL works as is.
import { formatTarget, type Tunnel as TunnelView } from '../../shared/api/tunnels.ts';
import { iso } from '../../shared/db/index.ts';
import type { Tunnel } from '../../shared/db/schema.ts';

export interface UrlBase {
  /** The URL the API was called on. */
  requestUrl: URL;
  /** TUNNEL_DOMAIN, normalized. */
  domain: string;
}

export function isLocalDomain(domain: string): boolean {
  return domain === 'localhost' || domain.endsWith('.localhost') || /^[0-9.]+$/.test(domain);
}

/** `<name>.<domain>` with the port when local: what a browser's address bar shows. */
export function publicHost(name: string, base: UrlBase): string {
  const port = isLocalDomain(base.domain) && base.requestUrl.port ? `:${base.requestUrl.port}` : '';
  return `${name}.${base.domain}${port}`;
}

/** Where TCP clients dial: a WebSocket on the relay's own host. */
export function tcpConnectUrl(name: string, base: UrlBase): string {
  const scheme = base.requestUrl.protocol === 'http:' ? 'ws' : 'wss';
  return `${scheme}://${base.requestUrl.host}/api/v1/tunnels/${name}/connect`;
}

export function publicUrl(row: Pick<Tunnel, 'name' | 'kind'>, base: UrlBase): string {
  if (row.kind === 'tcp') return tcpConnectUrl(row.name, base);
  const scheme = isLocalDomain(base.domain) ? base.requestUrl.protocol.replace(':', '') : 'https';
  return `${scheme}://${publicHost(row.name, base)}`;
}

function accessView(row: Tunnel): TunnelView['access'] {
  if (row.access === 'basic') return { mode: 'basic', username: row.basicUser ?? '' };
  if (row.access === 'bearer') return { mode: 'bearer', ...(row.bearerPrefix ? { token_prefix: row.bearerPrefix } : {}) };
  return { mode: row.access };
}

export function presentTunnel(row: Tunnel, base: UrlBase): TunnelView {
  return {
    id: row.id,
    device_id: row.deviceId,
    name: row.name,
    kind: row.kind,
    target: formatTarget(row.targetHost, row.targetPort),
    target_host: row.targetHost,
    target_port: row.targetPort,
    access: accessView(row),
    rate_limit_per_minute: row.rateLimitPerMinute,
    enabled: row.enabled,
    connected: row.connected,
    allow_clientless: row.allowClientless,
    public_url: publicUrl(row, base),
    created_at: iso(row.createdAt)!,
    updated_at: iso(row.updatedAt)!,
  };
}
