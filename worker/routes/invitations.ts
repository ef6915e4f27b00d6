// Team invitations: a team admin invites someone by e-mail address or user name
// (/api/v1/teams/{id}/invitations); the invitee sees their open invitations and accepts one with
// its token (/api/v1/invitations). The token is a secret shown once to the admin, who passes it
// on; the relay keeps only its SHA-256. Holding the token is not enough: the caller must be the
// invitee, so a token that leaks (a forwarded mail, a chat log) lets nobody else into the team.
// Inviting someone as owner takes an owner, as adding one does.
import { createRoute, z } from '@hono/zod-openapi';
import type { App } from '../openapi.ts';
import { authErrors, bearerSecurity, errorResponse, notFoundError } from '../openapi.ts';
import { ApiError, notFound } from '../errors.ts';
import { isUniqueViolation } from '../../shared/db/index.ts';
import { principalOf } from '../auth/middleware.ts';
import { allows, onTeam, selfService } from '../auth/access.ts';
import { authorizeTeam } from '../auth/scope.ts';
import { randomId, randomToken, sha256Hex } from '../auth/crypto.ts';
import { audit } from '../audit.ts';
import {
  acceptInvitation,
  getInvitation,
  getMember,
  getTeam,
  insertInvitation,
  invitationByTokenHash,
  listTeamInvitations,
  openInvitationsFor,
  revokeInvitation,
  type InvitationRow,
} from '../teams/queries.ts';
import { invitationState, presentInvitation, presentMember, presentTeam } from '../teams/present.ts';
import { TeamParams } from './teams.ts';
import {
  AcceptInvitationRequestSchema,
  CreateInvitationRequestSchema,
  CreatedInvitationSchema,
  INVITATION_DEFAULT_HOURS,
  INVITATION_TOKEN_PREFIX,
  InvitationListSchema,
  MembershipSchema,
} from '../../shared/api/teams.ts';

const HOUR_MS = 3_600_000;
/** Long enough to tell invitations apart in a list, far too short to help guess one. */
const PREFIX_LENGTH = INVITATION_TOKEN_PREFIX.length + 8;
const json = <T>(schema: T) => ({ 'application/json': { schema } });
const routeBase = { tags: ['teams'], security: bearerSecurity };
const InvitationList = InvitationListSchema.openapi('InvitationList');
const InvitationParams = TeamParams.extend({
  invitation_id: z.string().min(1).max(64).openapi({ param: { name: 'invitation_id', in: 'path' } }),
});

/** Why an invitation that exists can no longer be accepted. */
function notOpen(i: InvitationRow, now: number): ApiError {
  const state = invitationState(i, now);
  if (state === 'accepted') return new ApiError(409, 'INVITATION_USED', 'This invitation has already been accepted', { invitation_id: i.id });
  if (state === 'revoked') return new ApiError(410, 'INVITATION_REVOKED', 'This invitation was revoked', { invitation_id: i.id });
  return new ApiError(410, 'INVITATION_EXPIRED', 'This invitation has expired; ask for a new one', { invitation_id: i.id });
}

const alreadyMember = (teamId: string, userId: string) =>
  new ApiError(409, 'ALREADY_MEMBER', 'You are already a member of the team', { team_id: teamId, user_id: userId });

const createInvitationRoute = createRoute({
  ...routeBase,
  method: 'post',
  path: '/api/v1/teams/{id}/invitations',
  summary: 'Invite someone by e-mail address or user name (team admin; as owner needs team owner); the token is shown only in this response',
  ...onTeam(allows('teams:write'), 'id', 'admin'),
  request: { params: TeamParams, body: { required: true, content: json(CreateInvitationRequestSchema.openapi('CreateInvitationRequest')) } },
  responses: { 201: { description: 'The invitation, with its token', content: json(CreatedInvitationSchema.openapi('CreatedInvitation')) }, ...authErrors, ...notFoundError },
});

const listTeamInvitationsRoute = createRoute({
  ...routeBase,
  method: 'get',
  path: '/api/v1/teams/{id}/invitations',
  summary: "A team's invitations, newest first, whatever their state (team admin); never their tokens",
  ...onTeam(allows('teams:read'), 'id', 'admin'),
  request: { params: TeamParams },
  responses: { 200: { description: 'Invitations', content: json(InvitationList) }, ...authErrors, ...notFoundError },
});

const revokeInvitationRoute = createRoute({
  ...routeBase,
  method: 'delete',
  path: '/api/v1/teams/{id}/invitations/{invitation_id}',
  summary: 'Revoke an invitation that was not accepted (team admin; an invitation as owner needs team owner)',
  ...onTeam(allows('teams:write'), 'id', 'admin'),
  request: { params: InvitationParams },
  responses: { 204: { description: 'Revoked' }, ...authErrors, ...notFoundError, 409: errorResponse('Already accepted (INVITATION_USED)') },
});

const myInvitationsRoute = createRoute({
  ...routeBase,
  method: 'get',
  path: '/api/v1/invitations',
  summary: 'Your open invitations: those to your user name or e-mail address, to teams you are not in',
  ...allows(),
  responses: { 200: { description: 'Invitations', content: json(InvitationList) }, ...authErrors },
});

const acceptInvitationRoute = createRoute({
  ...routeBase,
  method: 'post',
  path: '/api/v1/invitations/accept',
  summary: 'Accept an invitation addressed to you, with its token (a session or an API key that is not narrowed)',
  ...selfService(),
  request: { body: { required: true, content: json(AcceptInvitationRequestSchema.openapi('AcceptInvitationRequest')) } },
  responses: {
    200: { description: 'The team and your membership', content: json(MembershipSchema.openapi('Membership')) },
    ...authErrors,
    ...notFoundError,
    409: errorResponse('Already accepted (INVITATION_USED) or already a member (ALREADY_MEMBER)'),
    410: errorResponse('Revoked (INVITATION_REVOKED) or expired (INVITATION_EXPIRED)'),
  },
});

export function registerInvitationRoutes(app: App) {
  app.openapi(createInvitationRoute, async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    // The declaration checked the admin role; an owner is invited only by an owner.
    if (body.role === 'owner') authorizeTeam(c, id, 'owner');
    const p = principalOf(c);
    const now = Date.now();
    const token = randomToken(INVITATION_TOKEN_PREFIX);
    const invitationId = randomId(8);
    const expiresAt = now + (body.expires_in_hours ?? INVITATION_DEFAULT_HOURS) * HOUR_MS;
    await insertInvitation(
      c.env.DB,
      { id: invitationId, teamId: id, invitee: body.invitee, role: body.role, tokenHash: await sha256Hex(token), prefix: token.slice(0, PREFIX_LENGTH), invitedBy: p.userId, expiresAt },
      now,
    );
    audit(c, { action: 'invitation.create', targetType: 'invitation', targetId: invitationId, teamId: id, details: { invitee: body.invitee, role: body.role, expires_at: new Date(expiresAt).toISOString() } });
    const row = (await getInvitation(c.env.DB, id, invitationId))!;
    return c.json({ ...presentInvitation(row, now), token }, 201);
  });

  app.openapi(listTeamInvitationsRoute, async (c) => {
    const { id } = c.req.valid('param');
    const now = Date.now();
    const rows = await listTeamInvitations(c.env.DB, id);
    return c.json({ invitations: rows.map((r) => presentInvitation(r, now)) }, 200);
  });

  app.openapi(revokeInvitationRoute, async (c) => {
    const { id, invitation_id: invitationId } = c.req.valid('param');
    const invitation = await getInvitation(c.env.DB, id, invitationId);
    if (!invitation) throw notFound('Invitation', { team_id: id, invitation_id: invitationId });
    if (invitation.role === 'owner') authorizeTeam(c, id, 'owner');
    if (invitation.revoked_at !== null) return c.body(null, 204);
    const now = Date.now();
    if (!(await revokeInvitation(c.env.DB, id, invitationId, now))) {
      // Accepted, before or since the read above.
      const again = await getInvitation(c.env.DB, id, invitationId);
      throw again ? notOpen(again, now) : notFound('Invitation', { team_id: id, invitation_id: invitationId });
    }
    audit(c, { action: 'invitation.revoke', targetType: 'invitation', targetId: invitationId, teamId: id, details: { invitee: invitation.invitee, role: invitation.role } });
    return c.body(null, 204);
  });

  app.openapi(myInvitationsRoute, async (c) => {
    const now = Date.now();
    const rows = await openInvitationsFor(c.env.DB, principalOf(c).userId, now);
    return c.json({ invitations: rows.map((r) => presentInvitation(r, now)) }, 200);
  });

  app.openapi(acceptInvitationRoute, async (c) => {
    const { token } = c.req.valid('json');
    const p = principalOf(c);
    const invitation = await invitationByTokenHash(c.env.DB, await sha256Hex(token));
    if (!invitation) throw notFound('Invitation');
    const me = await c.env.DB.prepare('SELECT lower(username) AS username, lower(email) AS email FROM users WHERE id = ?1')
      .bind(p.userId)
      .first<{ username: string; email: string | null }>();
    // Before anything about its state, so a stranger holding the token learns nothing more.
    if (!me || (invitation.invitee !== me.username && invitation.invitee !== me.email)) {
      throw new ApiError(403, 'NOT_INVITEE', 'This invitation is addressed to someone else', { invitation_id: invitation.id });
    }
    const now = Date.now();
    if (invitationState(invitation, now) !== 'pending') throw notOpen(invitation, now);
    if (await getMember(c.env.DB, invitation.team_id, p.userId)) throw alreadyMember(invitation.team_id, p.userId);
    let accepted: boolean;
    try {
      accepted = await acceptInvitation(c.env.DB, invitation.id, p.userId, now);
    } catch (e) {
      if (isUniqueViolation(e)) throw alreadyMember(invitation.team_id, p.userId);
      throw e;
    }
    if (!accepted) {
      // Spent, revoked or expired between the read above and the batch.
      const again = await invitationByTokenHash(c.env.DB, await sha256Hex(token));
      throw again ? notOpen(again, now) : notFound('Invitation');
    }
    audit(c, { action: 'invitation.accept', targetType: 'invitation', targetId: invitation.id, teamId: invitation.team_id, details: { role: invitation.role } });
    const team = (await getTeam(c.env.DB, invitation.team_id, p.userId))!;
    const member = (await getMember(c.env.DB, invitation.team_id, p.userId))!;
    return c.json({ team: presentTeam(team), member: presentMember(member) }, 200);
  });
}
