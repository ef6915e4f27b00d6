// Capability "logs" on the hub: the device's log lines, stored in the hub's own SQLite with an
// FTS5 index (logs-store.ts; not D1: see docs/architecture.md, "Logs: from a device to a search"),
// each batch acknowledged once stored (a resent batch is acknowledged again, stored once),
// published to the hub's `log` watchers, and pruned to a retention limit: a step after each batch,
// and the LOG_RETENTION deadline for what a step left and for a device that stopped sending.
//
// A published event is a whole batch ({agent_id, team_id, entries}), not a line: a watcher may
// leave only STREAM_WINDOW events unacknowledged, and a batch of 500 lines published line by line
// would drop every watcher before its first ack could arrive. The Worker splits it into lines.
// Nothing is published while no one watches (no `log` watcher socket): the watcher event table
// would only write rows that nobody reads, since a stream resumes from the stored lines themselves.
import type { LogEntry, LogPage, LogQuery } from '../../shared/api/logs.ts';
import { MAX_LOG_FIELDS, type LogBatch } from '../../shared/protocol/logs.ts';
import type { AgentMessage } from '../../shared/protocol/messages.ts';
import { numberVar } from '../../shared/env-vars.ts';
import { LogStore, type LogCursor, type LogLimits } from './logs-store.ts';
import type { HubCapability, HubContext } from './types.ts';

export const LOG_TOPIC = 'log';
/** The scheduler deadline of the next retention step. */
export const LOG_RETENTION = 'log-retention';

/** Defaults of LOG_RETENTION_DAYS and LOG_MAX_LINES. */
export const DEFAULT_LOG_RETENTION_DAYS = 7;
export const DEFAULT_LOG_MAX_LINES = 500_000;
/** How long the device's team is trusted once read from D1 (the Worker caches a device's team as long). */
const TEAM_MS = 5_000;
/** A retention step is followed by the next this soon when it left work; else the deadline checks again daily. */
const PRUNE_AGAIN_MS = 1_000;
const PRUNE_DAILY_MS = 24 * 60 * 60_000;
/** JSON characters of entries one published event holds at most (see chunks). */
const EVENT_BYTES = 256 * 1024;
/** The latest time a Date can hold: a device's absurd clock is clamped to it rather than breaking every query. */
const MAX_TIME = 8.64e15;

export interface LogLiveEvent {
  agent_id: string;
  team_id: string | null;
  entries: LogEntry[];
}

export class LogsCapability implements HubCapability {
  readonly name = 'logs';
  readonly topics = [LOG_TOPIC] as const;
  readonly messages = { logs: (hub: HubContext, msg: AgentMessage) => this.onBatch(hub, msg) };
  private store: LogStore | null = null;
  private team: { id: string | null; until: number } | null = null;
  private teamRead: Promise<string | null> | null = null;

  /** One page of this device's stored lines, newest first, with the total that match. */
  async query(hub: HubContext, query: LogQuery): Promise<LogPage> {
    return this.storeOf(hub).query(query);
  }

  /** The sort keys of the first offset + limit matches and their total (a fleet-wide query's first pass). */
  keys(hub: HubContext, query: LogQuery) {
    return this.storeOf(hub).keys(query);
  }

  /** The entries of these seqs (a fleet-wide query's second pass). */
  entries(hub: HubContext, seqs: readonly number[]) {
    return this.storeOf(hub).entries(seqs);
  }

  /** What a live stream resuming from `cursor` missed (see LogStore.after). */
  after(hub: HubContext, cursor: LogCursor, query: LogQuery, limit: number) {
    return this.storeOf(hub).after(cursor, query, limit);
  }

  /** The LOG_RETENTION deadline: one step, and the next deadline (soon if more is due, else in a day). */
  async prune(hub: HubContext, now: number): Promise<void> {
    const { more } = this.storeOf(hub).prune(limits(hub.env), now);
    await hub.at(LOG_RETENTION, now + (more ? PRUNE_AGAIN_MS : PRUNE_DAILY_MS));
  }

  private async onBatch(hub: HubContext, msg: AgentMessage): Promise<void> {
    if (msg.t !== 'logs') return;
    const batch = bounded(msg);
    const now = Date.now();
    const store = this.storeOf(hub);
    const result = store.store(batch, now);
    // Stored (in the transaction that just committed) before the agent may forget it.
    hub.send({ t: 'logs_ack', boot: batch.boot, seq: batch.seq });
    if (!result.stored) return;
    if ((await hub.when(LOG_RETENTION)) === null) await hub.at(LOG_RETENTION, now + PRUNE_DAILY_MS);
    if (store.prune(limits(hub.env), now).more) await hub.at(LOG_RETENTION, now + PRUNE_AGAIN_MS);
    if (!hub.state.getWebSockets(LOG_TOPIC).length) return;
    const teamId = await this.teamOf(hub);
    for (const entries of chunks(result.entries)) {
      const event: LogLiveEvent = { agent_id: hub.deviceId, team_id: teamId, entries };
      hub.publish(LOG_TOPIC, { ...event });
    }
  }

  /** The device's team (null if it is gone from D1: its lines then reach instance admins only), read at most every TEAM_MS. */
  private async teamOf(hub: HubContext): Promise<string | null> {
    const now = Date.now();
    if (this.team && this.team.until > now) return this.team.id;
    // Batches arriving while the read is on its way wait for the same read, so they publish in order.
    this.teamRead ??= hub.env.DB.prepare('SELECT team_id FROM devices WHERE id = ?1')
      .bind(hub.deviceId)
      .first<{ team_id: string }>()
      .then((row) => {
        this.team = { id: row?.team_id ?? null, until: Date.now() + TEAM_MS };
        return this.team.id;
      })
      .finally(() => (this.teamRead = null));
    return this.teamRead;
  }

  private storeOf(hub: HubContext): LogStore {
    return (this.store ??= new LogStore(hub.state.storage, hub.deviceId));
  }
}

/**
 * The entries in events of at most EVENT_BYTES of JSON: a batch the agent kept under 512 KiB grows
 * by each entry's id, device and time, and a message the Worker receives may not pass 1 MiB.
 */
function* chunks(entries: LogEntry[]): Generator<LogEntry[]> {
  let chunk: LogEntry[] = [];
  let bytes = 0;
  for (const e of entries) {
    const size = JSON.stringify(e).length;
    if (chunk.length && bytes + size > EVENT_BYTES) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(e);
    bytes += size;
  }
  if (chunk.length) yield chunk;
}

function limits(env: Env): LogLimits {
  return {
    retentionMs: numberVar(env.LOG_RETENTION_DAYS, DEFAULT_LOG_RETENTION_DAYS, 0) * 24 * 60 * 60_000,
    maxLines: Math.floor(numberVar(env.LOG_MAX_LINES, DEFAULT_LOG_MAX_LINES, 1)),
  };
}

/** The batch within the bounds its schema does not say: at most MAX_LOG_FIELDS fields a line, a time a Date can hold. */
function bounded(batch: LogBatch): LogBatch {
  const lines = batch.lines.map((l) => {
    const fields = l.fields && Object.keys(l.fields).length > MAX_LOG_FIELDS ? Object.fromEntries(Object.entries(l.fields).slice(0, MAX_LOG_FIELDS)) : l.fields;
    return { ...l, ts: Math.min(l.ts, MAX_TIME), fields };
  });
  return { ...batch, lines };
}
