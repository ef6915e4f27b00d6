// Instance maintenance, for instance admins ("*") only. POST /api/v1/admin/reseal is the working
// half of a VARIABLES_KEY rotation (README, "Rotating VARIABLES_KEY"): each call moves a batch of
// sealed values to the new key and says how many are left.
import { createRoute } from '@hono/zod-openapi';
import type { App } from '../openapi.ts';
import { authErrors, errorResponse } from '../openapi.ts';
import { allows } from '../auth/access.ts';
import { json, security } from '../devices/api-schemas.ts';
import { audit } from '../audit.ts';
import { ResealResultSchema } from '../../shared/api/variables.ts';
import { RESEAL_BATCH, resealBatch } from '../variables/reseal.ts';

const ResealResult = ResealResultSchema.openapi('ResealResult');

export function registerAdminRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/admin/reseal',
      tags: ['admin'],
      summary: `Re-seal up to ${RESEAL_BATCH} secrets (variables and TOTP secrets) from VARIABLES_KEY_PREVIOUS under VARIABLES_KEY`,
      description: 'Call again while `remaining` is above 0; `failed` counts values neither key opens (they are left as they are).',
      security,
      ...allows('*'),
      responses: {
        200: json(ResealResult, 'What this call moved and what is left'),
        ...authErrors,
        503: errorResponse('VARIABLES_KEY or VARIABLES_KEY_PREVIOUS is not set or not a valid key (SECRETS_UNAVAILABLE)'),
      },
    }),
    async (c) => {
      const result = await resealBatch(c.env);
      audit(c, { action: 'variables.reseal', details: { ...result } });
      return c.json(result, 200);
    },
  );
}
