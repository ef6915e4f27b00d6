// The first-admin bootstrap. The DB of this file starts with no users; the tests run in order
// and only the last one creates users.
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../worker/auth/crypto.ts';
import { api } from './helpers.ts';
import { basicAuth, expectError, jsonInit, login, withEnv } from './auth-helpers.ts';

const TOKEN = env.BOOTSTRAP_TOKEN!;
const admin = { username: 'root-admin', password: 'correct horse battery', email: 'root@example.com' };
const boot = (body: unknown, token: string | null = TOKEN) =>
  api('/api/v1/bootstrap', { json: body, headers: token === null ? {} : { authorization: `Bearer ${token}` } });
const userCount = () => env.DB.prepare('SELECT count(*) AS n FROM users').first<number>('n');

describe('POST /api/v1/bootstrap', () => {
  it('is refused with 403 BOOTSTRAP_DISABLED when BOOTSTRAP_TOKEN is not set', async () => {
    const res = await withEnv({ BOOTSTRAP_TOKEN: undefined }, '/api/v1/bootstrap', jsonInit(admin, { authorization: `Bearer ${TOKEN}` }));
    await expectError(res, 403, 'BOOTSTRAP_DISABLED');
    expect(await userCount()).toBe(0);
  });

  it('is refused with 401 for a missing or wrong token', async () => {
    await expectError(await boot(admin, null), 401, 'INVALID_BOOTSTRAP_TOKEN');
    await expectError(await boot(admin, `${TOKEN}x`), 401, 'INVALID_BOOTSTRAP_TOKEN');
    await expectError(await boot(admin, TOKEN.slice(0, -1)), 401, 'INVALID_BOOTSTRAP_TOKEN');
    const basic = await api('/api/v1/bootstrap', { json: admin, headers: basicAuth(TOKEN) });
    await expectError(basic, 401, 'INVALID_BOOTSTRAP_TOKEN');
    expect(await userCount()).toBe(0);
  });

  it('validates the body with the password policy', async () => {
    const body = await expectError(await boot({ username: 'x', password: 'short' }), 400, 'VALIDATION_ERROR');
    expect((body.details.issues as { path: string }[]).map((i) => i.path).sort()).toEqual(['password', 'username']);
    expect(await userCount()).toBe(0);
  });

  it('creates the first admin and an admin API key once; later calls get 409 ALREADY_BOOTSTRAPPED', async () => {
    const res = await boot(admin);
    expect(res.status).toBe(201);
    const body = (await res.json()) as { user: Record<string, unknown>; api_key: string };
    expect(Object.keys(body).sort()).toEqual(['api_key', 'user']);
    expect(body.user).toMatchObject({ username: admin.username, email: admin.email, roles: ['admin'], disabled: false, auth_provider: 'local' });
    expect(body.api_key).toMatch(/^prk_[A-Za-z0-9_-]{40,}$/);

    // The key works and is an admin's; only its hash is stored.
    const me = await api('/api/v1/auth/me', { key: body.api_key });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ username: admin.username, roles: ['admin'], permissions: ['*'] });
    const stored = await env.DB.prepare('SELECT key_hash FROM api_keys WHERE user_id = ?1').bind(body.user.id).first<string>('key_hash');
    expect(stored).toBe(await sha256Hex(body.api_key));
    expect((await api('/api/v1/users', { key: body.api_key })).status).toBe(200);

    // The password works too.
    const loggedIn = await login(admin.username, admin.password);
    expect(loggedIn.status).toBe(200);
    expect(((await loggedIn.json()) as { user: { permissions: string[] } }).user.permissions).toEqual(['*']);

    // Recorded with the new admin as the actor (no one was logged in), the key by id only.
    const { results } = await env.DB.prepare('SELECT action, actor_id, credential, target_type, team_id, details FROM audit_log ORDER BY id').all<{
      action: string;
      actor_id: string;
      target_type: string;
      team_id: string | null;
      details: string | null;
    }>();
    expect(results.map((e) => [e.action, e.actor_id, e.target_type])).toEqual([
      ['user.create', body.user.id, 'user'],
      ['team.create', body.user.id, 'team'],
      ['api_key.create', body.user.id, 'api_key'],
      // The password login just above.
      ['login', body.user.id, 'user'],
    ]);
    expect(results[1]!.team_id).toBeTruthy();
    const log = JSON.stringify(results);
    for (const secret of [body.api_key, admin.password, TOKEN]) expect(log).not.toContain(secret);

    await expectError(await boot({ ...admin, username: 'second-admin' }), 409, 'ALREADY_BOOTSTRAPPED');
    // Even an invalid body gets the 409: the door is closed before the body is read.
    await expectError(await boot({}), 409, 'ALREADY_BOOTSTRAPPED');
    expect(await userCount()).toBe(1);
  });
});
