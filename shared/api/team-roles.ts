// The team roles and the order they rank in, and the invitation token's prefix: plain values with
// no zod, so the dashboard can use them without loading the schema library (shared/api/teams.ts
// re-exports them beside the schemas).

/** A member's role in one team. Owners manage the team itself; admins its members, devices and variables. */
export const TEAM_ROLES = ['owner', 'admin', 'member'] as const;
export type TeamRole = (typeof TEAM_ROLES)[number];

const RANK: Record<TeamRole, number> = { member: 1, admin: 2, owner: 3 };

/** Whether `role` is at least `needed` (owner ≥ admin ≥ member). */
export function atLeast(role: TeamRole, needed: TeamRole): boolean {
  return RANK[role] >= RANK[needed];
}

export const INVITATION_TOKEN_PREFIX = 'pri_';
