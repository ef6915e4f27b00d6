// The audit entries of logins and account changes (worker/routes/auth.ts, users.ts): each kind is
// recorded with who acted and what it concerned, and never a password.
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { api, userWithKey } from './helpers.ts';
import { freshIp, jsonInit, login, sessionUser, userWithPassword, withEnv } from './auth-helpers.ts';

interface Entry {
  id: number;
  actor_id: string | null;
  actor_name: string;
  credential: string;
  credential_id: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  ip: string;
  details: Record<string, unknown> | null;
}

/** The entries written since `after` (an entry id), oldest first. */
async function entriesSince(after: number): Promise<Entry[]> {
  const { results } = await env.DB.prepare('SELECT * FROM audit_log WHERE id > ?1 ORDER BY id').bind(after).all<Entry & { details: string | null }>();
  return results.map((r) => ({ ...r, details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null }));
}
const lastId = async () => (await env.DB.prepare('SELECT coalesce(max(id), 0) AS n FROM audit_log').first<number>('n')) ?? 0;

describe('audit of logins', () => {
  it('a login names the user; a failed one the name tried (and its id only if it exists); never the password', async () => {
    const u = await userWithPassword();
    const start = await lastId();
    const ip = freshIp();
    expect((await login(u.username, u.password, ip)).status).toBe(200);
    expect((await login(u.username, 'the-wrong-password', ip)).status).toBe(401);
    expect((await login('no-such-user', 'a-guessed-password', ip)).status).toBe(401);
    const entries = await entriesSince(start);
    expect(entries.map((e) => [e.action, e.actor_id, e.actor_name, e.credential, e.target_id])).toEqual([
      ['login', u.userId, u.username, 'none', u.userId],
      ['login.failed', u.userId, u.username, 'none', u.userId],
      ['login.failed', null, 'no-such-user', 'none', null],
    ]);
    expect(entries.every((e) => e.ip === ip)).toBe(true);
    const text = JSON.stringify(entries);
    for (const secret of [u.password, 'the-wrong-password', 'a-guessed-password']) expect(text).not.toContain(secret);
  });

  it('a disabled account with the right password is a failed login too', async () => {
    const u = await userWithPassword(['viewer'], { disabled: true });
    const start = await lastId();
    expect((await login(u.username, u.password)).status).toBe(403);
    expect((await entriesSince(start)).map((e) => [e.action, e.actor_id, e.details])).toEqual([['login.failed', u.userId, { reason: 'account_disabled' }]]);
  });

  it('logout and a password change are recorded against the session that made them', async () => {
    const s = await sessionUser();
    const start = await lastId();
    const res = await api('/api/v1/auth/me/password', { key: s.token, method: 'PUT', json: { current_password: s.password, new_password: 'a-brand-new-password' } });
    expect(res.status).toBe(204);
    expect((await api('/api/v1/auth/logout', { key: s.token, method: 'POST' })).status).toBe(204);
    const entries = await entriesSince(start);
    expect(entries.map((e) => [e.action, e.actor_id, e.credential, e.target_id])).toEqual([
      ['password.change', s.userId, 'session', s.userId],
      ['logout', s.userId, 'session', s.userId],
    ]);
    expect(entries[0]!.credential_id).toBeTruthy();
    expect(JSON.stringify(entries)).not.toContain('a-brand-new-password');
  });
});

describe('audit of account changes', () => {
  it('user.create, user.update, user.disable and password.reset by an admin; never a password', async () => {
    const admin = await userWithKey(['admin']);
    const start = await lastId();
    const created = await api('/api/v1/users', { key: admin.key, json: { username: 'audited-one', password: 'initial-password', roles: ['viewer'] } });
    const { id } = (await created.json()) as { id: string };
    await api(`/api/v1/users/${id}`, { key: admin.key, method: 'PUT', json: { roles: ['operator'], name: 'Audited' } });
    await api(`/api/v1/users/${id}`, { key: admin.key, method: 'PUT', json: { disabled: true } });
    await api(`/api/v1/users/${id}`, { key: admin.key, method: 'PUT', json: { disabled: false } });
    await api(`/api/v1/users/${id}`, { key: admin.key, method: 'DELETE' });
    // Already disabled: nothing changes, nothing is recorded.
    await api(`/api/v1/users/${id}`, { key: admin.key, method: 'DELETE' });
    await api(`/api/v1/users/${id}/password`, { key: admin.key, method: 'PUT', json: { new_password: 'reset-password' } });
    const entries = await entriesSince(start);
    expect(entries.map((e) => [e.action, e.actor_id, e.credential, e.target_type, e.target_id, e.details])).toEqual([
      ['user.create', admin.userId, 'api_key', 'user', id, { username: 'audited-one', roles: ['viewer'] }],
      ['user.update', admin.userId, 'api_key', 'user', id, { fields: ['roles', 'name'], roles: ['operator'] }],
      ['user.disable', admin.userId, 'api_key', 'user', id, null],
      ['user.update', admin.userId, 'api_key', 'user', id, { fields: ['disabled'] }],
      ['user.disable', admin.userId, 'api_key', 'user', id, null],
      ['password.reset', admin.userId, 'api_key', 'user', id, null],
    ]);
    const text = JSON.stringify(entries);
    for (const secret of ['initial-password', 'reset-password']) expect(text).not.toContain(secret);
  });

  it('a profile change names the fields, not their values', async () => {
    const s = await sessionUser();
    const start = await lastId();
    await api('/api/v1/auth/me', { key: s.token, method: 'PUT', json: { email: 'private@example.com', timezone: 'Europe/Berlin' } });
    const entries = await entriesSince(start);
    expect(entries.map((e) => [e.action, e.actor_id, e.target_id, e.details])).toEqual([['user.update', s.userId, s.userId, { fields: ['email', 'timezone'] }]]);
    expect(JSON.stringify(entries)).not.toContain('private@example.com');
  });

  it('self-registration is a user.create by the new user', async () => {
    const start = await lastId();
    const res = await withEnv({ ALLOW_REGISTRATION: 'true' }, '/api/v1/auth/register', jsonInit({ username: 'self-audited', password: 'password123' }));
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const entries = await entriesSince(start);
    expect(entries.map((e) => [e.action, e.actor_id, e.actor_name, e.credential, e.target_id])).toEqual([['user.create', id, 'self-audited', 'none', id]]);
    expect(JSON.stringify(entries)).not.toContain('password123');
  });
});
