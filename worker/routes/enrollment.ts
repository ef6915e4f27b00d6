// Enrollment: admins make, list and revoke enrollment tokens (/api/v1/enrollment-tokens), and
// agents trade one for a device record (POST /api/v1/enroll). The enroll call has no user
// credentials: the token in its body is the credential. Tokens belong to a team: only its
// admins (and instance admins) see and revoke them.
import { createRoute } from '@hono/zod-openapi';
import type { App } from '../openapi.ts';
import { authErrors, conflictError, errorResponse, notFoundError } from '../openapi.ts';
import { principalOf } from '../auth/middleware.ts';
import { assertInTeam, chooseTeam, teamsWhere } from '../auth/scope.ts';
import { audit } from '../audit.ts';
import { allows, publicRoute } from '../auth/access.ts';
import { notFound, validationError } from '../errors.ts';
import * as S from '../devices/api-schemas.ts';
import {
  findEnrollmentToken,
  insertEnrollmentToken,
  listEnrollmentTokens,
  prepareEnrollmentToken,
  revokeEnrollmentToken,
} from '../devices/enrollment-tokens.ts';
import { presentEnrollmentToken } from '../devices/present.ts';
import { enroll } from '../devices/enroll.ts';
import { ENROLL_PATH } from '../../shared/constants.ts';

const HOUR_MS = 3_600_000;

export function registerEnrollmentRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/enrollment-tokens',
      tags: ['enrollment'],
      summary: 'Create an enrollment token (the secret is shown only in this response)',
      security: S.security,
      ...allows('devices:admin'),
      request: { body: { required: true, content: { 'application/json': { schema: S.CreateEnrollmentToken } } } },
      responses: { 201: S.json(S.CreatedEnrollmentToken, 'The token, with its secret'), ...authErrors },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const now = Date.now();
      let expiresAt: number | null = null;
      if (body.expires_in_hours !== undefined) expiresAt = now + Math.round(body.expires_in_hours * HOUR_MS);
      if (body.expires_at !== undefined) {
        expiresAt = Date.parse(body.expires_at);
        if (expiresAt <= now) throw validationError('expires_at is in the past', { field: 'expires_at' });
      }
      const { row, token } = await prepareEnrollmentToken(
        { name: body.name, autoApprove: body.auto_approve, expiresAt, maxUses: body.max_uses, createdBy: principalOf(c).userId, teamId: await chooseTeam(c, body.team_id) },
        now,
      );
      await insertEnrollmentToken(c.env.DB, row);
      audit(c, {
        action: 'enrollment_token.create',
        targetType: 'enrollment_token',
        targetId: row.id,
        teamId: row.teamId,
        details: { name: row.name, prefix: row.prefix, auto_approve: row.autoApprove, max_uses: row.maxUses },
      });
      return c.json({ ...presentEnrollmentToken(row, now), token }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/enrollment-tokens',
      tags: ['enrollment'],
      summary: 'List the enrollment tokens of the teams the caller administers (never their secrets)',
      security: S.security,
      ...allows('devices:admin'),
      responses: { 200: S.json(S.EnrollmentTokenList, 'The tokens, newest first'), ...authErrors },
    }),
    async (c) => {
      const now = Date.now();
      const rows = await listEnrollmentTokens(c.env.DB, teamsWhere(principalOf(c), 'admin'));
      return c.json({ enrollment_tokens: rows.map((r) => presentEnrollmentToken(r, now)) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/v1/enrollment-tokens/{id}',
      tags: ['enrollment'],
      summary: 'Revoke an enrollment token; devices already enrolled with it are not affected',
      security: S.security,
      ...allows('devices:admin'),
      request: { params: S.TokenIdParam },
      responses: { 200: S.json(S.EnrollmentToken, 'The revoked token'), ...authErrors, ...notFoundError },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const now = Date.now();
      const hidden = () => notFound('Enrollment token', { id });
      const found = await findEnrollmentToken(c.env.DB, id);
      if (!found) throw hidden();
      assertInTeam(principalOf(c), found.teamId, 'admin', hidden);
      const row = await revokeEnrollmentToken(c.env.DB, id, now);
      if (!row) throw hidden();
      audit(c, { action: 'enrollment_token.revoke', targetType: 'enrollment_token', targetId: id, teamId: row.teamId, details: { prefix: row.prefix } });
      return c.json(presentEnrollmentToken(row, now), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: ENROLL_PATH,
      tags: ['enrollment'],
      summary: "Register a device's public key and facts with an enrollment token (used by `agent enroll`)",
      description:
        'No user credentials: the enrollment token in the body authenticates. The device is pending until approved, ' +
        'unless the token auto-approves or was made for this device by POST /api/v1/agents.',
      ...publicRoute(),
      request: { body: { required: true, content: { 'application/json': { schema: S.EnrollRequest } } } },
      responses: {
        201: S.json(S.EnrollResponse, 'The device is registered'),
        400: errorResponse('Invalid request, public key or facts (VALIDATION_ERROR)'),
        401: errorResponse('INVALID_ENROLLMENT_TOKEN, ENROLLMENT_TOKEN_EXPIRED or ENROLLMENT_TOKEN_EXHAUSTED'),
        ...conflictError,
      },
    }),
    async (c) => {
      const { device, teamId, tokenId } = await enroll(c.env.DB, c.req.valid('json'), Date.now());
      // The enrollment token is the credential: there is no user to name as the actor.
      audit(c, {
        action: 'device.enroll',
        actor: { id: null, name: '' },
        targetType: 'device',
        targetId: device.device_id,
        teamId,
        details: { name: device.name, status: device.status, enrollment_token_id: tokenId },
      });
      return c.json(device, 201);
    },
  );
}
