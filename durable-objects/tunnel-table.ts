// The hub's copy of its device's tunnels: loaded from D1 when first needed and again whenever
// the Worker reports a change (tunnelsChanged), so the hot path never queries D1. Also the
// per-tunnel request budget (a token bucket per tunnel, refilled continuously).
import type { TunnelTarget } from '../shared/protocol/messages.ts';

export interface HubTunnel {
  id: string;
  deviceId: string;
  name: string;
  kind: 'http' | 'tcp';
  targetHost: string;
  targetPort: number;
  enabled: boolean;
  connected: boolean;
  allowClientless: boolean;
  rateLimitPerMinute: number | null;
}

interface TunnelRow {
  id: string;
  device_id: string;
  name: string;
  kind: 'http' | 'tcp';
  target_host: string;
  target_port: number;
  enabled: number;
  connected: number;
  allow_clientless: number;
  rate_limit_per_minute: number | null;
}

const COLUMNS = 'id, device_id, name, kind, target_host, target_port, enabled, connected, allow_clientless, rate_limit_per_minute';

function fromRow(r: TunnelRow): HubTunnel {
  return {
    id: r.id,
    deviceId: r.device_id,
    name: r.name,
    kind: r.kind,
    targetHost: r.target_host,
    targetPort: r.target_port,
    enabled: !!r.enabled,
    connected: !!r.connected,
    allowClientless: !!r.allow_clientless,
    rateLimitPerMinute: r.rate_limit_per_minute,
  };
}

export async function loadTunnels(db: D1Database, deviceId: string): Promise<Map<string, HubTunnel>> {
  const { results } = await db.prepare(`SELECT ${COLUMNS} FROM tunnels WHERE device_id = ?1`).bind(deviceId).all<TunnelRow>();
  return new Map(results.map((r) => [r.id, fromRow(r)]));
}

/** The device a tunnel belongs to, for a hub that has not learned its device id yet. */
export async function deviceOfTunnel(db: D1Database, tunnelId: string): Promise<string | null> {
  const row = await db.prepare('SELECT device_id FROM tunnels WHERE id = ?1').bind(tunnelId).first<{ device_id: string }>();
  return row?.device_id ?? null;
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
