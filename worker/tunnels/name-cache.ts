// Tunnel lookup by name for the public ingress, remembered per isolate for a few seconds: every
// visit needs the tunnel's row, and a D1 round trip per request would double a small request's
// latency. Unknown names are remembered too, so a flood of made-up subdomains costs no queries.
// Any tunnel write made through this isolate clears the cache at once (forgetTunnels); other
// isolates notice within the TTL, and the DeviceHub, which reloads on every change, is the final
// word (it answers x-pirelay-unknown-tunnel for an id it no longer has).
import { findTunnelByName, type NamedTunnel } from './queries.ts';

export const TUNNEL_CACHE_MS = 5_000;
const MAX_ENTRIES = 10_000;
const cache = new Map<string, { tunnel: NamedTunnel | null; until: number }>();

export async function tunnelNamed(d1: D1Database, name: string, now = Date.now()): Promise<NamedTunnel | null> {
  const hit = cache.get(name);
  if (hit && hit.until > now) return hit.tunnel;
  const tunnel = await findTunnelByName(d1, name);
  if (cache.size >= MAX_ENTRIES) cache.clear();
  cache.set(name, { tunnel, until: now + TUNNEL_CACHE_MS });
  return tunnel;
}

export function forgetTunnel(name: string): void {
  cache.delete(name);
}

export function forgetTunnels(): void {
  cache.clear();
}
