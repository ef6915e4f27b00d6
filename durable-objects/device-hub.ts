// DeviceHub: one Durable Object per device (idFromName(deviceId); the device id is the hub's own
// name). Its handlers and stub methods only: the agent's socket (hub/agent-socket.ts), RPC with
// deadlines (hub/rpc.ts), watchers and their events (hub/watchers.ts) and the one alarm
// (hub/scheduler.ts) are the machinery; what the device can do comes from the capability modules
// (capabilities/index.ts). What the Worker may send is one checked contract (hub/contract.ts).
// State that must outlive hibernation lives in storage or in a socket's attachment.
import { DurableObject } from 'cloudflare:workers';
import { AgentMessageSchema, type AgentMessage, type StreamOpen } from '../shared/protocol/messages.ts';
import { HEARTBEAT_PING, HEARTBEAT_PONG, parseMessage } from '../shared/protocol/envelope.ts';
import type { MuxStream } from '../shared/protocol/mux.ts';
import { PROTOCOL_VERSION, RELAY_VERSION } from '../shared/version.ts';
import { CloseCode, errorBody, ResetCode } from '../shared/codes.ts';
import { DeviceFactsSchema } from '../shared/api/device-info.ts';
import { FRAME_BATCH_FEATURE } from '../shared/protocol/batch.ts';
import { numberVar } from '../shared/env-vars.ts';
import { AGENT_TAG, AgentSocket, attachment } from './hub/agent-socket.ts';
import { AgentRpc, type HubCallResult } from './hub/rpc.ts';
import { Scheduler } from './hub/scheduler.ts';
import { WATCH_EXPIRY, Watchers, type WatcherCounters } from './hub/watchers.ts';
import { readHubRequest, type TerminalTokenRecord } from './hub/contract.ts';
import type { LogEntry, LogPage, LogQuery } from '../shared/api/logs.ts';
import { LOG_RETENTION } from './capabilities/logs.ts';
import { METRICS_REPLAY, METRICS_ROLLUP, METRICS_TOPIC, type MetricsCounters, type MetricsExportPage } from './capabilities/metrics.ts';
import { ALERT_NOTIFY, ALERT_OFFLINE } from './capabilities/alerts.ts';
import type { HistoryQuery, HistoryResponse, MetricsSample, Resolution } from '../shared/api/metrics.ts';
import type { LogCursor } from './capabilities/logs-store.ts';
import { hubCapabilities } from './capabilities/index.ts';
import type { Hello, HubCapability, HubContext, MessageHandler, StreamHandler } from './capabilities/types.ts';

export type { HubCallResult } from './hub/rpc.ts';

export interface HubStatus {
  online: boolean;
  connectedAt: number | null;
  agentVersion: string | null;
  capabilities: string[];
}

export interface HubCounters extends WatcherCounters, MetricsCounters {
  /** Frames from the agent the hub could not take, since this instance started. */
  badFrames: number;
  /** Text records on terminal streams that were not control messages, dropped (since this instance started). */
  terminalDropped: number;
}

/** Where the hub keeps its device's id, for the instances that wake without their name. */
const DEVICE_ID_KEY = 'hub:device-id';
/** A device is offline after this many heartbeat intervals of silence. */
const MISSED_HEARTBEATS = 3;
/** How often a connected device's last-seen time is refreshed in D1. */
const LAST_SEEN_WRITE_MS = 60_000;
/** Storage keys of used connect-token ids (`jti:<id>` → until when the token could be used). */
const JTI_PREFIX = 'jti:';
/** storage.delete takes at most this many keys at once. */
const STORAGE_BATCH = 128;
/** A device's own watchers resume from a shorter window than the fleet's (its events are few). */
export const DEVICE_REPLAY = { events: 256, ms: 60 * 60_000 };

export class DeviceHub extends DurableObject<Env> {
  private readonly deviceId: string;
  private readonly caps = hubCapabilities();
  private readonly capList: readonly HubCapability[] = Object.values(this.caps);
  private readonly streamKinds = new Map<string, StreamHandler>();
  private readonly messageKinds = new Map<string, MessageHandler>();
  private readonly agents: AgentSocket;
  private readonly rpc: AgentRpc;
  private readonly watchers: Watchers;
  private readonly scheduler: Scheduler;
  private readonly hub: HubContext;
  /** Agent sockets whose departure was handled (a timeout, then its close event). */
  private readonly goneSockets = new WeakSet<WebSocket>();
  private badFrames = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // An instance woken by its alarm is not told its name (ctx.id.name is undefined then), yet its
    // deadlines (an offline alert, a delivery's retry, the rollup) need the device: the name is
    // kept in storage the first time a named request reaches the hub.
    const stored = ctx.storage.kv.get<string>(DEVICE_ID_KEY);
    const name = ctx.id.name ?? stored;
    if (!name) throw new Error('a DeviceHub is addressed by idFromName(deviceId)');
    if (ctx.id.name && stored !== ctx.id.name) ctx.storage.kv.put(DEVICE_ID_KEY, ctx.id.name);
    this.deviceId = name;
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT_PING, HEARTBEAT_PONG));
    for (const cap of this.capList) {
      for (const [kind, handler] of Object.entries(cap.streams ?? {})) this.streamKinds.set(kind, handler);
      for (const [t, handler] of Object.entries(cap.messages ?? {})) this.messageKinds.set(t, handler);
    }
    this.agents = new AgentSocket(ctx, env.DB, {
      onStream: (stream, open) => this.onAgentStream(stream, open),
      onBadFrame: (why) => this.rejectFrame(why),
    });
    this.rpc = new AgentRpc((id, method, params) => this.sendToAgent({ t: 'req', id, method, params }));
    this.scheduler = new Scheduler(ctx.storage, {
      heartbeat: (now) => this.checkHeartbeat(now),
      'last-seen': (now) => this.refreshLastSeen(now),
      [WATCH_EXPIRY]: (now) => this.watchers.expire(now),
      [LOG_RETENTION]: (now) => this.caps.logs.prune(this.hub, now),
      [METRICS_ROLLUP]: (now) => this.caps.metrics.rollup(this.hub, now),
      [ALERT_NOTIFY]: (now) => this.caps.alerts.notify(this.hub, now),
      [ALERT_OFFLINE]: (now) => this.caps.alerts.offline(this.hub, now),
    });
    this.watchers = new Watchers(ctx, { name: 'DeviceHub', topics: this.capList.flatMap((c) => c.topics ?? []), replay: DEVICE_REPLAY, topicReplay: { [METRICS_TOPIC]: METRICS_REPLAY }, scheduler: this.scheduler });
    this.hub = {
      env,
      state: ctx,
      deviceId: name,
      readyAgent: () => this.agents.ready(),
      agent: () => this.agents.live(),
      waitForAgent: (ms) => this.agents.waitForReady(ms),
      agentGoneAt: () => this.agents.goneAt,
      send: (msg) => this.sendToAgent(msg),
      openStream: (ws, open, options) => this.agents.muxFor(ws).open(open, options),
      publish: (topic, data) => void this.watchers.publish(topic, data),
      skip: (topic) => this.watchers.skip(topic),
      at: (name, when) => this.scheduler.at(name, when),
      when: (name) => this.scheduler.when(name),
    };
  }

  private get heartbeatWindowMs(): number {
    return this.heartbeatMs * MISSED_HEARTBEATS;
  }

  private get heartbeatMs(): number {
    return numberVar(this.env.HEARTBEAT_INTERVAL_MS, 10_000, 100);
  }

  /** Only the Worker calls this, with one of the requests of hub/contract.ts. */
  async fetch(request: Request): Promise<Response> {
    const req = readHubRequest(request);
    if (!req.ok) return Response.json(errorBody('BAD_HUB_REQUEST', 'not a request the hub takes', { problem: req.problem }), { status: 400 });
    const r = req.value;
    switch (r.kind) {
      case 'tunnel-http':
      case 'tunnel-tcp':
        return this.caps.tunnels.visit(this.hub, request, r);
      case 'agent':
        return this.onAgentConnect(r.address ?? 'unknown');
      case 'watch':
        if (r.watch.agent_id != null && r.watch.agent_id !== this.deviceId) {
          return Response.json(errorBody('WRONG_DEVICE', 'this hub holds another device', { agent_id: r.watch.agent_id }), { status: 400 });
        }
        return this.acceptWatcher(r.watch);
      case 'screen':
        return this.caps.kvm.screen(this.hub, request, r.screen);
      case 'hid':
        return this.caps.kvm.input(this.hub, request);
      case 'terminal':
        return this.caps.terminal.attach(this.hub, request, r.terminal);
    }
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    // A watcher's frames go to the watchers alone: nothing it sends is taken as the agent's.
    if (!this.agents.isAgent(ws)) return this.watchers.onMessage(ws, message);
    if (typeof message !== 'string') return this.agents.muxFor(ws).receive(message);
    const msg = parseMessage(AgentMessageSchema, message);
    if (!msg) return this.onUnreadable(message);
    switch (msg.t) {
      case 'hello':
        return this.onHello(ws, msg);
      case 'ping':
        return this.agents.send(ws, { t: 'pong' });
      case 'pong':
        return;
      case 'res':
        return this.rpc.answer(msg);
      default:
        return this.onCapabilityMessage(msg);
    }
  }

  // A watcher's socket is told apart first: once an agent's socket is handled as gone, the runtime no longer lets its tags be read.
  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    if (!this.agents.isAgent(ws)) return this.onWatcherGone(ws);
    await this.onSocketGone(ws, `closed (${code}${reason ? `: ${reason}` : ''})`);
  }

  async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    if (!this.agents.isAgent(ws)) return this.onWatcherGone(ws);
    await this.onSocketGone(ws, `error: ${String(error)}`);
  }

  /** The scheduler's deadlines: the heartbeat check, the last-seen refresh, watchers' credential expiry. */
  async alarm(): Promise<void> {
    await this.scheduler.run();
  }

  // ---- methods the Worker calls through the stub ----

  /** Sends one RPC to the agent and waits for its (checked) answer or the deadline. */
  async call(method: string, params: unknown, timeoutMs: number): Promise<HubCallResult> {
    return this.rpc.call(method, params, timeoutMs);
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

  /** Closes the agent's socket, e.g. when the device is revoked or rejected; watchers stay. */
  async disconnect(reason: string): Promise<void> {
    const sockets = this.ctx.getWebSockets(AGENT_TAG);
    for (const ws of sockets) this.agents.close(ws, CloseCode.REVOKED, reason);
    for (const ws of sockets) await this.onSocketGone(ws, 'was disconnected');
    if (!sockets.length) await this.setOnline(false, Date.now());
  }

  /** A terminal token for this device (GET …/terminal, PiTunnel's /terminal): the token, shown once. */
  async issueTerminalToken(record: TerminalTokenRecord): Promise<string> {
    return this.caps.terminal.issueToken(this.hub, record);
  }

  /** Uses a terminal token up: its record, or null when it is unknown, used, expired or another device's. */
  async redeemTerminalToken(token: string): Promise<TerminalTokenRecord | null> {
    return this.caps.terminal.redeemToken(this.hub, token);
  }

  /** Puts a redeemed token back, unchanged, when its terminal could not open for the device's sake (offline, busy). */
  async restoreTerminalToken(token: string, record: TerminalTokenRecord): Promise<void> {
    return this.caps.terminal.restoreToken(this.hub, token, record);
  }

  /** A page of this device's log lines (the Worker checked the query with LogQuerySchema). */
  async queryLogs(query: LogQuery): Promise<LogPage> {
    return this.caps.logs.query(this.hub, query);
  }

  /** A fleet-wide query's first pass: the sort keys ([ts, seq]) of the first offset + limit matches, and their total. */
  async logKeys(query: LogQuery): Promise<{ keys: [number, number][]; total: number }> {
    return this.caps.logs.keys(this.hub, query);
  }

  /** A fleet-wide query's second pass: the entries of these seqs, in that order. */
  async logEntries(seqs: number[]): Promise<LogEntry[]> {
    return this.caps.logs.entries(this.hub, seqs.slice(0, 1000));
  }

  /** What a live log stream resuming from `cursor` missed, oldest first (at most `limit`). */
  async logsAfter(cursor: LogCursor, query: LogQuery, limit: number): Promise<{ entries: LogEntry[]; more: boolean; received: number | null; lost: boolean }> {
    return this.caps.logs.after(this.hub, cursor, query, Math.min(limit, 1000));
  }

  /** This device's metrics history (the Worker checked the query and resolved its range). */
  async metricsHistory(query: HistoryQuery & { from: number; to: number }): Promise<HistoryResponse> {
    return this.caps.metrics.history(this.hub, query);
  }

  /** A page of an export, from `from` (inclusive) up to `to`, at most `limit` rows (the Worker streams the pages). */
  async metricsExport(resolution: Resolution, from: number, to: number, limit: number): Promise<MetricsExportPage> {
    return this.caps.metrics.exportPage(this.hub, resolution, from, to, Math.min(limit, 1000));
  }

  /** The latest stored sample, or null. */
  async latestMetrics(): Promise<{ sample: MetricsSample; receivedAt: number } | null> {
    return this.caps.metrics.latest(this.hub);
  }

  /** The relay's refresh interval changed: the agent hears it at once. */
  async refreshChanged(seconds: number): Promise<void> {
    await this.caps.metrics.refreshChanged(this.hub, seconds);
  }

  /** The device moved to another team (the Worker's move route): its samples name the new team from the next one on. */
  async deviceMoved(): Promise<void> {
    this.caps.metrics.deviceMoved();
  }

  /** Alert rules that may reach this device changed in D1 (the processes and containers the agent watches may have too). */
  async alertRulesChanged(): Promise<void> {
    await this.caps.alerts.rulesChanged(this.hub);
    await this.caps.metrics.watchersChanged(this.hub);
  }

  /** One of this device's alerts was acknowledged through the API. */
  async alertAcknowledged(alertId: string): Promise<void> {
    await this.caps.alerts.acknowledged(this.hub, alertId);
  }

  /** The Worker changed this device's tunnels. */
  async tunnelsChanged(): Promise<void> {
    await this.caps.tunnels.changed(this.hub);
  }

  async status(): Promise<HubStatus> {
    const ws = this.agents.live();
    const att = ws ? attachment(ws) : null;
    return {
      online: !!ws,
      connectedAt: att?.connectedAt ?? null,
      agentVersion: att?.agentVersion ?? null,
      capabilities: att?.capabilities ?? [],
    };
  }

  /** What this hub refused or dropped (bad agent frames since this instance started; watcher counts ever), and its watchers now. */
  async counters(): Promise<HubCounters> {
    return { badFrames: this.badFrames, ...this.caps.terminal.counters(), ...this.caps.metrics.counters(this.hub), ...this.watchers.counters() };
  }

  // ---- internals ----

  /** A watcher of this device; one of `metrics` makes the agent sample live. */
  private async acceptWatcher(watch: Parameters<Watchers['accept']>[0]): Promise<Response> {
    const res = await this.watchers.accept(watch);
    if (res.status === 101 && watch.topics.includes(METRICS_TOPIC)) await this.caps.metrics.watchersChanged(this.hub);
    return res;
  }

  /** A watcher socket closed: the metrics capability may slow the agent down again. */
  private async onWatcherGone(ws: WebSocket): Promise<void> {
    if (this.ctx.getTags(ws).includes(METRICS_TOPIC)) await this.caps.metrics.watchersChanged(this.hub, ws);
  }

  private async onAgentConnect(address: string): Promise<Response> {
    const now = Date.now();
    // A second connection from the same device replaces the first. That is how a restarted agent
    // takes over from its half-dead old socket; if the old agent is alive it backs off after 4000.
    const response = await this.agents.accept(this.deviceId, address, now);
    this.rpc.failAll('the device reconnected before answering');
    await this.setOnline(true, now);
    await this.scheduler.at('heartbeat', now + this.heartbeatWindowMs);
    await this.scheduler.at('last-seen', now + LAST_SEEN_WRITE_MS);
    return response;
  }

  private async onHello(ws: WebSocket, hello: Hello): Promise<void> {
    if (hello.protocol !== PROTOCOL_VERSION) {
      this.agents.close(ws, CloseCode.PROTOCOL_ERROR, `protocol ${hello.protocol} is not supported (relay speaks ${PROTOCOL_VERSION})`);
      return;
    }
    this.agents.send(ws, { t: 'hello_ack', protocol: PROTOCOL_VERSION, device_id: this.deviceId, heartbeat_ms: this.heartbeatMs, relay_version: RELAY_VERSION, features: [FRAME_BATCH_FEATURE] });
    for (const cap of this.capList) await cap.onHello?.(this.hub, hello);
    // Only now may streams use this socket: every capability has done its hello (the agent holds its tunnel table).
    this.agents.markReady(ws, hello);
    const f = hello.facts ? DeviceFactsSchema.safeParse(hello.facts) : null;
    if (f?.success) {
      await this.env.DB.prepare(
        `UPDATE devices SET hostname = ?1, serial = ?2, hardware = ?3, os = ?4, os_version = ?5, architecture = ?6, mac = ?7, agent_version = ?8 WHERE id = ?9`,
      )
        .bind(f.data.hostname, f.data.serial, f.data.hardware, f.data.os, f.data.os_version, f.data.architecture, f.data.mac_address, hello.agent_version, this.deviceId)
        .run();
    } else {
      await this.env.DB.prepare('UPDATE devices SET agent_version = ?1 WHERE id = ?2').bind(hello.agent_version, this.deviceId).run();
    }
  }

  /** A stream the agent opened: to the capability that declares its kind, else refused. */
  private onAgentStream(stream: MuxStream, open: StreamOpen): void {
    const handler = this.streamKinds.get(open.kind);
    if (handler) handler(this.hub, stream, open);
    else stream.reset(ResetCode.REFUSED, `the hub accepts no ${String(open.kind).slice(0, 64)} streams from agents`);
  }

  /** A control message that failed its schema: a sample is the metrics capability's to refuse (counted there); anything else is a bad frame. */
  private async onUnreadable(message: string): Promise<void> {
    let raw: unknown;
    try {
      raw = JSON.parse(message);
    } catch {
      return this.rejectFrame(`invalid control message: ${message.slice(0, 200)}`);
    }
    const t = (raw as { t?: unknown } | null)?.t;
    if (t === 'metrics' || t === 'metrics_backlog') return this.caps.metrics.refuse(this.hub, raw);
    this.rejectFrame(`invalid control message: ${message.slice(0, 200)}`);
  }

  private async onCapabilityMessage(msg: AgentMessage): Promise<void> {
    const handler = this.messageKinds.get(msg.t);
    if (handler) await handler(this.hub, msg);
    else this.rejectFrame(`no handler for control message ${msg.t}`);
  }

  private async onSocketGone(ws: WebSocket, why: string): Promise<void> {
    if (!this.agents.isAgent(ws)) return; // a watcher: nothing of ours to clean up
    if (this.goneSockets.has(ws)) return;
    this.goneSockets.add(ws);
    if (!this.agents.gone(ws, why)) return; // replaced: the agent is still here
    this.rpc.failAll(`the device connection ${why}`);
    await this.scheduler.cancel('heartbeat');
    await this.scheduler.cancel('last-seen');
    await this.setOnline(false, Date.now());
    for (const cap of this.capList) await cap.onGone?.(this.hub, why);
  }

  /** Closes an agent that stopped answering heartbeats, else checks again at its last contact plus the window. */
  private async checkHeartbeat(now: number): Promise<void> {
    for (const ws of this.ctx.getWebSockets(AGENT_TAG)) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      const due = this.agents.lastContact(ws) + this.heartbeatWindowMs;
      if (now < due) {
        await this.scheduler.at('heartbeat', due);
        continue;
      }
      this.agents.close(ws, CloseCode.HEARTBEAT_TIMEOUT, 'no heartbeat');
      await this.onSocketGone(ws, 'went silent');
    }
  }

  /** D1 hears about a live device once a minute (last-seen), about a dead one at once. */
  private async refreshLastSeen(now: number): Promise<void> {
    if (!this.agents.live()) return;
    await this.setOnline(true, now);
    await this.scheduler.at('last-seen', now + LAST_SEEN_WRITE_MS);
  }

  private sendToAgent(msg: Parameters<AgentSocket['send']>[1]): boolean {
    const ws = this.agents.live();
    if (!ws) return false;
    try {
      this.agents.send(ws, msg);
      return true;
    } catch {
      return false; // closing
    }
  }

  private rejectFrame(why: string): void {
    this.badFrames++;
    console.warn(`DeviceHub: rejected frame #${this.badFrames}: ${why}`);
  }

  private async setOnline(online: boolean, now: number): Promise<void> {
    await this.env.DB.prepare('UPDATE devices SET online = ?1, last_seen = ?2 WHERE id = ?3').bind(online ? 1 : 0, now, this.deviceId).run();
  }
}
