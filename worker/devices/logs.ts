// The Worker's side of the logs API: reading the lines the devices' hubs store, for one device or
// for every device the caller may see, and following them live.
//
// Fleet-wide, a query goes to at most MAX_LOG_DEVICES devices: the approved devices of the
// caller's teams seen most recently. It runs in two passes so the Worker never holds more than a
// page of messages: each hub answers the sort keys ([ts, seq]) of its first offset + limit matches
// and its total; the Worker merges the keys newest first, slices the page, and asks only the hubs
// that own a line of it for those lines. total is the sum of the hubs' totals.
//
// Live: one watcher per device on its hub's `log` topic (each hub publishes a stored batch as one
// event) bridged into one SSE body (worker/stream/sse.ts), which splits each batch into lines and
// filters them: level, source and source_name as the query does, q as a word match on the line
// (logs-search.ts matchesSearch: the same words, phrases and prefixes FTS5 matches). Each line's
// `id:` is its entry id, "<device>:<seq>"; a reader resuming with it gets, from the stored lines,
// what it missed: that device's lines after the seq, and the other devices' lines received since
// that line was (less RESUME_SLACK_MS, hubs' clocks being only nearly the same: a few lines may
// come twice, never none; a reader drops an id it has seen). A watcher on the FleetHub rides along
// with each stream only to end it when the caller's access changes or their credential is revoked
// (worker/stream/revoke.ts closes FleetHub watchers).
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { ApiError, validationError } from '../errors.ts';
import { principalOf } from '../auth/middleware.ts';
import { credentialIdOf } from '../auth/principal.ts';
import { visibleTeams } from '../auth/scope.ts';
import { hubFor } from './hub.ts';
import { LogQuerySchema, type LogEntry, type LogPage, type LogQuery } from '../../shared/api/logs.ts';
import { INTERNAL, type WatchRequest } from '../../durable-objects/hub/contract.ts';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';
import { matchesSearch, parseSearch } from '../../durable-objects/capabilities/logs-search.ts';
import { LOG_TOPIC, type LogLiveEvent } from '../../durable-objects/capabilities/logs.ts';
import type { LogCursor } from '../../durable-objects/capabilities/logs-store.ts';
import type { WatcherEvent } from '../stream/sse.ts';
import { invalidRequest } from '../openapi.ts';

/** Devices a fleet-wide query or stream reads at most (the most recently seen). */
export const MAX_LOG_DEVICES = 50;
/** Lines a resumed stream replays at most, over all its devices; past that it says `event: gap`. */
export const MAX_LOG_REPLAY = 1000;
/** How far before the resumed line's receive time the other devices' replay starts. */
export const RESUME_SLACK_MS = 2_000;

/** The query string read with LogQuerySchema (a 400 naming the parameter), and a q with no word in it refused too. */
export function readLogQuery(c: Context<AppEnv>): LogQuery {
  const parsed = LogQuerySchema.safeParse(c.req.query());
  if (!parsed.success) throw invalidRequest('query', parsed.error);
  const q = parsed.data;
  if (q.q !== undefined && !parseSearch(q.q)) {
    throw validationError('Invalid request query', { target: 'query', issues: [{ path: 'q', message: 'q holds no word to search for (letters or digits)', code: 'custom' }] });
  }
  return q;
}

/** The approved devices of the caller's teams, most recently seen first, at most MAX_LOG_DEVICES; and how many there are. */
export async function visibleLogDevices(c: Context<AppEnv>): Promise<{ ids: string[]; visible: number }> {
  const teams = visibleTeams(principalOf(c));
  if (teams?.length === 0) return { ids: [], visible: 0 };
  const json = teams === null ? null : JSON.stringify(teams);
  const rows = await c.env.DB.prepare(
    `SELECT id, COUNT(*) OVER () AS n FROM devices WHERE status = 'approved' AND (?1 IS NULL OR team_id IN (SELECT value FROM json_each(?1)))
       ORDER BY last_seen IS NULL, last_seen DESC, id LIMIT ?2`,
  )
    .bind(json, MAX_LOG_DEVICES)
    .all<{ id: string; n: number }>();
  return { ids: rows.results.map((r) => r.id), visible: rows.results[0]?.n ?? 0 };
}

/** One page over several devices, newest first (see the module comment). */
export async function queryDevices(env: Env, ids: readonly string[], q: LogQuery): Promise<LogPage> {
  if (ids.length === 0) return { entries: [], total: 0 };
  if (ids.length === 1) return hubFor(env, ids[0]!).queryLogs(q);
  const answers = await Promise.all(ids.map(async (id) => ({ id, ...(await hubFor(env, id).logKeys(q)) })));
  const all = answers.flatMap((a) => a.keys.map((k) => ({ id: a.id, ts: Number(k[0]), seq: Number(k[1]) })));
  all.sort((a, b) => b.ts - a.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : b.seq - a.seq));
  const page = all.slice(q.offset, q.offset + q.limit);
  const wanted = new Map<string, number[]>();
  for (const k of page) (wanted.get(k.id) ?? wanted.set(k.id, []).get(k.id)!).push(k.seq);
  const found = new Map<string, LogEntry>();
  await Promise.all(
    [...wanted].map(async ([id, seqs]) => {
      for (const e of await hubFor(env, id).logEntries(seqs)) found.set(e.id, e);
    }),
  );
  // A line pruned between the passes is left out of the page (it is gone), not an error.
  const entries = page.flatMap((k) => found.get(`${k.id}:${k.seq}`) ?? []);
  return { entries, total: answers.reduce((n, a) => n + a.total, 0) };
}

/** A live line passes the stream's filters (q already known to hold words). */
export function liveFilter(q: LogQuery): (e: LogEntry) => boolean {
  const terms = q.q === undefined ? null : parseSearch(q.q);
  return (e) =>
    (q.source === undefined || e.source === q.source) &&
    (q.source_name === undefined || e.source_name === q.source_name) &&
    (q.level === undefined || q.level.includes(e.level)) &&
    (q.from === undefined || Date.parse(e.timestamp) >= q.from) &&
    (q.to === undefined || Date.parse(e.timestamp) <= q.to) &&
    (terms === null || matchesSearch(terms, e.message));
}

/**
 * "<device>:<seq>", as Last-Event-ID carries it back; a malformed one is a 400 naming
 * last_event_id. One of a device the stream no longer follows (moved away, or no longer among
 * the most recently seen) is no cursor (`gone`): the stream starts live after `event: gap`, rather
 * than refuse, which would stop a browser's EventSource for good.
 */
export function readCursor(id: string | undefined, devices: readonly string[]): { device: string; seq: number } | 'gone' | null {
  if (id === undefined) return null;
  const m = /^([^:\s]{1,64}):(\d{1,15})$/.exec(id);
  if (!m) {
    throw validationError('Invalid request query', {
      target: 'query',
      issues: [{ path: 'last_event_id', message: 'last_event_id is the id ("<device>:<seq>") of a line this stream sent', code: 'custom' }],
    });
  }
  return devices.includes(m[1]!) ? { device: m[1]!, seq: Number(m[2]) } : 'gone';
}

/** What a resumed stream says before its lines when some may be missing. */
export const gapEvent = (agentId: string | null) => `event: gap\ndata: ${JSON.stringify(agentId === null ? {} : { agent_id: agentId })}\n\n`;

function sseLine(e: LogEntry): string {
  return `id: ${e.id}\nevent: log\ndata: ${JSON.stringify(e)}\n\n`;
}

/** What a stream resuming after `cursor` missed, as SSE text; and the last seq replayed per device (the live side skips up to it). */
export async function replay(env: Env, ids: readonly string[], cursor: { device: string; seq: number }, q: LogQuery): Promise<{ text: string; seen: Map<string, number> }> {
  const seen = new Map<string, number>([[cursor.device, cursor.seq]]);
  const per = Math.max(1, Math.floor(MAX_LOG_REPLAY / ids.length));
  const first = await hubFor(env, cursor.device).logsAfter({ seq: cursor.seq }, q, per);
  const since = first.received === null ? null : first.received - RESUME_SLACK_MS;
  const others = await Promise.all(
    ids
      .filter((id) => id !== cursor.device)
      .map(async (id) => {
        // The resumed line is gone (pruned): the other devices' time is unknown, so theirs start live, after a gap.
        if (since === null) return { id, entries: [] as LogEntry[], more: false, lost: true };
        return { id, ...(await hubFor(env, id).logsAfter({ received: since } satisfies LogCursor, q, per)) };
      }),
  );
  const parts = [{ id: cursor.device, ...first }, ...others];
  let text = '';
  for (const p of parts) {
    if (p.lost || p.more) text += gapEvent(p.id);
    for (const e of p.entries) text += sseLine(e);
    const last = p.entries.at(-1);
    if (last) seen.set(p.id, Number(last.id.slice(last.id.lastIndexOf(':') + 1)));
  }
  return { text, seen };
}

/** Renders a hub's batch event as the lines that pass the filters, skipping what the replay sent already. */
export function renderLive(q: LogQuery, seen: Map<string, number>): (event: WatcherEvent) => string | null {
  const passes = liveFilter(q);
  return (event) => {
    if (event.event !== LOG_TOPIC) return null; // the FleetHub's status events: that watcher only ends the stream
    const data = event.data as unknown as LogLiveEvent;
    if (!Array.isArray(data.entries)) return null;
    let text = '';
    for (const e of data.entries) {
      const seq = Number(e.id.slice(e.id.lastIndexOf(':') + 1));
      if (seq <= (seen.get(e.agent_id) ?? 0)) continue;
      seen.set(e.agent_id, seq);
      if (passes(e)) text += sseLine(e);
    }
    return text || null;
  };
}

/** Opens the watcher sockets of a log stream (not accepted yet: what arrives meanwhile waits): one per device, and the FleetHub's. */
export async function openLogWatchers(c: Context<AppEnv>, ids: readonly string[], agentId: string | null): Promise<WebSocket[]> {
  const p = principalOf(c);
  const who = { teams: visibleTeams(p), user_id: p.userId, credential_id: credentialIdOf(p), expires_at: p.expiresAt };
  const sockets: WebSocket[] = [];
  const opened = await Promise.allSettled([
    fleetHubFor(c.env).fetch(
      new Request('https://fleet-hub/watch', {
        headers: { upgrade: 'websocket', [INTERNAL.watch]: JSON.stringify({ topics: ['status'], agent_id: agentId, after: null, ...who } satisfies WatchRequest) },
      }),
    ),
    ...ids.map((id) =>
      hubFor(c.env, id).fetch(
        new Request('https://device-hub/watch', {
          headers: { upgrade: 'websocket', [INTERNAL.kind]: 'watch', [INTERNAL.watch]: JSON.stringify({ topics: [LOG_TOPIC], agent_id: id, after: null, ...who } satisfies WatchRequest) },
        }),
      ),
    ),
  ]);
  for (const r of opened) if (r.status === 'fulfilled' && r.value.webSocket) sockets.push(r.value.webSocket);
  if (sockets.length !== opened.length) {
    for (const ws of sockets) {
      ws.accept();
      ws.close(1000, 'the stream could not be opened');
    }
    throw new ApiError(502, 'STREAM_UNAVAILABLE', 'The log stream could not be opened', { devices: ids.length });
  }
  return sockets;
}
