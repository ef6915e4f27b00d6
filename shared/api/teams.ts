// Teams as clients see them: the roles a member can hold and the order they rank in. The native
// team, member and invitation shapes live here too, so the dashboard and the Worker share them.
import { z } from 'zod';

/** A member's role in one team. Owners manage the team itself; admins its members, devices and variables. */
export const TEAM_ROLES = ['owner', 'admin', 'member'] as const;
export type TeamRole = (typeof TEAM_ROLES)[number];
export const TeamRoleSchema = z.enum(TEAM_ROLES);

const RANK: Record<TeamRole, number> = { member: 1, admin: 2, owner: 3 };

/** Whether `role` is at least `needed` (owner ≥ admin ≥ member). */
export function atLeast(role: TeamRole, needed: TeamRole): boolean {
  return RANK[role] >= RANK[needed];
}
