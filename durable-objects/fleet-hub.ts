// FleetHub: one Durable Object for the whole relay (named 'fleet') that device hubs publish status
// changes to. It holds the fleet's watchers (hub/watchers.ts), so one dashboard tab (or one SSE
// reader, through the Worker) costs one socket whatever the fleet size, and the replay window that
// Last-Event-ID resumes from. One hub for every team rather than one per team: a user in several
// teams gets one stream with one id sequence to resume from, so each watcher carries the teams it
// may see and the hub filters per watcher. Only the Worker reaches its fetch, with a caller it has
// already authenticated and authorized, and the watch request of hub/contract.ts in INTERNAL.watch.
// Its one alarm (hub/scheduler.ts) has one deadline: the next watcher's credential expiry. It also
// keeps each device's latest metrics sample (publishMetrics, at the refresh interval), so the fleet
// page paints every device at once and then follows `event: metrics`. That row is also the metrics
// topic's replay (a compacted topic of hub/watchers.ts): it carries the id its event was published
// under, and a watcher resuming metrics gets each device's latest sample newer than its resume id,
// never a gap. So a sample costs one row written (the upsert) and, once every ID_BLOCK events, the
// id counter's mark: Durable Object storage bills (and the free plan caps) rows written, and a
// fleet's samples are most of what this hub writes.
import { errorBody } from '../shared/codes.ts';
import { DurableObject } from 'cloudflare:workers';
import { STREAM_TOPICS, StatusEventSchema, type StatusEvent } from '../shared/api/stream.ts';
import { MetricsEventSchema, type MetricsEvent } from '../shared/api/metrics.ts';
import { HEARTBEAT_PING, HEARTBEAT_PONG } from '../shared/protocol/envelope.ts';
import { INTERNAL, WatchHeaderSchema, WatcherScopeSchema, type WatcherScope } from './hub/contract.ts';
import { Scheduler } from './hub/scheduler.ts';
import { WATCH_EXPIRY, Watchers, type ReplayFilter, type WatcherCounters } from './hub/watchers.ts';

export interface FleetStats extends WatcherCounters {
  lastId: string;
}

/** What a resume may reach back to: a dashboard that was away longer re-reads the device list. */
export const FLEET_REPLAY = { events: 1000, ms: 60 * 60_000 };

export class FleetHub extends DurableObject<Env> {
  private readonly watchers: Watchers;
  /** Rows the last publishMetrics wrote (the watchers' and the latest sample's upsert): the README's figures. */
  rowsWritten = 0;
  private readonly scheduler: Scheduler;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.scheduler = new Scheduler(ctx.storage, { [WATCH_EXPIRY]: (now) => this.watchers.expire(now) });
    const sql = ctx.storage.sql;
    // Each device's latest sample (one row a device, replaced by its next) and its event id: the fleet page's first paint and the metrics replay.
    sql.exec('CREATE TABLE IF NOT EXISTS fleet_latest (agent_id TEXT PRIMARY KEY, team_id TEXT NOT NULL, data TEXT NOT NULL, id INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID');
    // A hub from before the compacted replay kept no id: those samples (a refresh interval old) replay to no one, and are replaced by the next.
    if (!sql.exec("SELECT 1 FROM pragma_table_info('fleet_latest') WHERE name = 'id'").toArray().length) sql.exec('ALTER TABLE fleet_latest ADD COLUMN id INTEGER NOT NULL DEFAULT 0');
    const metrics = {
      // A scan of one row a device: resumes are rare beside samples, and an index on id would cost a row written per sample.
      replay: (after: number, f: ReplayFilter) => [
        ...sql.exec<{ id: number; data: string }>(
          'SELECT id, data FROM fleet_latest WHERE id > ?1 AND (?2 IS NULL OR agent_id = ?2) AND (?3 IS NULL OR team_id IN (SELECT value FROM json_each(?3))) ORDER BY id',
          after,
          f.agentId,
          f.teams === null ? null : JSON.stringify(f.teams),
        ),
      ],
      newest: () => sql.exec<{ id: number | null }>('SELECT MAX(id) AS id FROM fleet_latest').one().id ?? 0,
    };
    this.watchers = new Watchers(ctx, { name: 'FleetHub', topics: STREAM_TOPICS, replay: FLEET_REPLAY, compacted: { metrics }, scheduler: this.scheduler });
    // A dashboard keeps its socket alive with the agents' ping without waking the hub.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT_PING, HEARTBEAT_PONG));
  }

  async fetch(request: Request): Promise<Response> {
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') return new Response('expected a WebSocket upgrade', { status: 426 });
    const watch = WatchHeaderSchema.safeParse(request.headers.get(INTERNAL.watch) ?? undefined);
    if (!watch.success) {
      const issue = watch.error.issues[0];
      const problem = `${INTERNAL.watch}${issue?.path.length ? `.${issue.path.join('.')}` : ''}: ${issue?.message ?? 'invalid'}`;
      return Response.json(errorBody('BAD_HUB_REQUEST', 'not a watch request the hub takes', { problem }), { status: 400 });
    }
    return this.watchers.accept(watch.data);
  }

  // ---- methods device hubs and the Worker call through the stub ----

  /** A device went online or offline: give the event its id and send it to the watchers; null if it is not a status event. */
  async publish(event: StatusEvent): Promise<string | null> {
    const parsed = StatusEventSchema.safeParse(event);
    if (!parsed.success) {
      console.warn(`FleetHub: refused an event that is not a status event: ${parsed.error.issues[0]?.message}`);
      return null;
    }
    return this.watchers.publish('status', parsed.data);
  }

  /**
   * A device's sample (sent by its hub at the relay's refresh interval): kept as the device's
   * latest, under its event id, and sent to the fleet's `metrics` watchers; null if it is not a
   * metrics event. Publish and upsert run in one synchronous turn, so no watcher is accepted (and
   * replayed) between the two.
   */
  async publishMetrics(event: MetricsEvent): Promise<string | null> {
    const parsed = MetricsEventSchema.safeParse(event);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      console.warn(`FleetHub: refused an event that is not a metrics event: ${issue?.path.join('.')}: ${issue?.message}`);
      return null;
    }
    const e = parsed.data;
    const id = this.watchers.publish('metrics', e);
    this.rowsWritten =
      this.watchers.rowsWritten +
      this.ctx.storage.sql.exec(
        'INSERT INTO fleet_latest (agent_id, team_id, data, id) VALUES (?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET team_id = excluded.team_id, data = excluded.data, id = excluded.id',
        e.agent_id,
        e.team_id,
        JSON.stringify(e),
        Number(id),
      ).rowsWritten;
    return id;
  }

  /** The latest sample of each device of `teams` (null: every team), for the fleet page's first paint. */
  async latestMetrics(teams: string[] | null): Promise<MetricsEvent[]> {
    // The teams go as one JSON array (SQLite's limit on bound parameters), as in watchers.ts.
    const list = teams === null ? null : JSON.stringify(teams);
    const rows = this.ctx.storage.sql.exec<{ data: string }>(
      'SELECT data FROM fleet_latest WHERE ?1 IS NULL OR team_id IN (SELECT value FROM json_each(?1)) ORDER BY agent_id',
      list,
    );
    return [...rows].map((r) => JSON.parse(r.data) as MetricsEvent);
  }

  /** A device was deleted: forget its latest sample. */
  async forgetDevice(deviceId: string): Promise<void> {
    this.ctx.storage.sql.exec('DELETE FROM fleet_latest WHERE agent_id = ?', deviceId);
  }

  /**
   * Someone's access shrank: closes the watchers `scope` names (hub/watchers.ts revoke); returns
   * how many, or null for a scope that is not one (it names nobody: a bug in the caller, who must
   * not take it for "closed none").
   */
  async revoke(scope: WatcherScope): Promise<number | null> {
    const parsed = WatcherScopeSchema.safeParse(scope);
    if (!parsed.success) {
      console.warn(`FleetHub: refused a revoke that names no watchers: ${parsed.error.issues[0]?.message}`);
      return null;
    }
    return this.watchers.revoke(parsed.data);
  }

  async stats(): Promise<FleetStats> {
    return { ...this.watchers.counters(), lastId: String(this.watchers.lastId()) };
  }

  /** The scheduler's one deadline here: closing watchers whose credential expired. */
  async alarm(): Promise<void> {
    await this.scheduler.run();
  }

  // ---- watcher sockets ----

  /** Watchers send acks only; anything else is refused (with the reason) and counted. */
  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.watchers.onMessage(ws, message);
  }

  async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, 'closing');
    } catch {
      // already closed
    }
  }

  async webSocketError(ws: WebSocket): Promise<void> {
    try {
      ws.close(1011, 'socket error');
    } catch {
      // already closed
    }
  }
}
