// The FleetHub's watchers and its replay window. Watcher sockets are accepted hibernatably (tags
// ['watch', topic], the filter in the attachment), so a quiet fleet costs no running hub. Every
// published event gets the next id and a row in SQLite (one indexed range read answers a resume,
// one DELETE prunes; KV storage would mean listing keys), and is sent to each matching watcher.
// The window keeps the last WINDOW_EVENTS events and none older than WINDOW_MS: a client that
// resumes from an id before it gets {"t":"gap"} and must re-read the device list.
// The counter lives in synchronous KV storage, outside the table, so pruning never resets it.
import { z } from 'zod';
import { DeviceIdSchema } from '../../shared/api/devices.ts';
import { EventIdSchema, STREAM_TOPICS, type StreamMessage, type StreamTopic } from '../../shared/api/stream.ts';

/** The header the Worker (which authenticated the caller) puts its watch request in. */
export const WATCH_HEADER = 'x-pirelay-watch';

export const WatchSchema = z
  .object({ topics: z.array(z.enum(STREAM_TOPICS)).min(1).max(STREAM_TOPICS.length), agent_id: DeviceIdSchema.nullable(), after: EventIdSchema.nullable() })
  .strict();
export type Watch = z.infer<typeof WatchSchema>;

export const WINDOW_EVENTS = 1000;
export const WINDOW_MS = 60 * 60_000;

interface Attachment {
  agentId: string | null;
}

/** What a published event must carry to be filtered by device. */
interface EventData {
  agent_id: string;
}

const SEQ_KEY = 'seq';

export class Watchers {
  /** Filters of sockets seen since the last wake-up: a fan-out need not deserialize every attachment again. */
  private filters = new WeakMap<WebSocket, string | null>();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly window = { events: WINDOW_EVENTS, ms: WINDOW_MS },
  ) {
    ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, topic TEXT NOT NULL, agent_id TEXT NOT NULL, data TEXT NOT NULL)');
  }

  /** Takes a watcher's socket, then sends what it missed since `after` (or a gap), then live events. */
  accept(ws: WebSocket, watch: Watch): void {
    this.ctx.acceptWebSocket(ws, ['watch', ...watch.topics]);
    const att: Attachment = { agentId: watch.agent_id };
    ws.serializeAttachment(att);
    this.filters.set(ws, att.agentId);
    if (watch.after !== null) for (const m of this.replay(watch.after, watch.topics, watch.agent_id)) ws.send(m);
  }

  /** Stores the event under the next id and sends it to the watchers of `topic` it matches; returns the id. */
  publish(topic: StreamTopic, data: EventData): string {
    const now = Date.now();
    const id = this.lastId() + 1;
    this.ctx.storage.kv.put(SEQ_KEY, id);
    const json = JSON.stringify(data);
    this.ctx.storage.sql.exec('INSERT INTO events (id, at, topic, agent_id, data) VALUES (?, ?, ?, ?, ?)', id, now, topic, data.agent_id, json);
    this.ctx.storage.sql.exec('DELETE FROM events WHERE id <= ? OR at < ?', id - this.window.events, now - this.window.ms);
    const message = eventMessage(id, topic, json);
    for (const ws of this.ctx.getWebSockets(topic)) {
      const filter = this.filterOf(ws);
      if (filter !== null && filter !== data.agent_id) continue;
      try {
        ws.send(message);
      } catch {
        // closing: its close handler cleans up
      }
    }
    return String(id);
  }

  /** The messages a watcher resuming after `after` gets: the events it missed, or a gap if some are gone. */
  replay(after: string, topics: readonly StreamTopic[], agentId: string | null): string[] {
    const from = Number(after);
    const last = this.lastId();
    if (from === last) return [];
    const oldest = this.ctx.storage.sql.exec<{ id: number | null }>('SELECT MIN(id) AS id FROM events').one().id;
    // An id from the future is one this hub never gave (its storage was reset): as lost as a pruned one.
    if (from > last || oldest === null || from < oldest - 1) return [JSON.stringify({ t: 'gap', id: String(last) } satisfies StreamMessage)];
    const marks = topics.map(() => '?').join(', ');
    const rows = this.ctx.storage.sql.exec<{ id: number; topic: string; data: string }>(
      `SELECT id, topic, data FROM events WHERE id > ? AND topic IN (${marks}) AND (? IS NULL OR agent_id = ?) ORDER BY id`,
      from,
      ...topics,
      agentId,
      agentId,
    );
    return [...rows].map((r) => eventMessage(r.id, r.topic, r.data));
  }

  /** Open watcher sockets (of every topic). */
  count(): number {
    return this.ctx.getWebSockets('watch').length;
  }

  lastId(): number {
    return this.ctx.storage.kv.get<number>(SEQ_KEY) ?? 0;
  }

  private filterOf(ws: WebSocket): string | null {
    let f = this.filters.get(ws);
    if (f === undefined) {
      f = (ws.deserializeAttachment() as Attachment | null)?.agentId ?? null;
      this.filters.set(ws, f);
    }
    return f;
  }
}

/** The event as the wire carries it; `data` is already JSON (as stored), so it is not parsed again. */
function eventMessage(id: number, topic: string, data: string): string {
  return `{"t":"event","id":"${id}","event":"${topic}","data":${data}}`;
}
