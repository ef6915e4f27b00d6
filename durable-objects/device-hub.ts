// DeviceHub: one Durable Object per device (idFromName(deviceId)). It owns the agent's single
// hibernatable WebSocket, answers heartbeats without waking (auto-response), runs RPCs to the
// agent with deadlines, notices silent agents with an alarm, writes online/offline and
// last-seen to D1 when they change, and tells the FleetHub (the live status stream). State that
// must outlive hibernation lives in storage or in the socket's attachment; in-memory fields only
// hold what dies with in-flight requests anyway.
import { DurableObject } from 'cloudflare:workers';
import {
  AgentMessageSchema,
  HEARTBEAT_PING,
  HEARTBEAT_PONG,
  RpcMethods,
  isRpcMethod,
  parseMessage,
  type HubMessage,
  type RpcError,
} from '../shared/protocol/messages.ts';
import { PROTOCOL_VERSION, RELAY_VERSION } from '../shared/version.ts';
import { CloseCode } from '../shared/constants.ts';
import { DeviceFactsSchema, type DeviceFacts } from '../shared/api/device-info.ts';
import { StreamMux, type MuxStream, type StreamOpen } from '../shared/protocol/streams.ts';
import { FRAME_BATCH_FEATURE, FrameBatcher } from '../shared/protocol/batch.ts';
import { agentTargets, deviceOfTunnel, loadTunnels, TunnelRateLimiter, type HubTunnel } from './tunnel-table.ts';
import { proxyHttp, proxyTcp, proxyWebSocket, type StreamContext } from './tunnel-proxy.ts';
import { Deadlines } from './deadlines.ts';
import { numberVar } from '../worker/env-vars.ts';
import { visitorError } from '../worker/tunnels/pages.ts';
import type { IdentityConflictRecord } from '../worker/db/schema.ts';
import { fleetHubFor, publishStatus, type FleetHubStub } from './fleet/publish.ts';

/** What the Worker gets back from `call`: errors are values, since classes do not cross RPC. */
export type HubCallResult = { ok: true; result: unknown } | { ok: false; error: RpcError };

export interface HubStatus {
  online: boolean;
  connectedAt: number | null;
  agentVersion: string | null;
  capabilities: string[];
}

/** Where the Worker tells the hub which address an agent's connection came from. */
export const AGENT_ADDRESS_HEADER = 'x-pirelay-agent-address';

interface SocketAttachment {
  deviceId: string;
  connectedAt: number;
  /** The address the agent connected from (for the identity-conflict record). */
  address?: string;
  helloAt: number | null;
  agentVersion: string | null;
  capabilities: string[];
  /** The agent reads BATCH frames (hello feature `frame-batch`). */
  batches?: boolean;
}

interface Pending {
  resolve: (r: HubCallResult) => void;
  timer: ReturnType<typeof setTimeout>;
  method: string;
}

/** A device is offline after this many heartbeat intervals of silence. */
const MISSED_HEARTBEATS = 3;
/** How often a connected device's last-seen time is refreshed in D1. */
const LAST_SEEN_WRITE_MS = 60_000;
/** allow_clientless visitors wait only for an agent that left less than this long ago. */
const CLIENTLESS_RECENT_MS = 5 * 60_000;
/** A replacement this long after the last one starts a new identity-conflict record. */
const CONFLICT_WINDOW_MS = 24 * 60 * 60_000;
const CONFLICT_ADDRESSES = 8;
/** Storage keys of used connect-token ids (`jti:<id>` → until when the token could be used). */
const JTI_PREFIX = 'jti:';
/** The last status told to the FleetHub, so an offline is told once per online. */
const ANNOUNCED_KEY = 'announced';
interface Announced {
  status: 'online' | 'offline';
  name?: string;
  hostname?: string;
}
/** storage.delete takes at most this many keys at once. */
const STORAGE_BATCH = 128;

export class DeviceHub extends DurableObject<Env> {
  private pending = new Map<number, Pending>();
  private nextRpcId = 1;
  private badFrames = 0;
  /** Streams of the current agent socket; rebuilt for each socket (stale ids die with the old one). */
  private mux: StreamMux | null = null;
  private muxSocket: WebSocket | null = null;
  private batcher: FrameBatcher | null = null;
  /** Open streams per tunnel, so closing or deleting a tunnel can cut its traffic at once. */
  private tunnelStreams = new Map<string, Set<MuxStream>>();
  private tunnels: Map<string, HubTunnel> | null = null;
  private rateLimiter = new TunnelRateLimiter();
  /** ACCEPT deadlines of this hub's streams, on one timer. */
  private deadlines = new Deadlines();
  /** Visitors of allow_clientless tunnels waiting for the agent to come back. */
  private agentWaiters = new Set<() => void>();
  /** When the agent's last socket went away (this instance's memory; null after a restart). */
  private agentGoneAt: number | null = null;
  /** readySocket()'s answer, kept while that socket stays open. */
  private ready: WebSocket | null = null;
  /** One stub for every status event, so they reach the FleetHub in order. */
  private fleet: FleetHubStub | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT_PING, HEARTBEAT_PONG));
  }

  private get heartbeatMs(): number {
    return numberVar(this.env.HEARTBEAT_INTERVAL_MS, 10_000, 100);
  }

  /**
   * Only the Worker calls this: a tunnel visitor it has already let in (x-pirelay-kind), or the
   * agent's WebSocket upgrade after it verified the agent's JWT.
   */
  async fetch(request: Request): Promise<Response> {
    const kind = request.headers.get('x-pirelay-kind');
    if (kind === 'tunnel-http' || kind === 'tunnel-tcp') return this.onVisitor(request, kind);
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') return new Response('expected a WebSocket upgrade', { status: 426 });
    const deviceId = request.headers.get('x-pirelay-device-id');
    if (!deviceId) return new Response('missing device id', { status: 400 });

    const address = request.headers.get(AGENT_ADDRESS_HEADER) ?? 'unknown';

    // A second connection from the same device replaces the first. That is how a restarted agent
    // takes over from its half-dead old socket; if the old agent is alive it backs off after 4000.
    const replaced = this.ctx.getWebSockets().filter((ws) => ws.readyState === WebSocket.OPEN);
    for (const old of this.ctx.getWebSockets()) this.closeSocket(old, CloseCode.REPLACED, 'replaced by a newer connection');
    this.failPending('DEVICE_OFFLINE', 'the device reconnected before answering');

    const pair = new WebSocketPair();
    const server = pair[1];
    this.ctx.acceptWebSocket(server);
    const now = Date.now();
    const attachment: SocketAttachment = { deviceId, connectedAt: now, address, helloAt: null, agentVersion: null, capabilities: [] };
    server.serializeAttachment(attachment);
    if (replaced.length) await this.recordReplacement(deviceId, replaced, address, now);
    await this.ctx.storage.put('deviceId', deviceId);
    await this.setOnline(deviceId, true, now);
    await this.ctx.storage.setAlarm(now + this.heartbeatMs);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (typeof message !== 'string') return this.muxFor(ws).receive(message);
    const msg = parseMessage(AgentMessageSchema, message);
    if (!msg) return this.rejectFrame(`invalid control message: ${message.slice(0, 200)}`);
    switch (msg.t) {
      case 'hello':
        return this.onHello(ws, msg.protocol, msg.agent_version, msg.capabilities, msg.facts, msg.features ?? []);
      case 'ping':
        return this.send(ws, { t: 'pong' });
      case 'pong':
        return;
      case 'res': {
        const p = this.pending.get(msg.id);
        if (!p) return; // answered after its deadline: nothing waits for it any more
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        if (!msg.ok) return p.resolve({ ok: false, error: msg.error ?? { code: 'DEVICE_ERROR', message: 'the device reported an error' } });
        const schema = isRpcMethod(p.method) ? RpcMethods[p.method].result : null;
        const parsed = schema ? schema.safeParse(msg.result) : null;
        if (parsed && !parsed.success) {
          console.warn(`device answered ${p.method} with an invalid result`, parsed.error.issues.slice(0, 3));
          return p.resolve({ ok: false, error: { code: 'BAD_DEVICE_RESPONSE', message: `the device's ${p.method} result did not match the protocol` } });
        }
        return p.resolve({ ok: true, result: parsed ? parsed.data : msg.result });
      }
    }
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    await this.onSocketGone(ws, `closed (${code}${reason ? `: ${reason}` : ''})`);
  }

  async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    await this.onSocketGone(ws, `error: ${String(error)}`);
  }

  /** Closes agents that stopped answering heartbeats, and keeps last-seen fresh in D1. */
  async alarm(): Promise<void> {
    const now = Date.now();
    const deadline = this.heartbeatMs * MISSED_HEARTBEATS;
    for (const ws of this.ctx.getWebSockets()) {
      const att = ws.deserializeAttachment() as SocketAttachment | null;
      const lastPing = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
      const last = Math.max(lastPing, att?.connectedAt ?? 0);
      if (now - last > deadline) this.closeSocket(ws, CloseCode.HEARTBEAT_TIMEOUT, 'no heartbeat');
    }
    const deviceId = await this.ctx.storage.get<string>('deviceId');
    const live = this.liveSocket();
    // D1 hears about a live device once a minute (last-seen), about a dead one at once.
    const lastWrite = (await this.ctx.storage.get<number>('lastSeenWrittenAt')) ?? 0;
    if (deviceId && (!live || now - lastWrite >= LAST_SEEN_WRITE_MS)) await this.setOnline(deviceId, !!live, now);
    if (live) await this.ctx.storage.setAlarm(now + this.heartbeatMs);
    else {
      this.failPending('DEVICE_OFFLINE', 'the device went silent');
      if (deviceId) await this.announce(deviceId, 'offline');
    }
  }

  // ---- methods the Worker calls through the stub ----

  /** Sends one RPC to the agent and waits for its answer or the deadline. */
  async call(method: string, params: unknown, timeoutMs: number): Promise<HubCallResult> {
    const ws = this.liveSocket();
    if (!ws) return { ok: false, error: { code: 'DEVICE_OFFLINE', message: 'the device is not connected' } };
    const id = this.nextRpcId++;
    return new Promise<HubCallResult>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, error: { code: 'DEVICE_TIMEOUT', message: `the device did not answer ${method} within ${timeoutMs} ms` } });
      }, timeoutMs);
      this.pending.set(id, { resolve, timer, method });
      try {
        this.send(ws, { t: 'req', id, method, params });
      } catch {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve({ ok: false, error: { code: 'DEVICE_OFFLINE', message: 'the device connection dropped' } });
      }
    });
  }

  /**
   * Marks a connect token (by its jti) used; false if it was used before. The Worker asks before
   * it lets a token through, so each token opens at most one connection or answers one probe.
   * Kept here rather than in D1: the hub is the one place that serializes a device's requests,
   * and the entries are few (a token lives two minutes at most) and pruned as they expire.
   */
  async claimConnectToken(jti: string, usableUntil: number): Promise<boolean> {
    const now = Date.now();
    const used = await this.ctx.storage.list<number>({ prefix: JTI_PREFIX });
    const expired = [...used].filter(([, until]) => until <= now).map(([key]) => key);
    for (let i = 0; i < expired.length; i += STORAGE_BATCH) await this.ctx.storage.delete(expired.slice(i, i + STORAGE_BATCH));
    const key = JTI_PREFIX + jti;
    if ((used.get(key) ?? 0) > now) return false;
    await this.ctx.storage.put(key, usableUntil);
    return true;
  }

  /** Closes the agent's socket, e.g. when the device is revoked or rejected. */
  async disconnect(reason: string): Promise<void> {
    for (const ws of this.ctx.getWebSockets()) this.closeSocket(ws, CloseCode.REVOKED, reason);
    this.failPending('DEVICE_OFFLINE', 'the device was disconnected');
    const deviceId = await this.ctx.storage.get<string>('deviceId');
    if (deviceId) {
      await this.setOnline(deviceId, false, Date.now());
      await this.announce(deviceId, 'offline');
    }
  }

  /** The Worker changed this device's tunnels: reload them, tell the agent, cut what was closed. */
  async tunnelsChanged(): Promise<void> {
    const deviceId = await this.ctx.storage.get<string>('deviceId');
    if (!deviceId) {
      this.tunnels = null; // never connected: load on first use
      return;
    }
    this.tunnels = await loadTunnels(this.env.DB, deviceId);
    for (const [id, streams] of this.tunnelStreams) {
      const t = this.tunnels.get(id);
      if (!t || !t.enabled || !t.connected) for (const s of streams) s.reset('TUNNEL_CLOSED', 'the tunnel was closed');
    }
    const ws = this.liveSocket();
    if (ws) this.send(ws, { t: 'tunnels', tunnels: agentTargets(this.tunnels) });
  }

  async status(): Promise<HubStatus> {
    const ws = this.liveSocket();
    const att = ws ? (ws.deserializeAttachment() as SocketAttachment) : null;
    return {
      online: !!ws,
      connectedAt: att?.connectedAt ?? null,
      agentVersion: att?.agentVersion ?? null,
      capabilities: att?.capabilities ?? [],
    };
  }

  // ---- internals ----

  private muxFor(ws: WebSocket): StreamMux {
    if (this.mux && this.muxSocket === ws) return this.mux;
    this.dropMux('replaced by a newer connection');
    this.muxSocket = ws;
    // Small frames of one turn share a message (see batch.ts) once the agent said it reads them.
    this.batcher = new FrameBatcher({
      send: (message) => ws.send(message),
      schedule: (flush) => setTimeout(flush, 0),
      enabled: (ws.deserializeAttachment() as SocketAttachment | null)?.batches === true,
      onError: (message) => this.rejectFrame(message),
    });
    this.mux = new StreamMux(this.batcher, {
      side: 'hub',
      onOpen: (stream) => stream.reset('REFUSED', 'the hub accepts no streams from agents'),
      onError: (message) => this.rejectFrame(message),
    });
    return this.mux;
  }

  private dropMux(reason: string): void {
    this.mux?.resetAll('SOCKET_CLOSED', reason);
    this.mux = null;
    this.muxSocket = null;
    this.batcher = null;
    this.tunnelStreams.clear();
  }

  private async tunnel(id: string): Promise<HubTunnel | null> {
    if (this.tunnels?.has(id)) return this.tunnels.get(id)!;
    const deviceId = (await this.ctx.storage.get<string>('deviceId')) ?? (await deviceOfTunnel(this.env.DB, id));
    if (!deviceId) return null;
    this.tunnels = await loadTunnels(this.env.DB, deviceId);
    return this.tunnels.get(id) ?? null;
  }

  private async onVisitor(request: Request, kind: 'tunnel-http' | 'tunnel-tcp'): Promise<Response> {
    const tunnel = await this.tunnel(request.headers.get('x-pirelay-tunnel-id') ?? '');
    if (!tunnel) return visitorError(request, 404, 'UNKNOWN_TUNNEL', 'No such tunnel', { 'x-pirelay-unknown-tunnel': '1' });
    if (!tunnel.enabled) return visitorError(request, 503, 'TUNNEL_DISABLED', `Tunnel ${tunnel.name} is disabled`);
    if (!tunnel.connected) return visitorError(request, 503, 'TUNNEL_CLOSED', `Tunnel ${tunnel.name} is closed`);
    const isUpgrade = request.headers.get('upgrade')?.toLowerCase() === 'websocket';
    if (kind === 'tunnel-tcp' && (tunnel.kind !== 'tcp' || !isUpgrade)) {
      return visitorError(request, tunnel.kind !== 'tcp' ? 400 : 426, 'NOT_A_TCP_TUNNEL', 'TCP tunnels are reached with a WebSocket upgrade');
    }
    if (kind === 'tunnel-http' && tunnel.kind !== 'http') return visitorError(request, 400, 'NOT_AN_HTTP_TUNNEL', `Tunnel ${tunnel.name} carries TCP`);
    const wait = this.rateLimiter.take(tunnel);
    if (wait) return visitorError(request, 429, 'RATE_LIMITED', `Tunnel ${tunnel.name} is over its request limit`, { 'retry-after': String(Math.ceil(wait / 1000)) });

    let ws = this.readySocket();
    // allow_clientless: a visitor waits for an agent that is away for a moment (a restart, a
    // network blip), not for one that has been gone for long or never came.
    const recentlyGone = this.agentGoneAt !== null && Date.now() - this.agentGoneAt < CLIENTLESS_RECENT_MS;
    if (!ws && tunnel.allowClientless && (recentlyGone || this.liveSocket())) ws = await this.waitForAgent(this.clientlessWaitMs);
    if (!ws) return visitorError(request, 503, 'DEVICE_OFFLINE', `The device behind ${tunnel.name} is offline`);
    const streams: StreamContext = {
      open: (o: StreamOpen, options?: { fin?: boolean }) => this.track(tunnel.id, this.muxFor(ws!).open(o, options)),
      deadlines: this.deadlines,
      acceptTimeoutMs: numberVar(this.env.TUNNEL_ACCEPT_TIMEOUT_MS, 30_000, 100),
    };
    if (kind === 'tunnel-tcp') return proxyTcp(streams, tunnel, request);
    if (isUpgrade) return proxyWebSocket(streams, tunnel, request);
    return proxyHttp(streams, tunnel, request);
  }

  private track(tunnelId: string, stream: MuxStream): MuxStream {
    let set = this.tunnelStreams.get(tunnelId);
    if (!set) this.tunnelStreams.set(tunnelId, (set = new Set()));
    set.add(stream);
    void stream.closed.then(() => set!.delete(stream));
    return stream;
  }

  private get clientlessWaitMs(): number {
    return numberVar(this.env.CLIENTLESS_WAIT_MS, 30_000);
  }

  /** Resolves with the agent's socket once it (re)connects and says hello, or null after `ms`. */
  private waitForAgent(ms: number): Promise<WebSocket | null> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.agentWaiters.delete(done);
        resolve(this.readySocket());
      };
      const timer = setTimeout(() => {
        this.agentWaiters.delete(done);
        resolve(null);
      }, ms);
      this.agentWaiters.add(done);
    });
  }

  /** Tunnels without allow_clientless close as soon as their agent is gone (tunnel-control semantics). */
  private async closeTunnelsWithoutClientless(deviceId: string): Promise<void> {
    const res = await this.env.DB.prepare('UPDATE tunnels SET connected = 0, updated_at = ?1 WHERE device_id = ?2 AND allow_clientless = 0 AND connected = 1')
      .bind(Date.now(), deviceId)
      .run();
    if (res.meta.changes) this.tunnels = await loadTunnels(this.env.DB, deviceId);
  }

  /** The agent's socket once its hello is done and it holds the tunnel table. */
  private readySocket(): WebSocket | null {
    // Remembered between visits (reading the attachment each time costs a deserialization); a
    // closed or replaced socket is no longer OPEN, and after hibernation the field starts empty.
    if (this.ready?.readyState === WebSocket.OPEN) return this.ready;
    const ws = this.liveSocket();
    this.ready = ws && (ws.deserializeAttachment() as SocketAttachment | null)?.helloAt ? ws : null;
    return this.ready;
  }

  private liveSocket(): WebSocket | null {
    for (const ws of this.ctx.getWebSockets()) if (ws.readyState === WebSocket.OPEN) return ws;
    return null;
  }

  private send(ws: WebSocket, msg: HubMessage): void {
    ws.send(JSON.stringify(msg));
  }

  private closeSocket(ws: WebSocket, code: number, reason: string): void {
    try {
      this.send(ws, { t: 'bye', code: String(code), reason });
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  private rejectFrame(why: string): void {
    this.badFrames++;
    console.warn(`DeviceHub: rejected frame #${this.badFrames}: ${why}`);
  }

  private async onHello(ws: WebSocket, protocol: number, agentVersion: string, capabilities: string[], facts: DeviceFacts | undefined, features: string[]) {
    if (protocol !== PROTOCOL_VERSION) {
      this.closeSocket(ws, CloseCode.PROTOCOL_ERROR, `protocol ${protocol} is not supported (relay speaks ${PROTOCOL_VERSION})`);
      return;
    }
    const att = ws.deserializeAttachment() as SocketAttachment;
    this.send(ws, { t: 'hello_ack', protocol: PROTOCOL_VERSION, device_id: att.deviceId, heartbeat_ms: this.heartbeatMs, relay_version: RELAY_VERSION, features: [FRAME_BATCH_FEATURE] });
    this.tunnels = await loadTunnels(this.env.DB, att.deviceId);
    this.send(ws, { t: 'tunnels', tunnels: agentTargets(this.tunnels) });
    // Only now may tunnel streams use this socket: the agent has its tunnel table before any OPEN.
    att.helloAt = Date.now();
    att.agentVersion = agentVersion;
    att.capabilities = capabilities;
    att.batches = features.includes(FRAME_BATCH_FEATURE);
    ws.serializeAttachment(att);
    if (this.muxSocket === ws) this.batcher!.enabled = att.batches;
    for (const wake of this.agentWaiters) wake();
    const f = facts ? DeviceFactsSchema.safeParse(facts) : null;
    type Named = { name: string; hostname: string | null };
    const row = f?.success
      ? await this.env.DB.prepare(
          `UPDATE devices SET hostname = ?1, serial = ?2, hardware = ?3, os = ?4, os_version = ?5, architecture = ?6, mac = ?7, agent_version = ?8 WHERE id = ?9 RETURNING name, hostname`,
        )
          .bind(f.data.hostname, f.data.serial, f.data.hardware, f.data.os, f.data.os_version, f.data.architecture, f.data.mac_address, agentVersion, att.deviceId)
          .first<Named>()
      : await this.env.DB.prepare('UPDATE devices SET agent_version = ?1 WHERE id = ?2 RETURNING name, hostname').bind(agentVersion, att.deviceId).first<Named>();
    await this.announce(att.deviceId, 'online', { name: row?.name, hostname: row?.hostname ?? undefined });
  }

  private async onSocketGone(ws: WebSocket, why: string): Promise<void> {
    try {
      ws.close(1000, 'closing');
    } catch {
      // already closed
    }
    const att = ws.deserializeAttachment() as SocketAttachment | null;
    const others = this.ctx.getWebSockets().filter((s) => s !== ws && s.readyState === WebSocket.OPEN);
    if (this.muxSocket === ws) this.dropMux(`the device connection ${why}`);
    if (others.length === 0) {
      this.agentGoneAt = Date.now();
      this.failPending('DEVICE_OFFLINE', `the device connection ${why}`);
      if (att) {
        await this.setOnline(att.deviceId, false, Date.now());
        await this.announce(att.deviceId, 'offline');
        await this.closeTunnelsWithoutClientless(att.deviceId);
      }
    }
  }

  /** A live connection was replaced: count it, keep the addresses, and tell D1 and the log. */
  private async recordReplacement(deviceId: string, replaced: WebSocket[], address: string, now: number): Promise<void> {
    const previous = await this.ctx.storage.get<IdentityConflictRecord>('identityConflict');
    const record: IdentityConflictRecord =
      previous && now - previous.last_at < CONFLICT_WINDOW_MS ? { ...previous, last_at: now } : { replacements: 0, first_at: now, last_at: now, addresses: [] };
    record.replacements += replaced.length;
    const seen = replaced.map((ws) => (ws.deserializeAttachment() as SocketAttachment | null)?.address ?? 'unknown');
    for (const a of [...seen, address]) record.addresses = [...record.addresses.filter((x) => x !== a), a];
    record.addresses = record.addresses.slice(-CONFLICT_ADDRESSES);
    await this.ctx.storage.put('identityConflict', record);
    await this.env.DB.prepare('UPDATE devices SET identity_conflict = ?1 WHERE id = ?2').bind(JSON.stringify(record), deviceId).run();
    console.warn(
      `DeviceHub: device ${deviceId}: a connection from ${address} replaced a live one from ${seen.join(', ')} ` +
        `(${record.replacements} since ${new Date(record.first_at).toISOString()}); if this repeats, two agents share this identity (a copied config?)`,
    );
  }

  private failPending(code: string, message: string): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ ok: false, error: { code, message } });
      this.pending.delete(id);
    }
  }

  /**
   * Tells the FleetHub the device went online (after its hello) or offline, in the background: a
   * slow FleetHub never holds up the agent's socket. Offline is told only after an online, once,
   * however many of the paths that notice it (close, error, heartbeat alarm, disconnect) run.
   */
  private async announce(deviceId: string, status: Announced['status'], facts?: Omit<Announced, 'status'>): Promise<void> {
    const last = await this.ctx.storage.get<Announced>(ANNOUNCED_KEY);
    if (status === 'offline' && last?.status !== 'online') return;
    const { name, hostname } = facts ?? last ?? {};
    await this.ctx.storage.put(ANNOUNCED_KEY, { status, name, hostname } satisfies Announced);
    this.fleet ??= fleetHubFor(this.env);
    this.ctx.waitUntil(publishStatus(this.fleet, { agent_id: deviceId, status, timestamp: new Date().toISOString(), name, hostname }));
  }

  private async setOnline(deviceId: string, online: boolean, now: number): Promise<void> {
    await this.env.DB.prepare('UPDATE devices SET online = ?1, last_seen = ?2 WHERE id = ?3').bind(online ? 1 : 0, now, deviceId).run();
    await this.ctx.storage.put('lastSeenWrittenAt', now);
  }
}
