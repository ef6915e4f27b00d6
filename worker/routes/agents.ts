// Tyto's agents API (/api/v1/agents), as its reference documents it, over the same devices as
// the native API: an "agent" is a device in Tyto's shape. "Add agent manually" pre-registers an
// approved id and returns a single-use enrollment token with which `agent enroll` claims it.
// Like the native API, it shows only the caller's teams' devices (worker/auth/scope.ts).
import { createRoute } from '@hono/zod-openapi';
import type { App } from '../openapi.ts';
import { authErrors, conflictError, errorResponse, notFoundError } from '../openapi.ts';
import { principalOf } from '../auth/middleware.ts';
import { chooseTeam, forgetDeviceTeam, visibleTeams } from '../auth/scope.ts';
import { audit } from '../audit.ts';
import { allows, onDevice } from '../auth/access.ts';
import { ApiError } from '../errors.ts';
import { getDb, iso } from '../../shared/db/index.ts';
import * as S from '../devices/api-schemas.ts';
import { getDevice, insertDeviceIfAbsent, listDevices } from '../devices/queries.ts';
import { APPROVE_PENDING, REJECT_PENDING, REVOKE, applyStatus, removeDevice } from '../devices/lifecycle.ts';
import { insertEnrollmentToken, prepareEnrollmentToken } from '../devices/enrollment-tokens.ts';
import { presentAgent } from '../devices/present.ts';

const tags = ['agents'];
const HOUR_MS = 3_600_000;
/** How long the token of a hand-added agent lasts unless the request says otherwise. */
const DEFAULT_AGENT_TOKEN_HOURS = 24 * 7;

const one = (description: string) => ({ 200: S.json(S.Agent, description), ...authErrors, ...notFoundError });
const byId = (method: 'post', path: string, summary: string) =>
  createRoute({
    method,
    path,
    tags,
    summary,
    security: S.security,
    ...onDevice(allows('devices:admin')),
    request: { params: S.DeviceIdParam },
    responses: { ...one('The agent after the change'), 502: errorResponse('The socket could not be closed (DISCONNECT_FAILED)') },
  });

export function registerAgentRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/agents',
      tags,
      summary: 'List all agents',
      security: S.security,
      ...allows('devices:read'),
      responses: { 200: S.json(S.AgentList, 'Every agent, by name'), ...authErrors },
    }),
    async (c) => c.json({ agents: (await listDevices(c.env.DB, { teams: visibleTeams(principalOf(c)) })).map(presentAgent) }, 200),
  );

  // Registered before /agents/{id} so "pending" is never taken for an id.
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/agents/pending',
      tags,
      summary: 'List pending agent registrations',
      security: S.security,
      ...allows('devices:read'),
      responses: { 200: S.json(S.AgentList, 'Agents waiting for approval'), ...authErrors },
    }),
    async (c) => c.json({ agents: (await listDevices(c.env.DB, { teams: visibleTeams(principalOf(c)), status: 'pending' })).map(presentAgent) }, 200),
  );

  app.openapi(byId('post', '/api/v1/agents/pending/{id}/approve', 'Approve a pending agent'), async (c) =>
    c.json(presentAgent(await applyStatus(c, c.req.valid('param').id, APPROVE_PENDING, 'not-found')), 200),
  );
  app.openapi(byId('post', '/api/v1/agents/pending/{id}/reject', 'Reject a pending agent'), async (c) =>
    c.json(presentAgent(await applyStatus(c, c.req.valid('param').id, REJECT_PENDING, 'not-found')), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/agents/{id}',
      tags,
      summary: 'Get agent details',
      security: S.security,
      ...onDevice(allows('devices:read')),
      request: { params: S.DeviceIdParam },
      responses: one('The agent'),
    }),
    async (c) => c.json(presentAgent(await getDevice(c.env.DB, c.req.valid('param').id)), 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/agents',
      tags,
      summary: 'Add agent manually',
      description:
        'Registers an approved agent under the given id and returns a single-use enrollment token, shown only here. ' +
        '`agent enroll --token <token>` on the device then claims this id.',
      security: S.security,
      ...allows('devices:admin'),
      request: { body: { required: true, content: { 'application/json': { schema: S.CreateAgent } } } },
      responses: { 201: S.json(S.CreatedAgent, 'The agent and its enrollment token'), ...authErrors, ...conflictError },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const teamId = await chooseTeam(c, body.team_id);
      const now = Date.now();
      const hours = body.expires_in_hours ?? DEFAULT_AGENT_TOKEN_HOURS;
      const { row: tokenRow, token } = await prepareEnrollmentToken(
        {
          name: `agent ${body.id}`,
          autoApprove: true,
          deviceId: body.id,
          maxUses: 1,
          expiresAt: now + Math.round(hours * HOUR_MS),
          createdBy: principalOf(c).userId,
          teamId,
        },
        now,
      );
      // Device and token in one transaction; if the id was taken, the token is deleted again.
      const [inserted] = await getDb(c.env.DB).batch([
        insertDeviceIfAbsent(c.env.DB, {
          id: body.id,
          name: body.name ?? body.id,
          status: 'approved',
          registeredAt: now,
          approvedAt: now,
          enrollmentTokenId: tokenRow.id,
          teamId,
          updatedAt: now,
        }),
        insertEnrollmentToken(c.env.DB, tokenRow),
      ]);
      const created = inserted[0];
      if (!created) {
        await c.env.DB.prepare('DELETE FROM enrollment_tokens WHERE id = ?1').bind(tokenRow.id).run();
        throw new ApiError(409, 'AGENT_EXISTS', `An agent with id "${body.id}" already exists`, { id: body.id });
      }
      forgetDeviceTeam(body.id); // a lookup of this id before it existed may be remembered as "no such device"
      audit(c, { action: 'device.create', targetType: 'device', targetId: body.id, teamId, details: { name: created.name, enrollment_token_id: tokenRow.id } });
      const agent = presentAgent(created);
      return c.json({ agent, enrollment_token: token, enrollment_token_expires_at: iso(tokenRow.expiresAt) }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/v1/agents/{id}',
      tags,
      summary: 'Remove agent',
      security: S.security,
      ...onDevice(allows('devices:admin')),
      request: { params: S.DeviceIdParam },
      responses: { 204: { description: 'Removed' }, ...authErrors, ...notFoundError },
    }),
    async (c) => {
      await removeDevice(c, c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  app.openapi(byId('post', '/api/v1/agents/{id}/revoke', 'Revoke agent certificate (its key is refused from now on)'), async (c) =>
    c.json(presentAgent(await applyStatus(c, c.req.valid('param').id, REVOKE, 'conflict')), 200),
  );
}
