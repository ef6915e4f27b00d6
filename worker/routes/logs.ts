// The logs API: Tyto's GET /api/v1/logs and GET /api/v1/logs/stream (SSE), and the native
// GET /api/v1/devices/{id}/logs, over the lines each device's hub stores (permission logs:read).
// The query string is read with LogQuerySchema in the handler (its times and level list are
// transforms, which the OpenAPI document shows as the strings they are read from), so a bad time,
// level or range is the same 400 VALIDATION_ERROR naming the parameter (details.issues[].path)
// everywhere. What fan-out, search and streaming do: worker/devices/logs.ts.
import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../openapi.ts';
import { authErrors, errorResponse, notFoundError } from '../openapi.ts';
import { after, allows, onDevice } from '../auth/access.ts';
import { principalOf } from '../auth/middleware.ts';
import { authorizeDevice } from '../auth/scope.ts';
import { DeviceIdParam, json, security } from '../devices/api-schemas.ts';
import { hubFor } from '../devices/hub.ts';
import { gapEvent, MAX_LOG_DEVICES, MAX_LOG_REPLAY, openLogWatchers, queryDevices, readCursor, readLogQuery, renderLive, replay, visibleLogDevices } from '../devices/logs.ts';
import { sseFromWatchers } from '../stream/sse.ts';
import { freshCaller } from './stream.ts';
import { numberVar } from '../../shared/env-vars.ts';
import { DEFAULT_LOG_LIMIT, LOG_LEVELS, LOG_SOURCES, LogEntrySchema, LogPageSchema, MAX_LOG_LIMIT, MAX_LOG_WINDOW } from '../../shared/api/logs.ts';
import { DeviceIdSchema } from '../../shared/api/devices.ts';

const tags = ['logs'];
const LogEntry = LogEntrySchema.openapi('LogEntry');
const LogPage = LogPageSchema.extend({ entries: z.array(LogEntry) }).openapi('LogPage');

const time = (what: string) => z.string().optional().openapi({ description: `${what} (ISO 8601 with an offset, e.g. 2026-12-01T10:00:00Z)`, example: '2026-12-01T10:00:00Z' });
/** LogQuerySchema as the document shows it (the handler reads the query with LogQuerySchema itself). */
const Filters = z.object({
  source: z.enum(LOG_SOURCES).optional().openapi({ description: 'Only lines of this source' }),
  source_name: z.string().optional().openapi({ description: 'Only lines of this unit (journal) or file name (file)' }),
  level: z.string().optional().openapi({ description: `A comma list of levels (${LOG_LEVELS.join(', ')}): only lines of those`, example: 'error,warning' }),
  q: z
    .string()
    .optional()
    .openapi({
      description:
        'Full-text search of the message: words are ANDed, "a quoted phrase" matches its words in order, a word ending in * matches as a prefix; ' +
        'case and accents are ignored, and anything else (operators, parentheses, punctuation) is plain text. A q with no letter or digit is a 400.',
      example: 'usb "device disconnected"',
    }),
  from: time('Only lines written at or after this time'),
  to: time('Only lines written at or before this time'),
});
const Page = z.object({
  limit: z.string().optional().openapi({ description: `Entries in the page, 1–${MAX_LOG_LIMIT} (default ${DEFAULT_LOG_LIMIT})` }),
  offset: z.string().optional().openapi({ description: `Entries skipped, newest first (offset + limit at most ${MAX_LOG_WINDOW})` }),
});
const AgentFilter = z.object({ agent_id: DeviceIdSchema.optional().openapi({ description: `Only this device; without it, the approved devices the caller may see (the ${MAX_LOG_DEVICES} seen most recently)` }) });

const read = allows('logs:read');
const errors = { ...authErrors, ...notFoundError };

export function registerLogRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/logs',
      tags,
      summary: "The device's log lines, newest first, with the total that match",
      description: 'Lines the device shipped (its journal and the files it follows), kept for LOG_RETENTION_DAYS (default 7), at most LOG_MAX_LINES (default 500,000) per device.',
      security,
      ...onDevice(read),
      request: { params: DeviceIdParam, query: Filters.merge(Page) },
      responses: { 200: json(LogPage, 'A page of entries'), ...errors },
    }),
    async (c) => c.json(await hubFor(c.env, c.req.valid('param').id).queryLogs(readLogQuery(c)), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/logs',
      tags,
      summary: 'Log lines of one device or of every device the caller may see, newest first (Tyto)',
      description:
        `Without agent_id, the ${MAX_LOG_DEVICES} approved devices of the caller's teams seen most recently are searched (the header ` +
        '`x-pirelay-log-devices: <searched>/<visible>` says how many of how many); name a device with agent_id to read any other. ' +
        '`total` is the number of matching lines on the devices searched.',
      security,
      ...read,
      request: { query: AgentFilter.merge(Filters).merge(Page) },
      responses: { 200: json(LogPage, 'A page of entries'), ...errors },
    }),
    async (c) => {
      const q = readLogQuery(c);
      if (q.agent_id !== undefined) {
        await authorizeDevice(c, q.agent_id);
        return c.json(await hubFor(c.env, q.agent_id).queryLogs(q), 200);
      }
      const { ids, visible } = await visibleLogDevices(c);
      c.header('x-pirelay-log-devices', `${ids.length}/${visible}`);
      return c.json(await queryDevices(c.env, ids, q), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/logs/stream',
      tags,
      summary: 'Log lines as they arrive (Server-Sent Events, Tyto)',
      description:
        'Each line: `id: <device>:<seq>`, `event: log`, `data:` a LogEntry, for the lines that pass the filters (q as a word match: the same words, phrases and prefixes ' +
        `as the search). Without agent_id, the ${MAX_LOG_DEVICES} approved devices of the caller's teams seen most recently. ` +
        'A `: heartbeat` comment every 15 s. With Last-Event-ID (or ?last_event_id=) the stream first sends the stored lines that followed that line ' +
        `(at most ${MAX_LOG_REPLAY}; \`event: gap\` with data {"agent_id"} when some are no longer kept or there were more, with {} when the id names a device ` +
        'the stream no longer follows), then live ones; a few lines may come twice ' +
        'after a resume (ids are unique). `event: dropped` when the reader fell too far behind (the stream then ends). ' +
        "The stream ends after `: access changed` when the caller's teams or credential change, and after `: credential expired`.",
      security,
      ...after(freshCaller, read),
      request: {
        query: AgentFilter.merge(Filters).extend({
          last_event_id: z.string().optional().openapi({ description: 'Resume after this line id (the Last-Event-ID header wins when both are given)' }),
          api_key: z.string().optional().openapi({ description: 'An API key, for clients that cannot set the Authorization header (it will show in logs)' }),
        }),
      },
      responses: {
        200: { description: 'The line stream', content: { 'text/event-stream': { schema: z.string() } } },
        ...errors,
        502: errorResponse('The stream could not be opened (STREAM_UNAVAILABLE)'),
      },
    }),
    async (c) => {
      const q = readLogQuery(c);
      const agentId = q.agent_id ?? null;
      if (agentId) await authorizeDevice(c, agentId);
      const ids = agentId ? [agentId] : (await visibleLogDevices(c)).ids;
      const cursor = readCursor(c.req.header('last-event-id') ?? c.req.query('last_event_id'), ids);
      // Watchers first, the replay after: a batch stored in between is in both, and the live side skips it by seq.
      const sockets = await openLogWatchers(c, ids, agentId);
      const { text, seen } =
        cursor === 'gone' ? { text: gapEvent(null), seen: new Map<string, number>() } : cursor ? await replay(c.env, ids, cursor, q) : { text: '', seen: new Map<string, number>() };
      for (const ws of sockets) ws.accept();
      const body = sseFromWatchers(sockets, {
        heartbeatMs: numberVar(c.env.STREAM_HEARTBEAT_MS, 15_000, 10),
        bufferBytes: numberVar(c.env.STREAM_BUFFER_BYTES, 1 << 20, 1024),
        retryMs: 2_000,
        expiresAt: principalOf(c).expiresAt,
        prelude: text,
        render: renderLive(q, seen),
      });
      return new Response(body, {
        headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' },
      });
    },
  );
}
