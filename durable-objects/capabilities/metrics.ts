// The metrics capability: the agent's `metrics` samples and `metrics_backlog` points
// (shared/protocol/metrics.ts). Each sample is checked (one out of range or missing a field is
// refused and counted, never stored), its series stored by metrics-store.ts (raw points, 1m/5m/1h
// rollups, retention), acknowledged, published to this hub's `metrics` watchers and, at the
// relay's refresh interval, to the FleetHub (fleet-wide streams and the fleet page), and handed to
// the alerts capability. The interval the agent samples at is this module's to say
// (`metrics_config`): the relay's refresh interval, or LIVE_INTERVAL_MS while this hub has
// `metrics` watchers (someone watches the device live).
//
// Samples reach this hub's watchers while someone watches and for METRICS_REPLAY.ms after (so a
// reconnect resumes), and are skipped after that (a resume gets a gap): no watcher rows are
// written for a device nobody watches. Nothing after the ack waits in the agent's path: the publications go out in order on promise
// chains of their own (as status.ts does), each in waitUntil. The device's team (which watchers
// may see a sample) and the refresh interval are read from D1 on hello and at most once a minute
// after (deviceMoved() forgets the team at once); no D1 write per sample.
import type { HistoryQuery, HistoryResponse, MetricsEvent, MetricsSample, Resolution } from '../../shared/api/metrics.ts';
import { DEFAULT_REFRESH_SECONDS, LIVE_INTERVAL_MS, MAX_HISTORY_POINTS, MAX_REFRESH_SECONDS, MIN_REFRESH_SECONDS, seriesOf, type Series } from '../../shared/api/series.ts';
import { BacklogPointSchema, MAX_BACKLOG_CHUNK, MetricsBacklogSchema, MetricsMessageSchema, type MetricsConfig } from '../../shared/protocol/metrics.ts';
import type { AgentMessage } from '../../shared/protocol/messages.ts';
import { fleetHubFor, publishMetrics, type FleetHubStub } from '../fleet/publish.ts';
import type { AlertsCapability } from './alerts.ts';
import { MetricsStore, retentionOf, type StoredRow } from './metrics-store.ts';
import type { HubCapability, HubContext } from './types.ts';

export const METRICS_TOPIC = 'metrics';
/** The scheduler deadline of the rollup and retention pass. */
export const METRICS_ROLLUP = 'metrics-rollup';

/**
 * The replay window of this hub's metrics topic (a few minutes of samples; it never pushes status
 * or log events out). Samples are published while someone watches and for this long after the
 * last watcher left, so a reconnect resumes; after that they are skipped (a resume is told of the
 * gap): a device nobody watches writes no watcher rows.
 */
export const METRICS_REPLAY = { events: 300, ms: 10 * 60_000 };
/** How far ahead of the hub's clock a sample's timestamp may be. */
export const MAX_FUTURE_MS = 5 * 60_000;
/** How long the device's team and the refresh interval are trusted once read from D1. */
const DEVICE_READ_MS = 60_000;
/** A prune step that left work is followed by the next this soon. */
const PRUNE_AGAIN_MS = 1_000;
/** Rows an export page holds at most. */
const MAX_EXPORT_ROWS = 1_000;
/** A sample forwarded to the FleetHub this much early still counts as one per refresh interval (sampling jitters). */
const FLEET_SLACK_MS = 250;
const REFUSED_KEY = 'metrics:refused';

export interface MetricsCounters {
  /** Samples and backlog points refused (out of range, missing fields, from the future), ever. */
  metricsRefused: number;
  /** Samples and backlog points stored, since this instance started. */
  metricsStored: number;
}

/** One page of an export: rows in time order and where the next page starts (null: the end). */
export interface MetricsExportPage {
  rows: StoredRow[];
  next: number | null;
}

export class MetricsCapability implements HubCapability {
  readonly name = 'metrics';
  readonly topics = [METRICS_TOPIC] as const;
  readonly messages = {
    metrics: (hub: HubContext, msg: AgentMessage) => this.onSample(hub, msg),
    metrics_backlog: (hub: HubContext, msg: AgentMessage) => this.onBacklog(hub, msg),
  };
  private store: MetricsStore | null = null;
  private latestSample: { sample: MetricsSample; receivedAt: number } | null = null;
  private stored = 0;
  /** The device's team (null: gone from D1) and the refresh interval, and until when they are trusted. */
  private device: { team: string | null; refreshSeconds: number; until: number } | null = null;
  private deviceRead: Promise<{ team: string | null; refreshSeconds: number }> | null = null;
  /** The metrics_config last sent to this agent connection (JSON), so only changes go out. */
  private sentConfig: string | null = null;
  /** The METRICS_ROLLUP deadline as last set (undefined: not looked up since the instance started). */
  private deadline: number | null | undefined = undefined;
  private publications: Promise<void> = Promise.resolve();
  private alertChecks: Promise<void> = Promise.resolve();
  private configs: Promise<void> = Promise.resolve();
  private fleet: FleetHubStub | null = null;
  private fleetPending = false;
  private fleetAt = 0;
  /** When this hub last had a metrics watcher (this instance's memory: after a restart, samples are skipped until one comes). */
  private watchedAt = 0;

  /** Each stored sample goes to the alerts capability. */
  constructor(private readonly alerts: AlertsCapability) {}

  onHello(hub: HubContext): void {
    // A new connection: the device may have moved while it was away, and the agent knows no interval yet.
    this.device = null;
    this.sentConfig = null;
    this.configure(hub);
  }

  onGone(): void {
    this.sentConfig = null;
  }

  /** A metrics watcher came or went (`gone`: the socket closing, which the runtime may still list): the agent samples at LIVE_INTERVAL_MS while one is open. */
  async watchersChanged(hub: HubContext, gone?: WebSocket): Promise<void> {
    this.configure(hub, gone);
  }

  /** The relay's refresh interval changed (POST /api/v1/settings/refresh): tell the agent at once. */
  async refreshChanged(hub: HubContext, seconds: number): Promise<void> {
    if (!Number.isInteger(seconds) || seconds < MIN_REFRESH_SECONDS || seconds > MAX_REFRESH_SECONDS) return;
    const known = this.device ?? (await this.deviceOf(hub).then(() => this.device));
    if (known) known.refreshSeconds = seconds;
    this.configure(hub);
  }

  /** The device moved to another team: the next sample reads its team again. */
  deviceMoved(): void {
    this.device = null;
  }

  /** History of this device (the Worker checked the query and its point bound; the answer is bounded anyway). */
  history(hub: HubContext, q: HistoryQuery & { from: number; to: number }): HistoryResponse {
    const names = q.series
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const rows = this.storeOf(hub).rows(q.resolution, q.from, q.to, MAX_HISTORY_POINTS, names ? new Set(names) : undefined);
    return {
      from: new Date(q.from).toISOString(),
      to: new Date(q.to).toISOString(),
      resolution: q.resolution,
      agent_id: hub.deviceId,
      // zod's catchall type makes `timestamp` a stat too; the point is the seed's {timestamp, <series>: {avg, min, max}}.
      data: rows.map((r) => ({ ...r.series, timestamp: new Date(r.timestamp).toISOString() })) as unknown as HistoryResponse['data'],
    };
  }

  /** A page of an export from `from` (inclusive) to `to`, at most `limit` rows (and at most MAX_EXPORT_ROWS). */
  exportPage(hub: HubContext, resolution: Resolution, from: number, to: number, limit: number): MetricsExportPage {
    const n = Math.max(1, Math.min(Math.floor(limit) || 1, MAX_EXPORT_ROWS));
    const rows = this.storeOf(hub).rows(resolution, from, to, n + 1);
    return { rows: rows.slice(0, n), next: rows.length > n ? rows[n]!.timestamp : null };
  }

  /** The latest sample, with when it was received; null if none was stored since this instance started. */
  latest(_hub: HubContext): { sample: MetricsSample; receivedAt: number } | null {
    return this.latestSample;
  }

  /** The METRICS_ROLLUP deadline: closes what is due, one prune step, and the next deadline. */
  async rollup(hub: HubContext, now: number): Promise<void> {
    const store = this.storeOf(hub);
    const retention = retentionOf(hub.env);
    store.closeDue(now);
    const more = store.prune(retention, now);
    const next = more ? now + PRUNE_AGAIN_MS : store.nextDue(retention);
    this.deadline = null; // the scheduler cleared it before calling
    if (next !== null) await this.setDeadline(hub, next);
  }

  /**
   * A message of ours that failed its schema (device-hub.ts routes it here, not to the bad frames):
   * refused and counted, never stored; acknowledged when its boot and seq are readable, so the
   * agent does not resend what will never pass. A backlog chunk is checked point by point: its
   * good points are stored, the others refused.
   */
  async refuse(hub: HubContext, raw: unknown): Promise<void> {
    const m = (raw ?? {}) as Record<string, unknown>;
    const boot = typeof m.boot === 'string' && m.boot.length >= 1 && m.boot.length <= 64 ? m.boot : null;
    if (m.t === 'metrics') {
      const issue = MetricsMessageSchema.safeParse(raw).error?.issues[0];
      this.refused(hub, 1, `sample ${String(m.seq).slice(0, 20)}: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`);
      if (boot && isSeq(m.seq)) hub.send({ t: 'metrics_ack', boot, seq: m.seq });
      return;
    }
    const points = Array.isArray(m.points) ? m.points : [];
    if (!boot || !points.length || points.length > MAX_BACKLOG_CHUNK) {
      const issue = MetricsBacklogSchema.safeParse(raw).error?.issues[0];
      this.refused(hub, Math.max(1, Math.min(points.length, MAX_BACKLOG_CHUNK)), `backlog: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`);
      const last = points.at(-1) as { seq?: unknown } | undefined;
      if (boot && isSeq(last?.seq)) hub.send({ t: 'metrics_ack', boot, seq: last.seq });
      return;
    }
    let lastSeq: number | null = null;
    const now = Date.now();
    for (const p of points) {
      const seq = (p as { seq?: unknown })?.seq;
      if (isSeq(seq)) lastSeq = seq;
      const point = BacklogPointSchema.safeParse(p);
      if (!point.success) {
        const issue = point.error.issues[0];
        this.refused(hub, 1, `backlog point ${String(seq).slice(0, 20)}: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`);
        continue;
      }
      this.storePoint(hub, Date.parse(point.data.timestamp), point.data.series, now, `backlog point ${point.data.seq}`);
    }
    if (lastSeq !== null) hub.send({ t: 'metrics_ack', boot, seq: lastSeq });
    await this.afterStore(hub, now);
  }

  counters(hub: HubContext): MetricsCounters {
    return { metricsRefused: hub.state.storage.kv.get<number>(REFUSED_KEY) ?? 0, metricsStored: this.stored };
  }

  // ---- internals ----

  private async onSample(hub: HubContext, msg: AgentMessage): Promise<void> {
    if (msg.t !== 'metrics') return;
    const now = Date.now();
    const at = Date.parse(msg.sample.timestamp);
    const series = seriesOf(msg.sample);
    const stored = this.storePoint(hub, at, series, now, `sample ${msg.seq}`);
    // Stored (in the transaction that just committed), or refused for good: the agent may forget it.
    hub.send({ t: 'metrics_ack', boot: msg.boot, seq: msg.seq });
    if (!stored) return;
    this.latestSample = { sample: msg.sample, receivedAt: now };
    this.fanOut(hub, msg.sample, series, at, now);
    await this.afterStore(hub, now);
  }

  private async onBacklog(hub: HubContext, msg: AgentMessage): Promise<void> {
    if (msg.t !== 'metrics_backlog') return;
    const now = Date.now();
    if (msg.dropped) console.warn(`DeviceHub ${hub.deviceId}: the agent dropped ${msg.dropped} metrics points (its buffer was full)`);
    for (const p of msg.points) this.storePoint(hub, Date.parse(p.timestamp), p.series, now, `backlog point ${p.seq}`);
    hub.send({ t: 'metrics_ack', boot: msg.boot, seq: msg.points.at(-1)!.seq });
    await this.afterStore(hub, now);
  }

  /** Stores one point unless its time is out of range (refused) or stored already; true if stored now. */
  private storePoint(hub: HubContext, at: number, series: Series, now: number, what: string): boolean {
    const oldest = now - Math.max(...Object.values(retentionOf(hub.env)));
    if (!Number.isFinite(at) || at > now + MAX_FUTURE_MS) {
      this.refused(hub, 1, `${what}: its timestamp is more than ${MAX_FUTURE_MS / 60_000} minutes ahead of the relay's clock`);
      return false;
    }
    if (at < oldest) {
      this.refused(hub, 1, `${what}: its timestamp is older than the longest retention`);
      return false;
    }
    if (!this.storeOf(hub).store(at, series, now)) return false;
    this.stored++;
    return true;
  }

  /** After points were stored: the rollup deadline at the store's next work, moved only when that changed. */
  private async afterStore(hub: HubContext, now: number): Promise<void> {
    const store = this.storeOf(hub);
    const moved = store.closeDue(now);
    if (this.deadline === undefined) this.deadline = await hub.when(METRICS_ROLLUP);
    if (!moved && this.deadline !== null && this.deadline > now) {
      // A late point may need an earlier close (never later): cheap to check, rare to act on.
      const next = store.nextDue(retentionOf(hub.env));
      if (next !== null && next < this.deadline) await this.setDeadline(hub, next);
      return;
    }
    const next = store.nextDue(retentionOf(hub.env));
    if (next !== null) await this.setDeadline(hub, next);
  }

  private async setDeadline(hub: HubContext, when: number): Promise<void> {
    if (this.deadline === when) return;
    this.deadline = when;
    await hub.at(METRICS_ROLLUP, when);
  }

  /** The sample to this hub's watchers, to the FleetHub when a refresh interval has passed, and to the alerts, in order, off the agent's path. */
  private fanOut(hub: HubContext, sample: MetricsSample, series: Series, at: number, now: number): void {
    this.publications = this.publications
      .then(async () => {
        const { team, refreshSeconds } = await this.deviceOf(hub);
        const event = { ...sample, agent_id: hub.deviceId, team_id: team };
        if (hub.state.getWebSockets(METRICS_TOPIC).length) this.watchedAt = Date.now();
        if (Date.now() - this.watchedAt <= METRICS_REPLAY.ms) hub.publish(METRICS_TOPIC, event);
        else hub.skip(METRICS_TOPIC);
        // A device gone from D1 has no team: its samples reach this hub's instance admins only, and no fleet.
        if (team === null || this.fleetPending || now - this.fleetAt < refreshSeconds * 1000 - FLEET_SLACK_MS) return;
        this.fleetAt = now;
        this.fleetPending = true;
        const sent = publishMetrics((this.fleet ??= fleetHubFor(hub.env)), { ...event, team_id: team }).finally(() => (this.fleetPending = false));
        hub.state.waitUntil(sent);
      })
      .catch((e) => console.error(`DeviceHub ${hub.deviceId}: publishing a metrics sample failed`, e));
    hub.state.waitUntil(this.publications);
    this.alertChecks = this.alertChecks
      .then(() => this.alerts.onSample(hub, sample, series, at))
      .catch((e) => console.error(`DeviceHub ${hub.deviceId}: alert rules on a sample failed`, e));
    hub.state.waitUntil(this.alertChecks);
  }

  /** Sends metrics_config if it changed (in order, off the caller's path). */
  private configure(hub: HubContext, gone?: WebSocket): void {
    this.configs = this.configs
      .then(async () => {
        const { refreshSeconds } = await this.deviceOf(hub);
        const live = hub.state.getWebSockets(METRICS_TOPIC).some((ws) => ws !== gone && ws.readyState === WebSocket.OPEN);
        if (live || gone) this.watchedAt = Date.now();
        const watch = await this.alerts.watched(hub);
        const config: MetricsConfig = { t: 'metrics_config', interval_ms: live ? LIVE_INTERVAL_MS : refreshSeconds * 1000, watch };
        const json = JSON.stringify(config);
        if (json !== this.sentConfig && hub.send(config)) this.sentConfig = json;
      })
      .catch((e) => console.error(`DeviceHub ${hub.deviceId}: sending metrics_config failed`, e));
    hub.state.waitUntil(this.configs);
  }

  /** The device's team and the refresh interval, read from D1 in one round trip at most every DEVICE_READ_MS; a changed interval is sent on. */
  private async deviceOf(hub: HubContext): Promise<{ team: string | null; refreshSeconds: number }> {
    const now = Date.now();
    if (this.device && this.device.until > now) return this.device;
    const before = this.device?.refreshSeconds;
    // Samples arriving while the read is on its way wait for the same read, so they publish in order.
    this.deviceRead ??= hub.env.DB.batch<Record<string, unknown>>([
      hub.env.DB.prepare('SELECT team_id FROM devices WHERE id = ?1').bind(hub.deviceId),
      hub.env.DB.prepare("SELECT value FROM settings WHERE key = 'metrics.refresh_seconds'"),
    ])
      .then(([team, setting]) => {
        const teamId = team?.results[0]?.team_id;
        this.device = { team: typeof teamId === 'string' ? teamId : null, refreshSeconds: refreshOf(setting?.results[0]?.value), until: Date.now() + DEVICE_READ_MS };
        if (before !== undefined && before !== this.device.refreshSeconds) this.configure(hub);
        return this.device;
      })
      .finally(() => (this.deviceRead = null));
    return this.deviceRead;
  }

  private refused(hub: HubContext, n: number, why: string): void {
    const kv = hub.state.storage.kv;
    const count = (kv.get<number>(REFUSED_KEY) ?? 0) + n;
    kv.put(REFUSED_KEY, count);
    console.warn(`DeviceHub ${hub.deviceId}: refused metrics (${count} so far): ${why.slice(0, 200)}`);
  }

  private storeOf(hub: HubContext): MetricsStore {
    return (this.store ??= new MetricsStore(hub.state.storage));
  }
}

function isSeq(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

/** The `metrics.refresh_seconds` setting (JSON: a number, or {interval}), or the default when absent or out of range. */
function refreshOf(value: unknown): number {
  let v: unknown = value;
  try {
    v = typeof value === 'string' ? JSON.parse(value) : value;
  } catch {
    return DEFAULT_REFRESH_SECONDS;
  }
  if (v && typeof v === 'object' && 'interval' in v) v = (v as { interval: unknown }).interval;
  return typeof v === 'number' && Number.isInteger(v) && v >= MIN_REFRESH_SECONDS && v <= MAX_REFRESH_SECONDS ? v : DEFAULT_REFRESH_SECONDS;
}

export type { MetricsEvent };
