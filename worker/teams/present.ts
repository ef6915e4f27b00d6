// Team, member and invitation rows as the native API answers them (shared/api/teams.ts).
import { iso } from '../../shared/db/index.ts';
import type { Invitation, InvitationState, Team, TeamMember } from '../../shared/api/teams.ts';
import type { InvitationRow, MemberRow, TeamRow } from './queries.ts';

export function presentTeam(t: TeamRow): Team {
  return {
    id: t.id,
    name: t.name,
    require_2fa: Boolean(t.require_2fa),
    role: t.role,
    member_count: t.member_count,
    device_count: t.device_count,
    created_at: iso(t.created_at)!,
    updated_at: iso(t.updated_at)!,
  };
}

export function presentMember(m: MemberRow): TeamMember {
  return {
    user_id: m.user_id,
    username: m.username,
    name: m.name,
    email: m.email,
    role: m.role,
    two_factor_enabled: Boolean(m.two_factor_enabled),
    joined_at: iso(m.joined_at)!,
  };
}

export function invitationState(i: InvitationRow, now: number): InvitationState {
  if (i.accepted_at !== null) return 'accepted';
  if (i.revoked_at !== null) return 'revoked';
  return i.expires_at <= now ? 'expired' : 'pending';
}

export function presentInvitation(i: InvitationRow, now: number): Invitation {
  return {
    id: i.id,
    team_id: i.team_id,
    team_name: i.team_name,
    invitee: i.invitee,
    role: i.role,
    prefix: i.prefix,
    invited_by: i.invited_by,
    created_at: iso(i.created_at)!,
    expires_at: iso(i.expires_at)!,
    state: invitationState(i, now),
  };
}
