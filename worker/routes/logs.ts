// The logs API: Tyto's GET /api/v1/logs and GET /api/v1/logs/stream (SSE), and the native
// GET /api/v1/devices/{id}/logs, over the lines each device's hub stores (permission logs:read).
import type { App } from '../openapi.ts';

export function registerLogRoutes(_app: App) {}
