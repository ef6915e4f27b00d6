// The Worker's side of the metrics API (routes/metrics.ts, and the compat layers' metrics): which
// devices a query reads, the range it covers and whether it fits MAX_HISTORY_POINTS, the relay's
// refresh interval (D1 `settings`), the latest samples, and the export body. Samples and history
// live in each device's hub (its own SQLite); the Worker only asks and presents.
//
// An export over a range is streamed: a ReadableStream whose pull() asks one hub for one page
// (DeviceHub.metricsExport, time order, resumable from `next`) and writes it out, so the Worker
// holds one page at a time whatever the range, and a slow reader slows the hub reads rather than
// filling memory. CSV is in long form, `timestamp,agent_id,series,avg,min,max`, one row per
// series per point, every field quoted as RFC 4180 says when it needs it (a mount point may hold
// commas, quotes or line breaks); JSON is one array, written element by element.
import type { Context } from 'hono';
import type { z } from 'zod';
import type { AppEnv } from '../app-env.ts';
import { principalOf } from '../auth/middleware.ts';
import { authorizeDevice, visibleTeams } from '../auth/scope.ts';
import { validationError } from '../errors.ts';
import { invalidRequest } from '../openapi.ts';
import { hubFor } from './hub.ts';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';
import {
  BUCKET_MS,
  DEFAULT_REFRESH_SECONDS,
  LIVE_INTERVAL_MS,
  MAX_HISTORY_POINTS,
  RESOLUTIONS,
  RefreshSettingsSchema,
  seriesOf,
  type MetricsEvent,
  type MetricsSample,
  type Resolution,
} from '../../shared/api/metrics.ts';

/** The D1 `settings` key of the relay's refresh interval (seconds, a JSON number). */
export const REFRESH_KEY = 'metrics.refresh_seconds';
/** A range left open at both ends covers the last hour, as Tyto's dashboard asks. */
export const DEFAULT_RANGE_MS = 3_600_000;
/** Rows an export asks a hub for at once (the hub caps it at 1,000). */
export const EXPORT_PAGE_ROWS = 500;

/** The relay's refresh interval in seconds (D1), or DEFAULT_REFRESH_SECONDS when none was set or the stored one is not one. */
export async function refreshSeconds(db: D1Database): Promise<number> {
  const row = await db.prepare('SELECT value FROM settings WHERE key = ?1').bind(REFRESH_KEY).first<{ value: string }>();
  if (!row) return DEFAULT_REFRESH_SECONDS;
  let value: unknown;
  try {
    value = JSON.parse(row.value);
  } catch {
    return DEFAULT_REFRESH_SECONDS;
  }
  const parsed = RefreshSettingsSchema.shape.interval.safeParse(value);
  return parsed.success ? parsed.data : DEFAULT_REFRESH_SECONDS;
}

/** The query string read with `schema`: a 400 VALIDATION_ERROR naming each bad parameter. */
export function readQuery<S extends z.ZodType>(c: Context<AppEnv>, schema: S): z.output<S> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) throw invalidRequest('query', parsed.error);
  return parsed.data;
}

const rangeError = (path: string, message: string, details: Record<string, unknown> = {}) =>
  validationError('Invalid request query', { target: 'query', issues: [{ path, message, code: 'custom' }], ...details });

/** `from`/`to` with their defaults: up to now, an hour before `to`; `from` after `to` (after the defaults) is a 400 naming from. */
export function resolveRange(q: { from?: number; to?: number }, now = Date.now()): { from: number; to: number } {
  const to = q.to ?? now;
  const from = q.from ?? to - DEFAULT_RANGE_MS;
  if (from > to) throw rangeError('from', `from (${new Date(from).toISOString()}) is after to (${new Date(to).toISOString()})`);
  return { from, to };
}

/** How far apart the points of a resolution are at the closest: raw points as close as samples can be (the live interval). */
const spacing = (r: Resolution) => (r === 'raw' ? LIVE_INTERVAL_MS : BUCKET_MS[r]);

/** The most points a range can hold at a resolution. */
export const pointsIn = (range: { from: number; to: number }, r: Resolution) => Math.floor((range.to - range.from) / spacing(r)) + 1;

/**
 * A range that may hold more than MAX_HISTORY_POINTS points at `resolution` is a 400 naming
 * resolution, saying which resolution would fit (or, past every one, how long a range may be).
 */
export function assertFits(range: { from: number; to: number }, resolution: Resolution): void {
  const n = pointsIn(range, resolution);
  if (n <= MAX_HISTORY_POINTS) return;
  const fits = RESOLUTIONS.find((r) => pointsIn(range, r) <= MAX_HISTORY_POINTS);
  const hours = Math.floor(((MAX_HISTORY_POINTS - 1) * BUCKET_MS['1h']) / 3_600_000);
  const message = fits
    ? `the range may hold ${n} points at resolution ${resolution}, more than ${MAX_HISTORY_POINTS}: use resolution ${fits} or a shorter range`
    : `the range may hold ${n} points at resolution ${resolution}, more than ${MAX_HISTORY_POINTS}: even at 1h a range may span at most ${hours} hours`;
  throw rangeError('resolution', message, { max_points: MAX_HISTORY_POINTS, ...(fits ? { fits } : {}) });
}

/** The approved devices of the caller's teams (id and team), oldest first; at most `limit`. */
export async function visibleDevices(c: Context<AppEnv>, limit = 100_000): Promise<{ id: string; team_id: string }[]> {
  const teams = visibleTeams(principalOf(c));
  if (teams?.length === 0) return [];
  const rows = await c.env.DB.prepare(
    `SELECT id, team_id FROM devices WHERE status = 'approved' AND (?1 IS NULL OR team_id IN (SELECT value FROM json_each(?1))) ORDER BY registered_at, id LIMIT ?2`,
  )
    .bind(teams === null ? null : JSON.stringify(teams), limit)
    .all<{ id: string; team_id: string }>();
  return rows.results;
}

/**
 * The one device a history query reads: agent_id (a device of another team is a 404), or, left
 * out, the one device the caller may see (Tyto's single-device mode); with several, a 400 naming
 * agent_id.
 */
export async function historyDevice(c: Context<AppEnv>, agentId: string | undefined): Promise<{ id: string; team_id: string }> {
  if (agentId !== undefined) return { id: agentId, team_id: await authorizeDevice(c, agentId) };
  const devices = await visibleDevices(c, 2);
  if (devices.length === 1) return devices[0]!;
  throw rangeError('agent_id', devices.length ? 'agent_id is required: the caller may see several devices' : 'agent_id is required: the caller may see no device', { visible: devices.length });
}

/** The devices an export or a latest list reads: agent_id's (404 for another team's), or every one the caller may see. */
export async function devicesFor(c: Context<AppEnv>, agentId: string | undefined): Promise<{ id: string; team_id: string }[]> {
  if (agentId !== undefined) return [{ id: agentId, team_id: await authorizeDevice(c, agentId) }];
  return visibleDevices(c);
}

/**
 * The latest sample of each of `devices`: from the FleetHub (one call, the samples of the refresh
 * interval) for many, from the device's hub for one (its very latest). The team is D1's now, not
 * the one the sample was published with, and a device not in the list (moved away, removed) is
 * left out.
 */
export async function latestOf(env: Env, devices: readonly { id: string; team_id: string }[], teams: string[] | null): Promise<MetricsEvent[]> {
  if (devices.length === 0) return [];
  if (devices.length === 1) {
    const d = devices[0]!;
    const latest = await hubFor(env, d.id).latestMetrics();
    return latest ? [{ ...latest.sample, agent_id: d.id, team_id: d.team_id }] : [];
  }
  const team = new Map(devices.map((d) => [d.id, d.team_id]));
  const events = await fleetHubFor(env).latestMetrics(teams);
  return events.flatMap((e) => {
    const t = team.get(e.agent_id);
    return t === undefined ? [] : [{ ...e, team_id: t }];
  });
}

// ---- export ----

/** One CSV field as RFC 4180 writes it: quoted (quotes doubled) when it holds a comma, a quote or a line break. */
export function csvField(v: string | number): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export const CSV_HEADER = 'timestamp,agent_id,series,avg,min,max\r\n';
const csvRow = (fields: (string | number)[]) => `${fields.map(csvField).join(',')}\r\n`;

type Stat = { avg: number; min: number; max: number };

function csvRows(timestamp: string, agentId: string, series: Record<string, Stat>): string {
  let out = '';
  for (const [name, s] of Object.entries(series)) out += csvRow([timestamp, agentId, name, s.avg, s.min, s.max]);
  return out;
}

/** The latest samples as an export: JSON, the samples themselves (MetricsEvent); CSV, each one's series (avg = min = max). */
export function latestExport(events: readonly MetricsEvent[], format: 'json' | 'csv'): string {
  if (format === 'json') return JSON.stringify(events);
  let out = CSV_HEADER;
  for (const e of events) {
    const series = Object.fromEntries(Object.entries(seriesOf(e as MetricsSample)).map(([k, v]) => [k, { avg: v, min: v, max: v }]));
    out += csvRows(new Date(Date.parse(e.timestamp)).toISOString(), e.agent_id, series);
  }
  return out;
}

/**
 * The history of `ids` over a range as a stream, device after device, page after page (see the
 * module comment). JSON elements are the history's points with the device: {timestamp, agent_id,
 * <series>: {avg, min, max}}.
 */
export function exportStream(env: Env, ids: readonly string[], q: { format: 'json' | 'csv'; resolution: Resolution; from: number; to: number }): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let device = 0;
  let cursor = q.from;
  let started = false;
  let rows = 0;
  return new ReadableStream<Uint8Array>(
    {
      // Called when the reader wants more: each call writes at least one chunk (a pull that enqueues nothing would not be called again).
      async pull(controller) {
        if (!started) {
          started = true;
          controller.enqueue(encoder.encode(q.format === 'csv' ? CSV_HEADER : '['));
          return;
        }
        for (;;) {
          const id = ids[device];
          if (id === undefined) {
            if (q.format === 'json') controller.enqueue(encoder.encode(']'));
            controller.close();
            return;
          }
          const page = await hubFor(env, id).metricsExport(q.resolution, cursor, q.to, EXPORT_PAGE_ROWS);
          if (page.next === null) {
            device++;
            cursor = q.from;
          } else cursor = page.next;
          let text = '';
          for (const r of page.rows) {
            const timestamp = new Date(r.timestamp).toISOString();
            if (q.format === 'csv') text += csvRows(timestamp, id, r.series);
            else text += `${rows++ ? ',' : ''}${JSON.stringify({ timestamp, agent_id: id, ...r.series })}`;
          }
          if (text) {
            controller.enqueue(encoder.encode(text));
            return;
          }
        }
      },
    },
    { highWaterMark: 0 },
  );
}

/** `metrics-<what>-<time>.<format>`, the file name an export is saved as. */
export function exportFileName(what: string, format: 'json' | 'csv', now = Date.now()): string {
  const stamp = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z').replaceAll(':', '');
  return `metrics-${what.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)}-${stamp}.${format}`;
}
