// /api/v1/teams: teams and their members. Who may do what is the rule of worker/auth/scope.ts:
// a team the caller is not in does not exist for them (404); members read it, team admins
// manage its members (not owners) and settings, owners the team itself and its owners. The
// global permissions (teams:read, teams:write) stay the ceiling. A team never loses its last
// owner, and a team that still holds devices is not deleted (the devices would have nowhere to
// be). Whenever someone's view of the fleet shrinks, their live streams are told to re-check.
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { authErrors, bearerSecurity, conflictError, errorResponse, notFoundError } from '../openapi.ts';
import { ApiError, notFound, unprocessable } from '../errors.ts';
import { isUniqueViolation } from '../../shared/db/index.ts';
import { principalOf } from '../auth/middleware.ts';
import { allows, onTeam } from '../auth/access.ts';
import { authorizeTeam, isInstanceAdmin } from '../auth/scope.ts';
import { audit } from '../audit.ts';
import { revokeWatchers } from '../stream/revoke.ts';
import {
  createTeam,
  deleteTeam,
  getMember,
  getTeam,
  insertMember,
  listMembers,
  listTeams,
  removeMember,
  setMemberRole,
  updateTeam,
  type MemberRow,
} from '../teams/queries.ts';
import { presentMember, presentTeam } from '../teams/present.ts';
import {
  AddMemberRequestSchema,
  CreateTeamRequestSchema,
  TeamDetailSchema,
  TeamIdSchema,
  TeamListSchema,
  TeamMemberSchema,
  TeamSchema,
  UpdateMemberRequestSchema,
  UpdateTeamRequestSchema,
  atLeast,
  type TeamRole,
} from '../../shared/api/teams.ts';

const TeamOut = TeamSchema.openapi('Team');
const MemberOut = TeamMemberSchema.openapi('TeamMember');
export const TeamParams = z.object({ id: TeamIdSchema.openapi({ param: { name: 'id', in: 'path' } }) });
const MemberParams = TeamParams.extend({ user_id: z.string().min(1).max(64).openapi({ param: { name: 'user_id', in: 'path' } }) });
const json = <T>(schema: T) => ({ 'application/json': { schema } });
const routeBase = { tags: ['teams'], security: bearerSecurity };

const nameTaken = (name: string) => new ApiError(409, 'TEAM_NAME_TAKEN', `A team named "${name}" already exists`, { name });
const lastOwner = (teamId: string, userId: string) =>
  new ApiError(409, 'LAST_OWNER', 'This is the last owner of the team; make someone else owner first', { team_id: teamId, user_id: userId });
const memberNotFound = (teamId: string, userId: string) => notFound('Member', { team_id: teamId, user_id: userId });

/** The team as the caller sees it; 404 when it went since the route's declared check found it. */
async function teamFor(c: Context<AppEnv>, teamId: string) {
  const row = await getTeam(c.env.DB, teamId, principalOf(c).userId);
  if (!row) throw notFound('Team', { team_id: teamId });
  return row;
}

/**
 * Giving, changing or taking away the owner role is for owners; the rest of member management for
 * admins, which the route's declaration (onTeam) already checked.
 */
function authorizeRoleChange(c: Context<AppEnv>, teamId: string, ...roles: TeamRole[]) {
  if (roles.includes('owner')) authorizeTeam(c, teamId, 'owner');
}

const listTeamsRoute = createRoute({
  ...routeBase,
  method: 'get',
  path: '/api/v1/teams',
  summary: "List your teams (an instance admin: every team); teams requiring 2FA are left out until you have it",
  ...allows('teams:read'),
  responses: { 200: { description: 'Teams, by name', content: json(TeamListSchema.openapi('TeamList')) }, ...authErrors },
});

const createTeamRoute = createRoute({
  ...routeBase,
  method: 'post',
  path: '/api/v1/teams',
  summary: 'Create a team; you become its owner',
  ...allows('teams:write'),
  request: { body: { required: true, content: json(CreateTeamRequestSchema.openapi('CreateTeamRequest')) } },
  responses: { 201: { description: 'Created', content: json(TeamOut) }, ...authErrors, 409: errorResponse('The name is taken (TEAM_NAME_TAKEN)') },
});

const getTeamRoute = createRoute({
  ...routeBase,
  method: 'get',
  path: '/api/v1/teams/{id}',
  summary: 'Get a team with its members',
  ...onTeam(allows('teams:read')),
  request: { params: TeamParams },
  responses: { 200: { description: 'The team', content: json(TeamDetailSchema.openapi('TeamDetail')) }, ...authErrors, ...notFoundError },
});

const updateTeamRoute = createRoute({
  ...routeBase,
  method: 'patch',
  path: '/api/v1/teams/{id}',
  summary: "Rename a team or switch its 2FA requirement (team admin)",
  ...onTeam(allows('teams:write'), 'id', 'admin'),
  request: { params: TeamParams, body: { required: true, content: json(UpdateTeamRequestSchema.openapi('UpdateTeamRequest')) } },
  responses: { 200: { description: 'Updated', content: json(TeamOut) }, ...authErrors, ...notFoundError, 409: errorResponse('The name is taken (TEAM_NAME_TAKEN)') },
});

const deleteTeamRoute = createRoute({
  ...routeBase,
  method: 'delete',
  path: '/api/v1/teams/{id}',
  summary: 'Delete a team that has no devices, with its members, invitations, enrollment tokens and variables (team owner)',
  ...onTeam(allows('teams:write'), 'id', 'owner'),
  request: { params: TeamParams },
  responses: { 204: { description: 'Deleted' }, ...authErrors, ...notFoundError, 409: errorResponse('The team still has devices (TEAM_HAS_DEVICES, details.device_count)') },
});

const addMemberRoute = createRoute({
  ...routeBase,
  method: 'post',
  path: '/api/v1/teams/{id}/members',
  summary: 'Add a user to a team (team admin; making an owner needs team owner)',
  ...onTeam(allows('teams:write'), 'id', 'admin'),
  request: { params: TeamParams, body: { required: true, content: json(AddMemberRequestSchema.openapi('AddMemberRequest')) } },
  responses: { 201: { description: 'The new member', content: json(MemberOut) }, ...authErrors, ...notFoundError, ...conflictError, 422: errorResponse('The user is disabled (USER_DISABLED)') },
});

const updateMemberRoute = createRoute({
  ...routeBase,
  method: 'patch',
  path: '/api/v1/teams/{id}/members/{user_id}',
  summary: "Change a member's role (team admin; to or from owner needs team owner)",
  ...onTeam(allows('teams:write'), 'id', 'admin'),
  request: { params: MemberParams, body: { required: true, content: json(UpdateMemberRequestSchema.openapi('UpdateMemberRequest')) } },
  responses: { 200: { description: 'The member', content: json(MemberOut) }, ...authErrors, ...notFoundError, 409: errorResponse('The last owner would go (LAST_OWNER)') },
});

const removeMemberRoute = createRoute({
  ...routeBase,
  method: 'delete',
  path: '/api/v1/teams/{id}/members/{user_id}',
  summary: 'Remove a member (team admin; an owner needs team owner), or leave a team (your own user id)',
  ...onTeam(allows('teams:write'), 'id', 'admin', { self: 'user_id' }),
  request: { params: MemberParams },
  responses: { 204: { description: 'Removed' }, ...authErrors, ...notFoundError, 409: errorResponse('The last owner would go (LAST_OWNER)') },
});

export function registerTeamRoutes(app: App) {
  app.openapi(listTeamsRoute, async (c) => {
    const p = principalOf(c);
    const rows = await listTeams(c.env.DB, p.userId, { all: isInstanceAdmin(p), twoFactor: p.twoFactor });
    return c.json({ teams: rows.map(presentTeam) }, 200);
  });

  app.openapi(createTeamRoute, async (c) => {
    const { name } = c.req.valid('json');
    const p = principalOf(c);
    let id: string;
    try {
      id = await createTeam(c.env.DB, { name, ownerId: p.userId }, Date.now());
    } catch (e) {
      if (isUniqueViolation(e)) throw nameTaken(name);
      throw e;
    }
    audit(c, { action: 'team.create', targetType: 'team', targetId: id, teamId: id, details: { name } });
    return c.json(presentTeam((await getTeam(c.env.DB, id, p.userId))!), 201);
  });

  app.openapi(getTeamRoute, async (c) => {
    const { id } = c.req.valid('param');
    const team = await teamFor(c, id);
    const members = await listMembers(c.env.DB, id);
    return c.json({ ...presentTeam(team), members: members.map(presentMember) }, 200);
  });

  app.openapi(updateTeamRoute, async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    const before = await teamFor(c, id);
    const p = principalOf(c);
    // Requiring what the admin lacks would shut them out of the team they are managing.
    if (body.require_2fa && !before.require_2fa && !p.twoFactor && !isInstanceAdmin(p)) {
      throw new ApiError(403, 'TWO_FACTOR_REQUIRED', 'Turn on two-factor login for your own account before requiring it of the team', { team_id: id });
    }
    try {
      if (!(await updateTeam(c.env.DB, id, { name: body.name, require2fa: body.require_2fa }, Date.now()))) throw notFound('Team', { team_id: id });
    } catch (e) {
      if (isUniqueViolation(e)) throw nameTaken(body.name!);
      throw e;
    }
    const details: Record<string, unknown> = {};
    if (body.name !== undefined && body.name !== before.name) details.name = { from: before.name, to: body.name };
    if (body.require_2fa !== undefined && body.require_2fa !== Boolean(before.require_2fa)) details.require_2fa = body.require_2fa;
    if (Object.keys(details).length) audit(c, { action: 'team.update', targetType: 'team', targetId: id, teamId: id, details });
    if (details.require_2fa === true) await revokeWatchers(c.env, { teamId: id });
    return c.json(presentTeam(await teamFor(c, id)), 200);
  });

  app.openapi(deleteTeamRoute, async (c) => {
    const { id } = c.req.valid('param');
    const team = await teamFor(c, id);
    const result = await deleteTeam(c.env.DB, id);
    if (!result.deleted) {
      if (result.deviceCount === null) throw notFound('Team', { team_id: id });
      throw new ApiError(409, 'TEAM_HAS_DEVICES', `The team still has ${result.deviceCount} device(s); move or delete them first`, {
        team_id: id,
        device_count: result.deviceCount,
      });
    }
    audit(c, { action: 'team.delete', targetType: 'team', targetId: id, teamId: id, details: { name: team.name } });
    await revokeWatchers(c.env, { teamId: id });
    return c.body(null, 204);
  });

  app.openapi(addMemberRoute, async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    authorizeRoleChange(c, id, body.role);
    const user = await c.env.DB.prepare(`SELECT id, disabled FROM users WHERE ${body.user_id !== undefined ? 'id' : 'username'} = ?1`)
      .bind(body.user_id ?? body.username)
      .first<{ id: string; disabled: number }>();
    if (!user) throw notFound('User', body.user_id !== undefined ? { user_id: body.user_id } : { username: body.username });
    if (user.disabled) throw unprocessable('USER_DISABLED', 'The user is disabled', { user_id: user.id });
    try {
      await insertMember(c.env.DB, { teamId: id, userId: user.id, role: body.role }, Date.now());
    } catch (e) {
      if (isUniqueViolation(e)) throw new ApiError(409, 'ALREADY_MEMBER', 'The user is already a member of the team', { team_id: id, user_id: user.id });
      throw e;
    }
    audit(c, { action: 'member.add', targetType: 'user', targetId: user.id, teamId: id, details: { role: body.role } });
    return c.json(presentMember((await getMember(c.env.DB, id, user.id))!), 201);
  });

  app.openapi(updateMemberRoute, async (c) => {
    const { id, user_id: userId } = c.req.valid('param');
    const { role } = c.req.valid('json');
    const member = await existingMember(c, id, userId);
    authorizeRoleChange(c, id, member.role, role);
    const outcome = await setMemberRole(c.env.DB, id, userId, role);
    if (outcome === 'missing') throw memberNotFound(id, userId);
    if (outcome === 'last_owner') throw lastOwner(id, userId);
    if (role !== member.role) audit(c, { action: 'member.update', targetType: 'user', targetId: userId, teamId: id, details: { from: member.role, to: role } });
    if (!atLeast(role, member.role)) await revokeWatchers(c.env, { userId, teamId: id });
    return c.json(presentMember((await getMember(c.env.DB, id, userId)) ?? { ...member, role }), 200);
  });

  app.openapi(removeMemberRoute, async (c) => {
    const { id, user_id: userId } = c.req.valid('param');
    // The declaration let a member through to leave (their own user id), or an admin to remove.
    const leaving = userId === principalOf(c).userId;
    const member = await existingMember(c, id, userId);
    if (!leaving) authorizeRoleChange(c, id, member.role);
    const outcome = await removeMember(c.env.DB, id, userId);
    if (outcome === 'missing') throw memberNotFound(id, userId);
    if (outcome === 'last_owner') throw lastOwner(id, userId);
    audit(c, { action: 'member.remove', targetType: 'user', targetId: userId, teamId: id, details: { role: member.role, ...(leaving ? { left: true } : {}) } });
    await revokeWatchers(c.env, { userId, teamId: id });
    return c.body(null, 204);
  });
}

/** The member the route acts on, in the team its declaration found (404 when not a member). */
async function existingMember(c: Context<AppEnv>, teamId: string, userId: string): Promise<MemberRow> {
  const member = await getMember(c.env.DB, teamId, userId);
  if (!member) throw memberNotFound(teamId, userId);
  return member;
}
