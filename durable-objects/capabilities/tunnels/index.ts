// The tunnels capability on the hub: the device's tunnel table (sent to the agent after its hello
// and whenever the Worker reports a change), visitors proxied over streams the hub opens (HTTP,
// WebSocket, TCP; see proxy.ts), per-tunnel rate limits, and what happens when the agent goes away:
// tunnels without allow_clientless close, and every stream of the old socket was reset with it.
import { ResetCode } from '../../../shared/codes.ts';
import { numberVar } from '../../../shared/env-vars.ts';
import { visitorError } from '../../../shared/http-pages.ts';
import type { MuxStream } from '../../../shared/protocol/mux.ts';
import type { StreamOpen } from '../../../shared/protocol/messages.ts';
import type { HubCapability, HubContext } from '../types.ts';
import { Deadlines } from './deadlines.ts';
import { proxyHttp, proxyTcp, proxyWebSocket, type StreamContext } from './proxy.ts';
import { agentTargets, loadTunnels, TunnelRateLimiter, type HubTunnel } from './table.ts';
import type { VisitHead } from '../../hub/contract.ts';

/** allow_clientless visitors wait only for an agent that left less than this long ago. */
const CLIENTLESS_RECENT_MS = 5 * 60_000;

/** A tunnel visit as the contract let it in. */
export interface Visit {
  kind: 'tunnel-http' | 'tunnel-tcp';
  tunnelId: string;
  upgrade: boolean;
  head?: VisitHead;
}

export class TunnelsCapability implements HubCapability {
  readonly name = 'tunnels';
  private tunnels: Map<string, HubTunnel> | null = null;
  /** Open streams per tunnel, so closing or deleting a tunnel can cut its traffic at once. */
  private readonly tunnelStreams = new Map<string, Set<MuxStream>>();
  private readonly rateLimiter = new TunnelRateLimiter();
  /** ACCEPT deadlines of this hub's streams, on one timer. */
  private readonly deadlines = new Deadlines();

  async onHello(hub: HubContext): Promise<void> {
    // Before the agent is ready: it has its tunnel table before any OPEN.
    this.tunnels = await loadTunnels(hub.env.DB, hub.deviceId);
    hub.send({ t: 'tunnels', tunnels: agentTargets(this.tunnels) });
  }

  /** The old socket's streams were reset with its mux; tunnels without allow_clientless close (tunnel-control semantics). */
  async onGone(hub: HubContext): Promise<void> {
    this.tunnelStreams.clear();
    const res = await hub.env.DB.prepare('UPDATE tunnels SET connected = 0, updated_at = ?1 WHERE device_id = ?2 AND allow_clientless = 0 AND connected = 1')
      .bind(Date.now(), hub.deviceId)
      .run();
    if (res.meta.changes) this.tunnels = await loadTunnels(hub.env.DB, hub.deviceId);
  }

  /** The Worker changed this device's tunnels: reload them, tell the agent, cut what was closed. */
  async changed(hub: HubContext): Promise<void> {
    // Never loaded and no agent to tell: load on first use.
    if (!this.tunnels && !hub.agent()) return;
    this.tunnels = await loadTunnels(hub.env.DB, hub.deviceId);
    for (const [id, streams] of this.tunnelStreams) {
      const t = this.tunnels.get(id);
      if (!t || !t.enabled || !t.connected) for (const s of streams) s.reset(ResetCode.TUNNEL_CLOSED, 'the tunnel was closed');
    }
    hub.send({ t: 'tunnels', tunnels: agentTargets(this.tunnels) });
  }

  async visit(hub: HubContext, request: Request, visit: Visit): Promise<Response> {
    const tunnel = await this.tunnel(hub, visit.tunnelId);
    if (!tunnel) return visitorError(request, 404, 'UNKNOWN_TUNNEL', 'No such tunnel', { 'x-pirelay-unknown-tunnel': '1' });
    if (!tunnel.enabled) return visitorError(request, 503, 'TUNNEL_DISABLED', `Tunnel ${tunnel.name} is disabled`);
    if (!tunnel.connected) return visitorError(request, 503, 'TUNNEL_CLOSED', `Tunnel ${tunnel.name} is closed`);
    if (visit.kind === 'tunnel-tcp' && (tunnel.kind !== 'tcp' || !visit.upgrade)) {
      return visitorError(request, tunnel.kind !== 'tcp' ? 400 : 426, 'NOT_A_TCP_TUNNEL', 'TCP tunnels are reached with a WebSocket upgrade');
    }
    if (visit.kind === 'tunnel-http' && tunnel.kind !== 'http') return visitorError(request, 400, 'NOT_AN_HTTP_TUNNEL', `Tunnel ${tunnel.name} carries TCP`);
    const wait = this.rateLimiter.take(tunnel);
    if (wait) return visitorError(request, 429, 'RATE_LIMITED', `Tunnel ${tunnel.name} is over its request limit`, { 'retry-after': String(Math.ceil(wait / 1000)) });

    let ws = hub.readyAgent();
    // allow_clientless: a visitor waits for an agent that is away for a moment (a restart, a
    // network blip), not for one that has been gone for long or never came.
    const goneAt = hub.agentGoneAt();
    const recentlyGone = goneAt !== null && Date.now() - goneAt < CLIENTLESS_RECENT_MS;
    if (!ws && tunnel.allowClientless && (recentlyGone || hub.agent())) ws = await hub.waitForAgent(numberVar(hub.env.CLIENTLESS_WAIT_MS, 30_000));
    if (!ws) return visitorError(request, 503, 'DEVICE_OFFLINE', `The device behind ${tunnel.name} is offline`);
    const agent = ws;
    const streams: StreamContext = {
      open: (o: StreamOpen, options?: { fin?: boolean }) => this.track(tunnel.id, hub.openStream(agent, o, options)),
      deadlines: this.deadlines,
      acceptTimeoutMs: numberVar(hub.env.TUNNEL_ACCEPT_TIMEOUT_MS, 30_000, 100),
    };
    if (visit.kind === 'tunnel-tcp') return proxyTcp(streams, tunnel, request);
    if (visit.upgrade) return proxyWebSocket(streams, tunnel, request);
    return proxyHttp(streams, tunnel, request, visit.head);
  }

  private async tunnel(hub: HubContext, id: string): Promise<HubTunnel | null> {
    if (this.tunnels?.has(id)) return this.tunnels.get(id)!;
    this.tunnels = await loadTunnels(hub.env.DB, hub.deviceId);
    return this.tunnels.get(id) ?? null;
  }

  private track(tunnelId: string, stream: MuxStream): MuxStream {
    let set = this.tunnelStreams.get(tunnelId);
    if (!set) this.tunnelStreams.set(tunnelId, (set = new Set()));
    set.add(stream);
    void stream.closed.then(() => set!.delete(stream));
    return stream;
  }
}
