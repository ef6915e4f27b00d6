// Test helpers for workers tests: make users and API keys straight in D1, and call the app.
import { env, SELF } from 'cloudflare:test';
import { randomId, randomToken, sha256Hex } from '../../worker/auth/crypto.ts';
import { API_KEY_PREFIX } from '../../worker/auth/principal.ts';

export const BASE = 'http://relay.test';

/** The team test/worker/setup.ts makes in every file's database: test users and devices are in it by default. */
export const TEST_TEAM = 'test-team';

/** Makes the user a member of a team: admins (role "admin") as owners, everyone else as members, unless `role` says. */
export async function joinTeam(userId: string, roles: string[], team: string | null = TEST_TEAM, role?: string) {
  if (team === null) return;
  await env.DB.prepare('INSERT OR REPLACE INTO team_members (team_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)')
    .bind(team, userId, role ?? (roles.includes('admin') ? 'owner' : 'member'), Date.now())
    .run();
}

/** A user with the given roles and an API key of theirs (the password is unusable), in TEST_TEAM unless `team` says otherwise (null: none). */
export async function userWithKey(roles: string[] = ['admin'], username = `u_${randomId(4)}`, team: string | null = TEST_TEAM) {
  const userId = randomId(8);
  await env.DB.prepare('INSERT INTO users (id, username, password_hash, roles, created_at) VALUES (?1, ?2, ?3, ?4, ?5)')
    .bind(userId, username, 'unusable', JSON.stringify(roles), Date.now())
    .run();
  await joinTeam(userId, roles, team);
  const key = randomToken(API_KEY_PREFIX);
  await env.DB.prepare('INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)')
    .bind(randomId(8), userId, 'test', key.slice(0, 8), await sha256Hex(key), Date.now())
    .run();
  return { userId, username, key };
}

/** fetch against the Worker with an API key as Bearer token; JSON bodies are encoded. */
export async function api(path: string, opts: { key?: string; method?: string; json?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let body: string | undefined;
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  return SELF.fetch(`${BASE}${path}`, { method: opts.method ?? (body ? 'POST' : 'GET'), headers, body });
}
