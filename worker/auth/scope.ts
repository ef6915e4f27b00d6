// Which team's things a caller may touch. The rule (README, "Teams and access"): a caller holding
// "*" is an instance admin and acts in every team. Anyone else acts on a team's devices, tunnels
// and variables only as a member of that team, and then only with what their global role grants
// AND their role in the team allows: members everything but "<resource>:admin" permissions,
// admins those too (and the team's members and settings), owners the team itself. A team that
// requires two-factor login admits only members who have it. A device of a team the caller is
// not in does not exist for them (404, so ids cannot be probed); a member who lacks the team role
// or the second factor is told so (403).
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { atLeast, type TeamRole } from '../../shared/api/teams.ts';
import { ApiError, notFound } from '../errors.ts';
import { principalOf } from './middleware.ts';
import type { Principal } from './principal.ts';
import { devicesByIdOrName, type DeviceRef } from '../tunnels/queries.ts';

export function isInstanceAdmin(p: Principal): boolean {
  return p.permissions.includes('*');
}

/** The team role a permission needs: "<resource>:admin" (and "*") is for team admins, the rest for members. */
export function teamRoleFor(permission: string): TeamRole {
  return permission === '*' || permission.endsWith(':admin') || permission.endsWith(':*') ? 'admin' : 'member';
}

/** The highest team role any of the permissions needs: what a route declaring them needs in the team it acts in. */
export function teamRoleForAll(permissions: readonly string[]): TeamRole {
  return permissions.some((p) => teamRoleFor(p) === 'admin') ? 'admin' : 'member';
}

/**
 * The ids of the teams whose devices the caller may see, or null for every team (an instance
 * admin). Teams requiring 2FA are left out for a user without it.
 */
export function visibleTeams(p: Principal): string[] | null {
  return teamsWhere(p, 'member');
}

/** The teams where the caller holds at least team role `need` (and passes their 2FA rule), or null for every team. */
export function teamsWhere(p: Principal, need: TeamRole): string[] | null {
  if (isInstanceAdmin(p)) return null;
  return Object.keys(p.teams).filter((id) => mayActIn(p, id, need));
}

/**
 * The teams a list shows: those where the caller holds `need`, narrowed to `requested` when a
 * list is asked for one team. A team they cannot see yields an empty list, not an error, so a
 * filter cannot tell a foreign team from a made-up id.
 */
export function listedTeams(p: Principal, requested?: string, need: TeamRole = 'member'): string[] | null {
  const teams = teamsWhere(p, need);
  if (requested === undefined) return teams;
  return teams === null || teams.includes(requested) ? [requested] : [];
}

/** Whether the caller may act in `teamId` with at least team role `need` (no error, for filters). */
export function mayActIn(p: Principal, teamId: string, need: TeamRole = 'member'): boolean {
  if (isInstanceAdmin(p)) return true;
  const m = p.teams[teamId];
  return !!m && (!m.require2fa || p.twoFactor) && atLeast(m.role, need);
}

/**
 * Checks that the caller may act in `teamId` with team role `need`; throws `hidden()` (a 404)
 * when they are not a member, 403 TWO_FACTOR_REQUIRED or TEAM_ROLE_REQUIRED when they are.
 */
export function assertInTeam(p: Principal, teamId: string, need: TeamRole, hidden: () => ApiError): void {
  if (isInstanceAdmin(p)) return;
  const m = p.teams[teamId];
  if (!m) throw hidden();
  if (m.require2fa && !p.twoFactor) {
    throw new ApiError(403, 'TWO_FACTOR_REQUIRED', 'This team requires two-factor login; enable it on your account first', { team_id: teamId });
  }
  if (!atLeast(m.role, need)) {
    throw new ApiError(403, 'TEAM_ROLE_REQUIRED', `This needs the ${need} role in the team (you are ${m.role})`, { team_id: teamId, role: m.role, required: need });
  }
}

/**
 * Device id → team id, per isolate for a few seconds, so a device RPC stays one D1-free hop.
 * Moving or deleting a device through this isolate clears the entry at once (forgetDeviceTeam);
 * other isolates notice within the TTL, as with cached credentials.
 */
const DEVICE_TEAM_MS = 5_000;
const DEVICE_TEAM_MAX = 10_000;
const deviceTeams = new Map<string, { teamId: string | null; until: number }>();

export function forgetDeviceTeam(deviceId?: string): void {
  if (deviceId === undefined) deviceTeams.clear();
  else deviceTeams.delete(deviceId);
}

/** The team a device belongs to, or null when there is no such device. */
export async function deviceTeam(env: Env, deviceId: string, now = Date.now()): Promise<string | null> {
  const hit = deviceTeams.get(deviceId);
  if (hit && hit.until > now) return hit.teamId;
  const row = await env.DB.prepare('SELECT team_id FROM devices WHERE id = ?1').bind(deviceId).first<{ team_id: string }>();
  const teamId = row?.team_id ?? null;
  if (deviceTeams.size >= DEVICE_TEAM_MAX) deviceTeams.clear();
  deviceTeams.set(deviceId, { teamId, until: now + DEVICE_TEAM_MS });
  return teamId;
}

/**
 * The access check of a route that acts on one device, after its declared permission passed:
 * the device must exist and be in a team the caller may act in with the team role the route's
 * permissions need (or `need`, when given). Returns the device's team id.
 */
export async function authorizeDevice(c: Context<AppEnv>, deviceId: string, need?: TeamRole): Promise<string> {
  const p = principalOf(c);
  const hidden = () => notFound('Device', { device_id: deviceId });
  const teamId = await deviceTeam(c.env, deviceId);
  if (teamId === null) throw hidden();
  assertInTeam(p, teamId, need ?? teamRoleForAll(c.get('required') ?? []), hidden);
  return teamId;
}

/**
 * authorizeDevice for a device named by id or else by display name (`pirelay tcp garage-pi:22`):
 * only devices of teams where the caller holds `need` are looked at, so another team's device is
 * neither a match nor a namesake. Several matches are 409 AMBIGUOUS_DEVICE.
 */
export async function authorizeDeviceNamed(c: Context<AppEnv>, ref: string, need: TeamRole): Promise<DeviceRef> {
  const matches = await devicesByIdOrName(c.env.DB, ref, teamsWhere(principalOf(c), need));
  if (matches.length === 0) throw notFound('Device', { device: ref });
  if (matches.length > 1) {
    throw new ApiError(409, 'AMBIGUOUS_DEVICE', `Several devices are named "${ref}"; use the device id`, { device_ids: matches.map((d) => d.id) });
  }
  return matches[0]!;
}

/** The same check for a team itself (its members, settings and variables). */
export function authorizeTeam(c: Context<AppEnv>, teamId: string, need?: TeamRole): void {
  assertInTeam(principalOf(c), teamId, need ?? teamRoleForAll(c.get('required') ?? []), () => notFound('Team', { team_id: teamId }));
}

/**
 * 404 Team unless the team exists. authorizeTeam passes an instance admin for any id, and a
 * member's cached credential (a few seconds old) may still name a team deleted since.
 */
export async function assertTeamExists(env: Env, teamId: string): Promise<void> {
  if (!(await env.DB.prepare('SELECT 1 FROM teams WHERE id = ?1').bind(teamId).first())) throw notFound('Team', { team_id: teamId });
}

/**
 * Leaving a team only narrows what one sees, so any member may take back their own membership,
 * whatever their team role and even when the team's 2FA requirement shuts them out.
 */
export function authorizeOwnMembership(c: Context<AppEnv>, teamId: string): void {
  const p = principalOf(c);
  if (!isInstanceAdmin(p) && !p.teams[teamId]) throw notFound('Team', { team_id: teamId });
}

/**
 * The team the route's declared scope (onDevice, onTeam in worker/auth/access.ts) resolved and
 * authorized. A route that declares none has no team here: that is a mistake in the route, so it
 * fails loudly rather than act unchecked.
 */
export function scopedTeam(c: Context<AppEnv>): string {
  const teamId = c.get('teamId');
  if (teamId === undefined) throw new Error(`${c.req.method} ${c.req.path} declares no device or team scope (onDevice, onTeam)`);
  return teamId;
}

/**
 * The team a new thing (an enrollment token, a device added by hand) goes to: `requested` when
 * given, which the caller must be able to act in with the route's team role; else the caller's
 * one team, when they are in exactly one. Anything else is 422 TEAM_REQUIRED.
 */
export async function chooseTeam(c: Context<AppEnv>, requested: string | undefined): Promise<string> {
  if (requested !== undefined) {
    authorizeTeam(c, requested);
    await assertTeamExists(c.env, requested);
    return requested;
  }
  const ids = Object.keys(principalOf(c).teams);
  if (ids.length === 1) {
    authorizeTeam(c, ids[0]!);
    return ids[0]!;
  }
  throw new ApiError(422, 'TEAM_REQUIRED', ids.length ? 'You are in several teams: say which one with team_id' : 'You are in no team: say which one with team_id', {
    teams: ids,
  });
}
