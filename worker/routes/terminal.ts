// The terminal API: a link (GET /api/v1/devices/{id}/terminal, permission terminal:open) with a
// short-lived, single-use token for this device, the terminal socket that token opens (and the
// hub's resume token re-opens), and the sessions the device keeps, listed and closed.
import type { App } from '../openapi.ts';

export function registerTerminalRoutes(_app: App) {}
