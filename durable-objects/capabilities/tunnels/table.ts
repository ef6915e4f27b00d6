// The hub's copy of its device's tunnels: loaded from D1 when first needed and again whenever
// the Worker reports a change (tunnelsChanged), so the hot path never queries D1. Also the
// per-tunnel request budget (a token bucket per tunnel, refilled continuously).
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/d1';
import type { TunnelTarget } from '../../../shared/protocol/tunnels.ts';
import { tunnels, type Tunnel } from '../../../shared/db/schema.ts';

/** What the hub needs of a tunnel row. */
export type HubTunnel = Pick<Tunnel, 'id' | 'deviceId' | 'name' | 'kind' | 'targetHost' | 'targetPort' | 'enabled' | 'connected' | 'allowClientless' | 'rateLimitPerMinute'>;

const COLUMNS = {
  id: tunnels.id,
  deviceId: tunnels.deviceId,
  name: tunnels.name,
  kind: tunnels.kind,
  targetHost: tunnels.targetHost,
  targetPort: tunnels.targetPort,
  enabled: tunnels.enabled,
  connected: tunnels.connected,
  allowClientless: tunnels.allowClientless,
  rateLimitPerMinute: tunnels.rateLimitPerMinute,
} as const;

export async function loadTunnels(db: D1Database, deviceId: string): Promise<Map<string, HubTunnel>> {
  const rows: HubTunnel[] = await drizzle(db).select(COLUMNS).from(tunnels).where(eq(tunnels.deviceId, deviceId));
  return new Map(rows.map((r) => [r.id, r]));
}

/** What the agent may connect to: only enabled tunnels, with their fixed targets. */
export function agentTargets(tunnels: Map<string, HubTunnel>): TunnelTarget[] {
  return [...tunnels.values()]
    .filter((t) => t.enabled)
    .map((t) => ({ id: t.id, name: t.name, kind: t.kind, target_host: t.targetHost, target_port: t.targetPort }));
}

/** Token buckets, one per tunnel with a limit; forgotten when the limit changes. */
export class TunnelRateLimiter {
  private buckets = new Map<string, { tokens: number; at: number; limit: number }>();

  /** Takes one request from the tunnel's budget; returns ms to wait if there is none left. */
  take(tunnel: HubTunnel, now = Date.now()): number {
    const limit = tunnel.rateLimitPerMinute;
    if (!limit) return 0;
    let b = this.buckets.get(tunnel.id);
    if (!b || b.limit !== limit) {
      b = { tokens: limit, at: now, limit };
      this.buckets.set(tunnel.id, b);
    }
    b.tokens = Math.min(limit, b.tokens + ((now - b.at) * limit) / 60_000);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 60_000) / limit);
  }
}
