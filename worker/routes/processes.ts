// One process, and signalling it: Tyto's GET /api/v1/processes/{pid} and POST …/signal (with
// agent_id), and the native /api/v1/devices/{id}/processes/{pid}[/signal] (permission
// processes:signal to signal). Signals come from one allow-list (shared/api/processes.ts).
import type { App } from '../openapi.ts';

export function registerProcessRoutes(_app: App) {}
