// Watcher sockets: readers of a hub's events (device status now; metrics, logs later), for both
// hub classes (a DeviceHub's own watchers, the FleetHub's fleet-wide ones). They are accepted
// hibernatably with the tags ['watch', ...topics], so an agent's socket and theirs never mix
// (fan-out asks the runtime for the sockets of one topic) and a quiet hub costs nothing running.
//
// Storage is billed (and the free plan capped) by rows written, a deletion counting as one, so
// every write here is counted (rowsWritten) and kept to what a resume needs.
//
// Every published event gets the next id and a row in SQLite (`watch_log`, keyed by topic and id
// and nothing else, so an event costs one row and its pruning one more; one range read per topic
// answers a resume). Ids come from memory, reserved in blocks of ID_BLOCK: the high-water mark
// (`watch:seq` in synchronous KV, outside the table, so pruning never resets it) is written once a
// block, and a new instance (a restart, a wake from hibernation) hands out ids above the mark, so
// ids stay strictly increasing whatever was lost with memory. The ids between the last one given
// and the mark were never given: the new instance finds the last one given in what is stored (each
// topic's newest row, the pruned marks, a compacted topic's newest id) and answers a resume from
// inside that hole with a gap, as it answers an id from the future.
//
// A compacted topic (`compacted`: the FleetHub's metrics) stores no rows here at all: the hub keeps
// each device's latest event with its id, and a resume gets, of the devices the watcher may see,
// each one's latest event newer than the resume id, in id order (the current state of each device,
// not every event it missed), so a resume is never a gap for it.
//
// The replay window of a stored topic is its own: each keeps its last `events` events and none
// older than `ms` (`replay`, or the topic's own in `topicReplay`), so a busy topic never pushes a
// quiet one's events (status) out of reach. Each row carries its topic's own counter (`tseq`, the
// topic's newest plus one, read once), so a topic is pruned by count from its oldest end and by age
// (at most once a second) only when its oldest row is old, always a prefix of the topic; each row
// also carries the id of the topic's event before it (`prev`), so the oldest row left names the
// highest id pruned without a write of its own, and a watcher resuming from before that in any
// topic it asks for gets {"t":"gap"} and must re-read what it shows. A hub may also skip an event
// nobody watches (skip(): a DeviceHub's metrics samples once no one has watched the device for a
// replay window), which marks the topic pruned the same way, so a resume across skipped events is
// a gap, never a silent loss.
//
// Accepting, replaying and publishing are synchronous (accept awaits only the expiry deadline,
// once the socket and its attachment are in place), so the runtime runs no other event between a
// watcher's replay and its first live event: nothing is missed or doubled.
//
// A slow watcher must not hold the hub: workerd's server-side WebSocket exposes no bufferedAmount
// and send() never blocks, so the hub cannot see a socket's backlog. The bound is counted instead:
// a watcher acknowledges what it has handled ({"t":"ack","n"}, shared/api/stream.ts), and one with
// more than `window` live events unacknowledged is told {"t":"dropped","reason"} and closed 1013
// (StreamCloseCode.DROPPED).
// A resume's replay (at most the replay window) is credit on top, paid back by the first acks, so
// a watcher resuming from far back is not dropped for events it could not have acknowledged yet.
// The counts live in the socket's attachment, so they survive hibernation. Anything else a
// watcher sends is refused ({"t":"error"}) and counted; nothing it sends reaches an agent handler.
//
// Teams: an event names its device's team (`team_id`), and a watcher's attachment holds the teams
// its caller may see (null: all, an instance admin) and the caller's user id, as the Worker sent
// them. Fan-out and replay skip events of other teams as they skip other devices for a watcher
// that asked for one; an event of no team reaches instance admins only. The check looks in the
// attachment already in memory, so fan-out stays one pass over the sockets, parsing nothing. When
// a caller's access shrinks, revoke() closes their watchers (ACCESS_CHANGED); they resume and are
// filtered anew.
//
// Credentials: a watcher is opened with a session or an API key, and must not outlive it. The
// attachment keeps the credential's id, so revoking it (a logout, a revoked key) closes its
// watchers through revoke() like any change of access, and its expiry, so the hub closes it
// (CREDENTIAL_EXPIRED) when that passes even if no event ever flows: one deadline of the hub's
// scheduler (WATCH_EXPIRY) is kept at the earliest expiry among the watchers, and each time it
// fires it closes the expired ones and moves to the next. Fan-out checks the expiry too (a number
// in the attachment), so no event reaches an expired watcher while the alarm is on its way.
import { errorBody, StreamCloseCode } from '../../shared/codes.ts';
import { STREAM_WINDOW, StreamAckSchema, type StreamMessage } from '../../shared/api/stream.ts';
import type { WatchRequest, WatcherScope } from './contract.ts';
import type { Scheduler } from './scheduler.ts';

export const WATCH_TAG = 'watch';
/** The scheduler deadline at which the next watcher's credential expires: a hub holding watchers runs `expire` for it. */
export const WATCH_EXPIRY = 'watch-expiry';

/** The ids' high-water mark: every id given is at most this. */
const SEQ_KEY = 'watch:seq';
/** Ids reserved per write of the mark. */
export const ID_BLOCK = 1000;
const REFUSED_KEY = 'watch:refused';
const DROPPED_KEY = 'watch:dropped';
/** A topic's events older than its window's `ms` go at most this late (the age check runs this seldom). */
const AGE_CHECK_MS = 1_000;
/**
 * `watch:pruned:<topic>`: the highest id of the topic skipped (or pruned by a hub from before `prev`);
 * a resume from before it is a gap. The rows' `prev` says the same of what store() prunes.
 */
const PRUNED_PREFIX = 'watch:pruned:';

export interface WatchersOptions {
  /** The hub class, for logs. */
  name: string;
  /** Topics some part of the hub publishes to; a watcher may ask for these only. */
  topics: readonly string[];
  /** The replay window of each topic: its last `events` events, none older than `ms`. */
  replay: ReplayWindow;
  /** Topics with a window of their own. */
  topicReplay?: Readonly<Record<string, ReplayWindow>>;
  /** Live events a watcher may leave unacknowledged before it is dropped. */
  window?: number;
  /** The hub's scheduler, whose WATCH_EXPIRY deadline calls `expire`. */
  scheduler: Scheduler;
  /** Topics whose events the hub keeps itself, one per device (see the header); no row is stored for them here. */
  compacted?: Readonly<Record<string, CompactedTopic>>;
}

/** What a watcher may see, for a compacted topic's replay. */
export interface ReplayFilter {
  /** The one device it follows, or null for all. */
  agentId: string | null;
  /** The teams it may see; null for every team. */
  teams: string[] | null;
}

/** A topic the hub keeps compacted: each device's latest event, under the id publish gave it. */
export interface CompactedTopic {
  /** Each device's latest event with an id above `after` that `filter` lets through, in id order (`data` as JSON). */
  replay(after: number, filter: ReplayFilter): { id: number; data: string }[];
  /** The highest id kept, 0 if none. */
  newest(): number;
}

/** The id counter of this instance: the last id given, and the mark reserved up to. */
interface Sequence {
  last: number;
  mark: number;
  /** Ids (from, to] this instance skipped on starting: never given, so a resume from one is a gap. */
  hole: [number, number] | null;
}

export interface ReplayWindow {
  events: number;
  ms: number;
}

export interface WatcherCounters {
  watchers: number;
  /** Malformed or unexpected watcher messages refused, ever. */
  refused: number;
  /** Watchers dropped for falling behind, ever. */
  dropped: number;
}

interface Attachment {
  /** The one device this watcher asked for, or null for all. */
  agentId: string | null;
  /** The teams whose events it may see; null for every team (an instance admin). */
  teams: string[] | null;
  /** Whose watcher it is (revoke by user). */
  userId: string;
  /** The session or API key it was opened with (revoke by credential). */
  credentialId: string;
  /** When that credential expires (ms), or null if it does not. */
  expiresAt: number | null;
  /** Events sent and not yet acknowledged (replayed and live). */
  unacked: number;
  /** Of those, replayed ones: acks pay these back first. */
  replay: number;
}

export class Watchers {
  private readonly topics: ReadonlySet<string>;
  private readonly window: number;
  /** Rows the last publish wrote (KV puts counted as one each): the benchmark and the README's figures. */
  rowsWritten = 0;
  private readonly compacted: Readonly<Record<string, CompactedTopic>>;
  /** Loaded at the first use (the tables a compacted topic reads may be created after this constructor). */
  private seq: Sequence | null = null;
  /** Per topic, the id its last skip mark took (this instance's memory: a lost mark only costs another). */
  private readonly skipMark = new Map<string, number>();
  /** Each topic's newest row (its tseq and id), once read. */
  private readonly newest = new Map<string, { tseq: number; id: number }>();
  /** When each topic's age was last checked. */
  private readonly ageChecked = new Map<string, number>();
  /** Attachments of sockets seen since the last wake-up: a fan-out need not deserialize each again. */
  private readonly attachments = new WeakMap<WebSocket, Attachment>();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly opts: WatchersOptions,
  ) {
    this.topics = new Set(opts.topics);
    this.window = opts.window ?? STREAM_WINDOW;
    this.compacted = opts.compacted ?? {};
    const sql = ctx.storage.sql;
    // Keyed by (topic, id) with no other index: an event costs one row written and its pruning one more.
    sql.exec(
      'CREATE TABLE IF NOT EXISTS watch_log (topic TEXT NOT NULL, id INTEGER NOT NULL, tseq INTEGER NOT NULL, prev INTEGER, at INTEGER NOT NULL, agent_id TEXT, team_id TEXT, data TEXT NOT NULL, PRIMARY KEY (topic, id)) WITHOUT ROWID',
    );
    if (sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'watch_events'").toArray().length) this.migrate();
    // A compacted topic's rows from before it was compacted are replayed no more (its resume reads the hub's own table); the last id given is read first, as one of them may hold it.
    for (const t of Object.keys(this.compacted)) {
      this.sequence();
      sql.exec('DELETE FROM watch_log WHERE topic = ?', t);
    }
  }

  /** A hub from before watch_log: its watch_events rows (an hour's at most), brought up to date and moved over. */
  private migrate(): void {
    const sql = this.ctx.storage.sql;
    const kv = this.ctx.storage.kv;
    const has = (column: string) => sql.exec("SELECT 1 FROM pragma_table_info('watch_events') WHERE name = ?", column).toArray().length > 0;
    // From before teams: its rows replay to instance admins only.
    if (!has('team_id')) sql.exec('ALTER TABLE watch_events ADD COLUMN team_id TEXT');
    // From before per-topic windows: its rows' ids serve as their topic counter (increasing per topic, as tseq must be).
    if (!has('tseq')) {
      sql.exec('ALTER TABLE watch_events ADD COLUMN tseq INTEGER');
      sql.exec('UPDATE watch_events SET tseq = id');
      const oldest = sql.exec<{ id: number | null }>('SELECT MIN(id) AS id FROM watch_events').one().id ?? (kv.get<number>(SEQ_KEY) ?? 0) + 1;
      // What the one window pruned before is gone for every topic.
      for (const t of this.opts.topics) if (oldest > 1) kv.put(PRUNED_PREFIX + t, oldest - 1);
    }
    // Each row gets its topic's previous id (the oldest, null: the KV pruned marks cover what went before).
    sql.exec(
      `INSERT INTO watch_log (topic, id, tseq, prev, at, agent_id, team_id, data)
         SELECT topic, id, tseq, (SELECT MAX(w.id) FROM watch_events w WHERE w.topic = e.topic AND w.id < e.id), at, agent_id, team_id, data FROM watch_events e`,
    );
    sql.exec('DROP TABLE watch_events');
  }

  /**
   * Accepts a watcher's upgrade: what it missed since `after` (or a gap), then live events, until
   * its credential expires. Everything up to the socket's attachment is synchronous; only setting
   * the expiry deadline waits, and by then a publish already reaches the socket.
   */
  async accept(request: WatchRequest): Promise<Response> {
    const unknown = request.topics.find((t) => !this.topics.has(t));
    if (unknown) return Response.json(errorBody('UNKNOWN_TOPIC', `no topic ${unknown}`, { topics: [...this.topics] }), { status: 400 });
    const topics = [...new Set(request.topics)];
    // This watcher may leave holding the current id (a gap says it): a skip after that must mark again.
    this.skipMark.clear();
    const pair = new WebSocketPair();
    const ws = pair[1];
    this.ctx.acceptWebSocket(ws, [WATCH_TAG, ...topics]);
    const att: Attachment = {
      agentId: request.agent_id ?? null,
      teams: request.teams,
      userId: request.user_id,
      credentialId: request.credential_id,
      expiresAt: request.expires_at,
      unacked: 0,
      replay: 0,
    };
    // A credential that expired on its way from the Worker gets nothing, not even the replay.
    const live = !expired(att, Date.now());
    if (!live) close(ws, StreamCloseCode.CREDENTIAL_EXPIRED, 'credential expired');
    else if (request.after != null) {
      const missed = this.missed(Number(request.after), topics, att);
      if (missed === null) send(ws, JSON.stringify({ t: 'gap', id: String(this.lastId()) } satisfies StreamMessage));
      else for (const m of missed) send(ws, m);
      att.unacked = att.replay = missed?.length ?? 0;
    }
    this.attachments.set(ws, att);
    ws.serializeAttachment(att);
    if (live && att.expiresAt !== null) await this.opts.scheduler.atOrBefore(WATCH_EXPIRY, att.expiresAt);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /** Stores the event under the next id and sends it to the watchers of `topic` that asked for it and may see it; returns the id. */
  publish(topic: string, data: Readonly<Record<string, unknown>>): string {
    const now = Date.now();
    this.rowsWritten = 0;
    const id = this.nextId();
    const json = JSON.stringify(data);
    const agentId = typeof data.agent_id === 'string' ? data.agent_id : null;
    const teamId = typeof data.team_id === 'string' ? data.team_id : null;
    // A compacted topic's event is kept by the hub (under this id), not here.
    if (!this.compacted[topic]) this.store(id, now, topic, agentId, teamId, json);
    const message = eventMessage(id, topic, json);
    for (const ws of this.ctx.getWebSockets(topic)) {
      const att = this.attachmentOf(ws);
      if (expired(att, now)) {
        if (ws.readyState === WebSocket.OPEN) close(ws, StreamCloseCode.CREDENTIAL_EXPIRED, 'credential expired');
        continue;
      }
      if (att.agentId !== null && att.agentId !== agentId) continue;
      if (att.teams !== null && (teamId === null || !att.teams.includes(teamId))) continue;
      this.deliver(ws, att, message);
    }
    return String(id);
  }

  /** Stores one event and prunes its topic to the topic's window. */
  private store(id: number, now: number, topic: string, agentId: string | null, teamId: string | null, json: string): void {
    const sql = this.ctx.storage.sql;
    const window = this.opts.topicReplay?.[topic] ?? this.opts.replay;
    // Only this instance writes the table: the topic's newest row is read from its index once, then kept.
    const before = this.newest.get(topic) ?? sql.exec<{ tseq: number; id: number }>('SELECT tseq, id FROM watch_log WHERE topic = ? ORDER BY id DESC LIMIT 1', topic).toArray()[0];
    const tseq = (before?.tseq ?? 0) + 1;
    this.newest.set(topic, { tseq, id });
    // The event's row; `prev` is what tells a resume, once this row is the oldest, what was pruned before it.
    this.rowsWritten += sql.exec('INSERT INTO watch_log (topic, id, tseq, prev, at, agent_id, team_id, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', topic, id, tseq, before?.id ?? null, now, agentId, teamId, json).rowsWritten;
    // Ids and tseq rise together in a topic: everything before its first row to keep (found from the oldest end, a row or two in).
    if (tseq > window.events) this.rowsWritten += sql.exec('DELETE FROM watch_log WHERE topic = ?1 AND id < (SELECT id FROM watch_log WHERE topic = ?1 AND tseq > ?2 ORDER BY id LIMIT 1)', topic, tseq - window.events).rowsWritten;
    // By age, at most once every AGE_CHECK_MS a topic: one index probe for its oldest row, and the scan only when that one is old.
    if (now >= (this.ageChecked.get(topic) ?? 0) + AGE_CHECK_MS) {
      this.ageChecked.set(topic, now);
      const oldest = sql.exec<{ at: number }>('SELECT at FROM watch_log WHERE topic = ? ORDER BY id LIMIT 1', topic).toArray()[0];
      // Up to the first row young enough (this one at least), so what is left is a suffix of the topic and its oldest `prev` is right.
      if (oldest && oldest.at < now - window.ms) this.rowsWritten += sql.exec('DELETE FROM watch_log WHERE topic = ?1 AND id < (SELECT id FROM watch_log WHERE topic = ?1 AND at >= ?2 ORDER BY id LIMIT 1)', topic, now - window.ms).rowsWritten;
    }
  }

  /** The next id: from memory, writing the mark only when it runs past the block reserved. */
  private nextId(): number {
    const seq = this.sequence();
    const id = Math.max(seq.last, seq.hole?.[1] ?? 0) + 1;
    if (id > seq.mark) {
      seq.mark = id + ID_BLOCK - 1;
      this.ctx.storage.kv.put(SEQ_KEY, seq.mark);
      this.rowsWritten++;
    }
    seq.last = id;
    return id;
  }

  /**
   * This instance's counter. The last id given is the highest one stored anywhere (a row, a pruned
   * mark, a compacted topic's newest) — every id given is stored with its event or mark in the same
   * write, so only a compacted event the hub has since dropped (a deleted device's) can be missing,
   * and taking that one for never given only turns a resume from it into a gap. The ids above it
   * up to the mark were never given: the hole.
   */
  private sequence(): Sequence {
    if (this.seq) return this.seq;
    const kv = this.ctx.storage.kv;
    const mark = kv.get<number>(SEQ_KEY) ?? 0;
    let given = 0;
    for (const t of this.topics) {
      const newest = this.ctx.storage.sql.exec<{ id: number }>('SELECT id FROM watch_log WHERE topic = ? ORDER BY id DESC LIMIT 1', t).toArray()[0]?.id ?? 0;
      given = Math.max(given, newest, kv.get<number>(PRUNED_PREFIX + t) ?? 0);
    }
    for (const c of Object.values(this.compacted)) given = Math.max(given, c.newest());
    given = Math.min(given, mark);
    this.seq = { last: given, mark, hole: given < mark ? [given, mark] : null };
    return this.seq;
  }

  /** The highest id of `topic` pruned or skipped: a resume from before it missed some of the topic's events. */
  private pruned(topic: string): number {
    const oldest = this.ctx.storage.sql.exec<{ prev: number | null }>('SELECT prev FROM watch_log WHERE topic = ? ORDER BY id LIMIT 1', topic).toArray()[0];
    return Math.max(this.ctx.storage.kv.get<number>(PRUNED_PREFIX + topic) ?? 0, oldest?.prev ?? 0);
  }

  /**
   * An event of `topic` that is not stored (nobody watches the topic, so no row is written for it):
   * a watcher resuming from before now must get a gap for the topic rather than miss it. The first
   * skip after any event or accepted watcher takes an id for the mark (one KV write, and the id
   * counter's once a block); the skips after it write nothing, and a watcher that got that id (in
   * a gap) and comes back after more skips is told of them by the next mark, since accepting it
   * cleared this one.
   */
  skip(topic: string): void {
    this.rowsWritten = 0;
    if (this.skipMark.get(topic) === this.lastId()) return;
    const id = this.nextId();
    this.ctx.storage.kv.put(PRUNED_PREFIX + topic, id);
    this.rowsWritten++;
    this.skipMark.set(topic, id);
  }

  /** A watcher's message: an ack, or refused (counted, with the reason sent back). */
  onMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    if (typeof message !== 'string') return this.refuse(ws, 'UNEXPECTED_MESSAGE', 'watchers send text messages only');
    let raw: unknown;
    try {
      raw = JSON.parse(message);
    } catch {
      return this.refuse(ws, 'UNEXPECTED_MESSAGE', 'not JSON');
    }
    const ack = StreamAckSchema.safeParse(raw);
    if (!ack.success) return this.refuse(ws, 'UNEXPECTED_MESSAGE', `a watcher sends only {"t":"ack","n":events}: ${ack.error.issues[0]?.message ?? 'invalid'}`);
    const att = this.attachmentOf(ws);
    const n = ack.data.n;
    if (n > att.unacked) return this.refuse(ws, 'BAD_ACK', `acknowledged ${n} events with only ${att.unacked} unacknowledged`);
    att.unacked -= n;
    att.replay = Math.max(0, att.replay - n);
    ws.serializeAttachment(att);
  }

  /**
   * Closes the watchers `scope` names (ACCESS_CHANGED), each criterion given having to match: a
   * user's, those opened with one credential, those that see a team through membership, those
   * following one device. Instance admins' watchers see every team and device whatever changed,
   * so only `userId` and `credentialId` reach them. Returns how many were closed.
   */
  revoke(scope: WatcherScope): number {
    let closed = 0;
    for (const ws of this.ctx.getWebSockets(WATCH_TAG)) {
      if (ws.readyState !== WebSocket.OPEN || !inScope(this.attachmentOf(ws), scope)) continue;
      close(ws, StreamCloseCode.ACCESS_CHANGED, 'access changed');
      closed++;
    }
    return closed;
  }

  /**
   * The WATCH_EXPIRY deadline: closes the watchers whose credential expired by `now`
   * (CREDENTIAL_EXPIRED) and sets the deadline to the next expiry among the others. One pass over
   * the sockets each time a credential expires; a watcher whose credential does not expire costs
   * no wake-up.
   */
  async expire(now: number): Promise<void> {
    let next: number | null = null;
    for (const ws of this.ctx.getWebSockets(WATCH_TAG)) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      const att = this.attachmentOf(ws);
      if (att.expiresAt === null) continue;
      if (expired(att, now)) close(ws, StreamCloseCode.CREDENTIAL_EXPIRED, 'credential expired');
      else if (next === null || att.expiresAt < next) next = att.expiresAt;
    }
    // atOrBefore, not at: a watcher accepted meanwhile may have set an earlier one.
    if (next !== null) await this.opts.scheduler.atOrBefore(WATCH_EXPIRY, next);
  }

  counters(): WatcherCounters {
    const kv = this.ctx.storage.kv;
    return { watchers: this.ctx.getWebSockets(WATCH_TAG).length, refused: kv.get<number>(REFUSED_KEY) ?? 0, dropped: kv.get<number>(DROPPED_KEY) ?? 0 };
  }

  /** The last id given (after a restart, the highest one stored). */
  lastId(): number {
    return this.sequence().last;
  }

  /** The events a watcher resuming after `from` missed (of the device it follows and the teams it sees), or null (a gap) if some are gone. */
  private missed(from: number, topics: readonly string[], att: Attachment): string[] | null {
    const { last, hole } = this.sequence();
    // An id from the future, or from the hole a restart left, is one this hub never gave (its storage was reset): as lost as a pruned one.
    if (from > last || (hole && from > hole[0] && from <= hole[1])) return null;
    const stored = topics.filter((t) => !this.compacted[t]);
    if (stored.some((t) => this.pruned(t) > from)) return null;
    if (from === last) return [];
    const events: { id: number; message: string }[] = [];
    if (stored.length) {
      const marks = stored.map(() => '?').join(', ');
      // The teams go as one JSON array: a list of placeholders would run into SQLite's limit on bound parameters.
      const teams = att.teams === null ? null : JSON.stringify(att.teams);
      const rows = this.ctx.storage.sql.exec<{ id: number; topic: string; data: string }>(
        `SELECT id, topic, data FROM watch_log WHERE topic IN (${marks}) AND id > ? AND (? IS NULL OR agent_id = ?)
           AND (? IS NULL OR team_id IN (SELECT value FROM json_each(?))) ORDER BY id`,
        ...stored,
        from,
        att.agentId,
        att.agentId,
        teams,
        teams,
      );
      for (const r of rows) events.push({ id: r.id, message: eventMessage(r.id, r.topic, r.data) });
    }
    const compacted = topics.filter((t) => this.compacted[t]);
    for (const t of compacted) for (const r of this.compacted[t]!.replay(from, { agentId: att.agentId, teams: att.teams })) events.push({ id: r.id, message: eventMessage(r.id, t, r.data) });
    // Each source is in id order; merged, they must be too.
    if (compacted.length) events.sort((a, b) => a.id - b.id);
    return events.map((e) => e.message);
  }

  /** Sends a live event, or drops the watcher if it holds a window of live events unacknowledged. */
  private deliver(ws: WebSocket, att: Attachment, message: string): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (att.unacked - att.replay >= this.window) return this.drop(ws);
    att.unacked++;
    ws.serializeAttachment(att);
    send(ws, message);
  }

  private drop(ws: WebSocket): void {
    this.count(DROPPED_KEY);
    const dropped: StreamMessage = { t: 'dropped', reason: `more than ${this.window} events unacknowledged` };
    send(ws, JSON.stringify(dropped));
    close(ws, StreamCloseCode.DROPPED, 'dropped');
  }

  private refuse(ws: WebSocket, code: string, reason: string): void {
    const n = this.count(REFUSED_KEY);
    console.warn(`${this.opts.name}: refused watcher message #${n}: ${reason}`);
    send(ws, JSON.stringify({ t: 'error', code, reason } satisfies StreamMessage));
  }

  private count(key: string): number {
    const n = (this.ctx.storage.kv.get<number>(key) ?? 0) + 1;
    this.ctx.storage.kv.put(key, n);
    return n;
  }

  private attachmentOf(ws: WebSocket): Attachment {
    let att = this.attachments.get(ws);
    if (!att) {
      // Every accepted watcher has one; were it missing, the socket sees no team rather than all, and counts as expired.
      att = (ws.deserializeAttachment() as Attachment | null) ?? { agentId: null, teams: [], userId: '', credentialId: '', expiresAt: 0, unacked: 0, replay: 0 };
      this.attachments.set(ws, att);
    }
    return att;
  }
}

/** The event as the wire carries it; `data` is already JSON (as stored), so it is not parsed again. */
function eventMessage(id: number, topic: string, data: string): string {
  return `{"t":"event","id":"${id}","event":"${topic}","data":${data}}`;
}

function expired(att: Attachment, now: number): boolean {
  return att.expiresAt !== null && att.expiresAt <= now;
}

function inScope(att: Attachment, scope: WatcherScope): boolean {
  if (scope.userId !== undefined && att.userId !== scope.userId) return false;
  if (scope.credentialId !== undefined && att.credentialId !== scope.credentialId) return false;
  if (scope.teamId !== undefined && !att.teams?.includes(scope.teamId)) return false;
  if (scope.deviceId !== undefined && (att.teams === null || att.agentId !== scope.deviceId)) return false;
  return true;
}

function close(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}

function send(ws: WebSocket, message: string): void {
  try {
    ws.send(message);
  } catch {
    // closing already: its close event cleans up
  }
}
