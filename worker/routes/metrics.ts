// The metrics API: Tyto's GET /api/v1/history and GET /api/v1/export/metrics and
// POST /api/v1/settings/refresh, and the native GET /api/v1/metrics/latest (the latest sample of
// each device the caller may see, for the fleet page) and GET /api/v1/devices/{id}/metrics (one
// device's latest sample). Live samples are `event: metrics` of GET /api/v1/stream
// (routes/stream.ts). Permissions: metrics:read; the refresh interval settings:write.
import type { App } from '../openapi.ts';

export function registerMetricsRoutes(_app: App) {}
