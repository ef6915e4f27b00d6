// The D1 side of teams: teams with their counts, members, invitations. Every change that must
// not break an invariant (a team keeps an owner, a team with devices stays, an invitation is
// spent once) is one conditional statement or one batch, so two requests racing each other
// cannot both pass a check made before either wrote. The teams API, the bootstrap and the tests
// build on these.
import { randomId } from '../auth/crypto.ts';
import type { TeamRole } from '../../shared/api/teams.ts';

/** The team the first admin owns on a fresh relay (and the one an existing install migrates into). */
export const DEFAULT_TEAM_NAME = 'Default';

/** Inserts a team and its owner in one transaction; returns the team id. A taken name throws (unique index). */
export async function createTeam(d1: D1Database, t: { name: string; ownerId: string }, now: number): Promise<string> {
  const id = randomId(8);
  await d1.batch([
    d1.prepare('INSERT INTO teams (id, name, require_2fa, created_at, updated_at) VALUES (?1, ?2, 0, ?3, ?3)').bind(id, t.name, now),
    d1.prepare("INSERT INTO team_members (team_id, user_id, role, created_at) VALUES (?1, ?2, 'owner', ?3)").bind(id, t.ownerId, now),
  ]);
  return id;
}

// --- teams ----------------------------------------------------------------------------------

export interface TeamRow {
  id: string;
  name: string;
  require_2fa: number;
  created_at: number;
  updated_at: number;
  /** The viewer's role; null when they are not a member. */
  role: TeamRole | null;
  member_count: number;
  device_count: number;
}

/** A team with its counts and the role of `viewerId` in it (?1). */
const TEAM_SELECT = `SELECT t.id, t.name, t.require_2fa, t.created_at, t.updated_at, m.role,
  (SELECT count(*) FROM team_members x WHERE x.team_id = t.id) AS member_count,
  (SELECT count(*) FROM devices d WHERE d.team_id = t.id) AS device_count
  FROM teams t LEFT JOIN team_members m ON m.team_id = t.id AND m.user_id = ?1`;

/**
 * The teams `viewerId` is in, by name; every team when `all` (an instance admin). Without
 * `twoFactor`, teams that require it are left out, as everywhere else lists are filtered.
 */
export async function listTeams(d1: D1Database, viewerId: string, opts: { all: boolean; twoFactor: boolean }): Promise<TeamRow[]> {
  const where = opts.all ? '' : ` WHERE m.user_id IS NOT NULL${opts.twoFactor ? '' : ' AND t.require_2fa = 0'}`;
  const { results } = await d1.prepare(`${TEAM_SELECT}${where} ORDER BY lower(t.name), t.id`).bind(viewerId).all<TeamRow>();
  return results;
}

export async function getTeam(d1: D1Database, teamId: string, viewerId: string): Promise<TeamRow | null> {
  return d1.prepare(`${TEAM_SELECT} WHERE t.id = ?2`).bind(viewerId, teamId).first<TeamRow>();
}

/** Renames and/or switches require_2fa; false when there is no such team. A taken name throws (unique index). */
export async function updateTeam(d1: D1Database, teamId: string, change: { name?: string; require2fa?: boolean }, now: number): Promise<boolean> {
  const row = await d1
    .prepare('UPDATE teams SET name = coalesce(?2, name), require_2fa = coalesce(?3, require_2fa), updated_at = ?4 WHERE id = ?1 RETURNING id')
    .bind(teamId, change.name ?? null, change.require2fa === undefined ? null : change.require2fa ? 1 : 0, now)
    .first();
  return row !== null;
}

/**
 * Deletes a team that has no devices, in one statement (a device enrolled meanwhile keeps it);
 * its members, invitations, enrollment tokens and variables go with it (ON DELETE CASCADE).
 * When it was not deleted, deviceCount is the number of devices that kept it, or null when
 * there is no such team.
 */
export async function deleteTeam(d1: D1Database, teamId: string): Promise<{ deleted: true } | { deleted: false; deviceCount: number | null }> {
  const res = await d1.prepare('DELETE FROM teams WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM devices WHERE team_id = ?1)').bind(teamId).run();
  if (res.meta.changes > 0) return { deleted: true };
  const row = await d1
    .prepare('SELECT (SELECT count(*) FROM devices WHERE team_id = ?1) AS n FROM teams WHERE id = ?1')
    .bind(teamId)
    .first<{ n: number }>();
  return { deleted: false, deviceCount: row?.n ?? null };
}

// --- members --------------------------------------------------------------------------------

export interface MemberRow {
  user_id: string;
  username: string;
  name: string;
  email: string | null;
  role: TeamRole;
  two_factor_enabled: number;
  joined_at: number;
}

const MEMBER_SELECT = `SELECT m.user_id, u.username, u.name, u.email, m.role, (u.totp_enabled_at IS NOT NULL) AS two_factor_enabled, m.created_at AS joined_at
  FROM team_members m JOIN users u ON u.id = m.user_id`;

/** Owners first, then admins, then members; by user name within a role. */
export async function listMembers(d1: D1Database, teamId: string): Promise<MemberRow[]> {
  const { results } = await d1
    .prepare(`${MEMBER_SELECT} WHERE m.team_id = ?1 ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, lower(u.username), m.user_id`)
    .bind(teamId)
    .all<MemberRow>();
  return results;
}

export async function getMember(d1: D1Database, teamId: string, userId: string): Promise<MemberRow | null> {
  return d1.prepare(`${MEMBER_SELECT} WHERE m.team_id = ?1 AND m.user_id = ?2`).bind(teamId, userId).first<MemberRow>();
}

/** Adds a member; an existing membership throws (primary key), so two adds cannot both succeed. */
export async function insertMember(d1: D1Database, m: { teamId: string; userId: string; role: TeamRole }, now: number): Promise<void> {
  await d1.prepare('INSERT INTO team_members (team_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)').bind(m.teamId, m.userId, m.role, now).run();
}

/** Whether the team has an owner other than ?2, as a condition on a statement about team ?1. */
const ANOTHER_OWNER = "EXISTS (SELECT 1 FROM team_members o WHERE o.team_id = ?1 AND o.role = 'owner' AND o.user_id != ?2)";

/**
 * Changes a member's role unless that would leave the team without an owner, in one statement.
 * 'missing' when there is no such member, 'last_owner' when refused, 'done' otherwise.
 */
export async function setMemberRole(d1: D1Database, teamId: string, userId: string, role: TeamRole): Promise<'done' | 'missing' | 'last_owner'> {
  const res = await d1
    .prepare(`UPDATE team_members SET role = ?3 WHERE team_id = ?1 AND user_id = ?2 AND (role != 'owner' OR ?3 = 'owner' OR ${ANOTHER_OWNER})`)
    .bind(teamId, userId, role)
    .run();
  if (res.meta.changes > 0) return 'done';
  return (await getMember(d1, teamId, userId)) ? 'last_owner' : 'missing';
}

/** Removes a member unless they are the team's last owner, in one statement (as setMemberRole). */
export async function removeMember(d1: D1Database, teamId: string, userId: string): Promise<'done' | 'missing' | 'last_owner'> {
  const res = await d1
    .prepare(`DELETE FROM team_members WHERE team_id = ?1 AND user_id = ?2 AND (role != 'owner' OR ${ANOTHER_OWNER})`)
    .bind(teamId, userId)
    .run();
  if (res.meta.changes > 0) return 'done';
  return (await getMember(d1, teamId, userId)) ? 'last_owner' : 'missing';
}

// --- invitations ----------------------------------------------------------------------------

export interface InvitationRow {
  id: string;
  team_id: string;
  team_name: string;
  invitee: string;
  role: TeamRole;
  prefix: string;
  invited_by: string | null;
  created_at: number;
  expires_at: number;
  accepted_at: number | null;
  accepted_by: string | null;
  revoked_at: number | null;
}

const INVITATION_SELECT = `SELECT i.id, i.team_id, t.name AS team_name, i.invitee, i.role, i.prefix, i.invited_by, i.created_at, i.expires_at,
  i.accepted_at, i.accepted_by, i.revoked_at
  FROM team_invitations i JOIN teams t ON t.id = i.team_id`;

/** An invitation may be accepted while this holds; `now` names the statement's parameter for the time. */
const OPEN = (now: string) => `accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ${now}`;

export async function insertInvitation(
  d1: D1Database,
  i: { id: string; teamId: string; invitee: string; role: TeamRole; tokenHash: string; prefix: string; invitedBy: string; expiresAt: number },
  now: number,
): Promise<void> {
  await d1
    .prepare('INSERT INTO team_invitations (id, team_id, invitee, role, token_hash, prefix, invited_by, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)')
    .bind(i.id, i.teamId, i.invitee, i.role, i.tokenHash, i.prefix, i.invitedBy, now, i.expiresAt)
    .run();
}

export async function getInvitation(d1: D1Database, teamId: string, id: string): Promise<InvitationRow | null> {
  return d1.prepare(`${INVITATION_SELECT} WHERE i.team_id = ?1 AND i.id = ?2`).bind(teamId, id).first<InvitationRow>();
}

export async function invitationByTokenHash(d1: D1Database, tokenHash: string): Promise<InvitationRow | null> {
  return d1.prepare(`${INVITATION_SELECT} WHERE i.token_hash = ?1`).bind(tokenHash).first<InvitationRow>();
}

/** A team's invitations, newest first, whatever their state. */
export async function listTeamInvitations(d1: D1Database, teamId: string): Promise<InvitationRow[]> {
  const { results } = await d1.prepare(`${INVITATION_SELECT} WHERE i.team_id = ?1 ORDER BY i.created_at DESC, i.id`).bind(teamId).all<InvitationRow>();
  return results;
}

/**
 * The open invitations addressed to a user, by user name or e-mail (invitees are stored
 * lower-cased), to teams they are not in yet.
 */
export async function openInvitationsFor(d1: D1Database, userId: string, now: number): Promise<InvitationRow[]> {
  const { results } = await d1
    .prepare(
      `${INVITATION_SELECT} JOIN users u ON u.id = ?1
       WHERE (i.invitee = lower(u.username) OR i.invitee = lower(u.email)) AND ${OPEN('?2')}
         AND NOT EXISTS (SELECT 1 FROM team_members m WHERE m.team_id = i.team_id AND m.user_id = ?1)
       ORDER BY i.created_at DESC, i.id`,
    )
    .bind(userId, now)
    .all<InvitationRow>();
  return results;
}

/** Revokes an invitation that was not accepted; false when it was (or there is none). */
export async function revokeInvitation(d1: D1Database, teamId: string, id: string, now: number): Promise<boolean> {
  const res = await d1
    .prepare('UPDATE team_invitations SET revoked_at = coalesce(revoked_at, ?3) WHERE team_id = ?1 AND id = ?2 AND accepted_at IS NULL')
    .bind(teamId, id, now)
    .run();
  return res.meta.changes > 0;
}

/**
 * Spends an open invitation on `userId`: the membership and the mark on the invitation in one
 * batch, both under the same "still open" condition, so a token works once however many
 * requests race with it. False when the invitation was no longer open. An existing membership
 * throws (primary key) and rolls the batch back.
 */
export async function acceptInvitation(d1: D1Database, id: string, userId: string, now: number): Promise<boolean> {
  const [, marked] = await d1.batch([
    d1
      .prepare(`INSERT INTO team_members (team_id, user_id, role, created_at) SELECT team_id, ?2, role, ?3 FROM team_invitations WHERE id = ?1 AND ${OPEN('?3')}`)
      .bind(id, userId, now),
    d1.prepare(`UPDATE team_invitations SET accepted_at = ?3, accepted_by = ?2 WHERE id = ?1 AND ${OPEN('?3')}`).bind(id, userId, now),
  ]);
  return (marked?.meta.changes ?? 0) > 0;
}
