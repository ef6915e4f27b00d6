// GET /health: liveness for load balancers and scripts, as Tyto documents it.
import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../openapi.ts';
import type { AppDeps } from '../app.ts';
import { publicRoute } from '../auth/access.ts';
import { RELAY_VERSION } from '../../shared/version.ts';

const HealthSchema = z.object({ status: z.literal('ok'), version: z.string(), uptime: z.number().int() }).openapi('Health');

export function registerHealthRoutes(app: App, deps: AppDeps) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/health',
      tags: ['system'],
      summary: 'Relay health',
      ...publicRoute(),
      responses: { 200: { description: 'The relay is up', content: { 'application/json': { schema: HealthSchema } } } },
    }),
    (c) => c.json({ status: 'ok' as const, version: RELAY_VERSION, uptime: Math.floor((Date.now() - deps.startedAt) / 1000) }, 200),
  );
}
