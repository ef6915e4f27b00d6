// The D1 side of teams: making a team with its first owner in one batch. The teams API, the
// bootstrap and the tests build on these.
import { randomId } from '../auth/crypto.ts';

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
