// The metrics API: Tyto's GET /api/v1/history and GET /api/v1/export/metrics and
// POST /api/v1/settings/refresh, and the native GET /api/v1/settings (the refresh interval now),
// GET /api/v1/metrics/latest (the latest sample of each device the caller may see, for the fleet
// page) and GET /api/v1/devices/{id}/metrics (one device's latest sample). Live samples are
// `event: metrics` of GET /api/v1/stream (routes/stream.ts). Permissions: metrics:read; the
// refresh interval settings:write. The query strings are read with the shared schemas in the
// handlers (their times are transforms, which the document shows as the strings they are read
// from), so a bad time, resolution or range is a 400 VALIDATION_ERROR naming the parameter.
// Which devices, which range, and the export body: worker/devices/metrics.ts.
import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../openapi.ts';
import { authErrors, errorResponse, notFoundError } from '../openapi.ts';
import { allows, onDevice } from '../auth/access.ts';
import { principalOf } from '../auth/middleware.ts';
import { visibleTeams } from '../auth/scope.ts';
import { audit } from '../audit.ts';
import { ApiError } from '../errors.ts';
import { DeviceIdParam, json, security } from '../devices/api-schemas.ts';
import { hubFor } from '../devices/hub.ts';
import {
  REFRESH_KEY,
  assertFits,
  devicesFor,
  exportFileName,
  exportStream,
  historyDevice,
  latestExport,
  latestOf,
  readQuery,
  refreshSeconds,
  resolveRange,
  visibleDevices,
} from '../devices/metrics.ts';
import { DeviceIdSchema } from '../../shared/api/devices.ts';
import {
  EXPORT_FORMATS,
  ExportQuerySchema,
  HistoryQuerySchema,
  HistoryResponseSchema,
  LatestMetricsSchema,
  MAX_HISTORY_POINTS,
  MAX_REFRESH_SECONDS,
  MetricsEventSchema,
  MIN_REFRESH_SECONDS,
  RESOLUTIONS,
  RefreshSettingsSchema,
} from '../../shared/api/metrics.ts';

const tags = ['metrics'];
const read = allows('metrics:read');
const errors = { ...authErrors, ...notFoundError };

const MetricsEvent = MetricsEventSchema.openapi('MetricsEvent');
const LatestMetrics = LatestMetricsSchema.extend({ metrics: z.array(MetricsEvent) }).openapi('LatestMetrics');
const History = HistoryResponseSchema.openapi('MetricsHistory');
const RefreshSettings = RefreshSettingsSchema.openapi('RefreshSettings');

const time = (what: string) => z.string().optional().openapi({ description: `${what} (ISO 8601 with an offset, e.g. 2026-12-01T10:00:00Z)`, example: '2026-12-01T10:00:00Z' });
const Range = z.object({
  from: time('Start (default: an hour before to)'),
  to: time('End (default: now)'),
});
const agentId = (without: string) => z.object({ agent_id: DeviceIdSchema.optional().openapi({ description: `The device; ${without}` }) });
const BOUND = `A range that may hold more than ${MAX_HISTORY_POINTS} points at the resolution (raw points at most one a second) is a 400 naming resolution and saying which one fits.`;

export function registerMetricsRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/history',
      tags,
      summary: "A device's metrics history: avg/min/max of each series per bucket (Tyto)",
      description:
        `Buckets of the resolution (raw: each sample) from \`from\` to \`to\`, oldest first. ${BOUND} ` +
        'Series: cpu, cpu.<core>, memory, swap, load1/load5/load15, disk (the fullest mount, %), disk:<mount point>, disk_read/disk_write (B/s), ' +
        'net_rx/net_tx (B/s), temperature (the hottest sensor, °C), gpu, connections, processes.',
      security,
      ...read,
      request: {
        query: agentId('required unless the caller may see exactly one device').merge(Range).extend({
          resolution: z.string().optional().openapi({ description: `Bucket width: ${RESOLUTIONS.join(', ')} (default 1m)` }),
          series: z.string().optional().openapi({ description: 'A comma list of series (default every series)', example: 'cpu,memory' }),
        }),
      },
      responses: { 200: json(History, 'The buckets'), ...errors },
    }),
    async (c) => {
      const q = readQuery(c, HistoryQuerySchema);
      const range = resolveRange(q);
      assertFits(range, q.resolution);
      const device = await historyDevice(c, q.agent_id);
      return c.json(await hubFor(c.env, device.id).metricsHistory({ ...q, agent_id: device.id, ...range }), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/export/metrics',
      tags,
      summary: 'Export metrics as JSON or CSV: the current samples, or the history of a range (Tyto)',
      description:
        'Without from and to: the latest sample of each device the caller may see (or of agent_id): JSON, an array of samples (as `event: metrics` carries them); ' +
        'CSV, each sample\'s series. With from or to: the history of agent_id (or of every device the caller may see) over the range at the resolution ' +
        `(default raw), streamed: JSON, one array of {timestamp, agent_id, <series>: {avg, min, max}}; CSV, \`timestamp,agent_id,series,avg,min,max\` ` +
        `(RFC 4180 quoting, CRLF line ends). ${BOUND} Saved as an attachment.`,
      security,
      ...read,
      request: {
        query: agentId('without it, every device the caller may see').merge(Range).extend({
          format: z.string().optional().openapi({ description: `${EXPORT_FORMATS.join(' or ')} (default json)` }),
          resolution: z.string().optional().openapi({ description: `Bucket width of a range export: ${RESOLUTIONS.join(', ')} (default raw)` }),
        }),
      },
      responses: {
        200: { description: 'The export', content: { 'application/json': { schema: z.array(z.record(z.string(), z.unknown())) }, 'text/csv': { schema: z.string() } } },
        ...errors,
      },
    }),
    async (c) => {
      const q = readQuery(c, ExportQuerySchema);
      const ranged = q.from !== undefined || q.to !== undefined;
      const range = ranged ? resolveRange(q) : null;
      if (range) assertFits(range, q.resolution);
      const devices = await devicesFor(c, q.agent_id);
      const headers = {
        'content-type': q.format === 'csv' ? 'text/csv; charset=utf-8; header=present' : 'application/json; charset=utf-8',
        'content-disposition': `attachment; filename="${exportFileName(q.agent_id ?? 'fleet', q.format)}"`,
        'cache-control': 'no-store',
      };
      if (!range) return new Response(latestExport(await latestOf(c.env, devices, visibleTeams(principalOf(c))), q.format), { headers });
      const body = exportStream(
        c.env,
        devices.map((d) => d.id),
        { format: q.format, resolution: q.resolution, ...range },
      );
      return new Response(body, { headers });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/settings',
      tags,
      summary: "The relay's refresh interval (seconds between samples while nobody watches a device live)",
      security,
      ...read,
      responses: { 200: json(RefreshSettings, 'The settings'), ...authErrors },
    }),
    async (c) => c.json({ interval: await refreshSeconds(c.env.DB) }, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/settings/refresh',
      tags,
      summary: 'Set the refresh interval (Tyto): connected agents take it at once',
      description:
        `The seconds between samples (${MIN_REFRESH_SECONDS}–${MAX_REFRESH_SECONDS}) while nobody watches a device live (a device watched live samples every second), ` +
        'and the rate fleet-wide streams get each device at. Relay-wide: instance admins only (settings:write).',
      security,
      ...allows('settings:write'),
      request: { body: { required: true, content: { 'application/json': { schema: RefreshSettings } } } },
      responses: { 200: json(RefreshSettings, 'The interval now'), ...authErrors },
    }),
    async (c) => {
      const { interval } = c.req.valid('json');
      const p = principalOf(c);
      const now = Date.now();
      const before = await refreshSeconds(c.env.DB);
      await c.env.DB.prepare(
        'INSERT INTO settings (key, value, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by',
      )
        .bind(REFRESH_KEY, JSON.stringify(interval), now, p.userId)
        .run();
      // The devices connected now hear it from their hubs; the others read it on their next hello.
      const online = await c.env.DB.prepare("SELECT id FROM devices WHERE online = 1 AND status = 'approved'").all<{ id: string }>();
      c.executionCtx.waitUntil(
        Promise.allSettled(online.results.map((d) => hubFor(c.env, d.id).refreshChanged(interval))).then((results) => {
          const failed = results.filter((r) => r.status === 'rejected').length;
          if (failed) console.error(`settings.refresh: ${failed} of ${results.length} device hubs were not told the new interval (they read it on the next hello)`);
        }),
      );
      audit(c, { action: 'settings.refresh', targetType: 'settings', targetId: REFRESH_KEY, teamId: null, details: { from: before, to: interval } });
      return c.json({ interval }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/metrics/latest',
      tags,
      summary: 'The latest sample of each device the caller may see (the fleet page\'s first paint)',
      description: "Samples as the fleet-wide stream carries them (at most one per refresh interval per device); a device that sent none since the relay's FleetHub started keeping them is absent.",
      security,
      ...read,
      responses: { 200: json(LatestMetrics, 'The samples'), ...authErrors },
    }),
    async (c) => {
      const teams = visibleTeams(principalOf(c));
      const devices = await visibleDevices(c);
      // One device: its own hub's very latest; more: the FleetHub's, one call for the fleet.
      return c.json({ metrics: await latestOf(c.env, devices, teams) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/devices/{id}/metrics',
      tags,
      summary: "The device's latest sample",
      security,
      ...onDevice(read),
      request: { params: DeviceIdParam },
      responses: { 200: json(MetricsEvent, 'The sample'), ...errors, 404: errorResponse('No such device, or it sent no sample yet (NO_SAMPLE)') },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const latest = await hubFor(c.env, id).latestMetrics();
      if (!latest) throw new ApiError(404, 'NO_SAMPLE', 'The device has sent no sample yet', { device_id: id });
      return c.json({ ...latest.sample, agent_id: id, team_id: c.var.teamId! }, 200);
    },
  );
}
