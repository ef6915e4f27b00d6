import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { randomId } from '../../worker/auth/crypto.ts';
import { api, userWithKey } from './helpers.ts';
import { expectError, login, sessionUser } from './auth-helpers.ts';
import type { User as UserOut } from '../../shared/api/auth.ts';


const newUser = (roles: string[] = ['viewer']) => ({ username: `n_${randomId(4)}`, password: 'password123', email: 'n@example.com', roles });

async function create(key: string, body: ReturnType<typeof newUser> & Record<string, unknown> = newUser()) {
  const res = await api('/api/v1/users', { key, json: body });
  expect(res.status).toBe(201);
  return (await res.json()) as UserOut;
}

/** A custom role straight in D1, for users that hold some but not all permissions. */
async function customRole(permissions: string[]) {
  const id = `r-${randomId(4)}`;
  await env.DB.prepare('INSERT INTO roles (id, name, permissions) VALUES (?1, ?2, ?3)').bind(id, id, JSON.stringify(permissions)).run();
  return id;
}

describe('who may manage users', () => {
  it('a viewer cannot list or create users (403)', async () => {
    const { key } = await userWithKey(['viewer']);
    const list = await expectError(await api('/api/v1/users', { key }), 403, 'FORBIDDEN');
    expect(list.details.required).toEqual(['users:read']);
    const post = await expectError(await api('/api/v1/users', { key, json: newUser() }), 403, 'FORBIDDEN');
    expect(post.details.required).toEqual(['users:write']);
  });

  it('an operator cannot manage users (403) and anonymous callers get 401', async () => {
    const op = await sessionUser(['operator']);
    await expectError(await api('/api/v1/users', { key: op.token }), 403, 'FORBIDDEN');
    await expectError(await api('/api/v1/users', { key: op.token, json: newUser() }), 403, 'FORBIDDEN');
    await expectError(await api(`/api/v1/users/${op.userId}`, { key: op.token, method: 'DELETE' }), 403, 'FORBIDDEN');
    await expectError(await api(`/api/v1/users/${op.userId}/password`, { key: op.token, method: 'PUT', json: { new_password: 'password123' } }), 403, 'FORBIDDEN');
    await expectError(await api('/api/v1/users'), 401, 'UNAUTHORIZED');
  });

  it('an admin can', async () => {
    const admin = await sessionUser(['admin']);
    expect((await api('/api/v1/users', { key: admin.token })).status).toBe(200);
    expect((await api('/api/v1/users', { key: admin.token, json: newUser(['operator']) })).status).toBe(201);
  });

  it('a users:write holder without "*" cannot create an admin, nor touch one', async () => {
    const manager = await userWithKey([await customRole(['users:read', 'users:write', 'devices:read'])]);
    const body = await expectError(await api('/api/v1/users', { key: manager.key, json: newUser(['admin']) }), 403, 'FORBIDDEN');
    expect(body.details.missing).toEqual(['*']);
    await expectError(await api('/api/v1/users', { key: manager.key, json: newUser(['operator']) }), 403, 'FORBIDDEN');
    const admin = await userWithKey(['admin']);
    await expectError(await api(`/api/v1/users/${admin.userId}/password`, { key: manager.key, method: 'PUT', json: { new_password: 'taken-over' } }), 403, 'FORBIDDEN');
    await expectError(await api(`/api/v1/users/${admin.userId}`, { key: manager.key, method: 'DELETE' }), 403, 'FORBIDDEN');
    // Within its own permissions it may act.
    const limited = await customRole(['devices:read']);
    expect((await api('/api/v1/users', { key: manager.key, json: newUser([limited]) })).status).toBe(201);
  });
});

describe('users CRUD', () => {
  it('creates a user who can log in, and lists and gets it in the Tyto shape', async () => {
    const { key } = await userWithKey(['admin']);
    const body = newUser(['operator', 'viewer']);
    const created = await create(key, body);
    // Tyto's fields, and the profile fields.
    const tyto = ['auth_provider', 'created_at', 'disabled', 'email', 'id', 'last_login', 'roles', 'username'];
    expect(Object.keys(created).sort()).toEqual([...tyto, 'email_verified', 'name', 'timezone', 'two_factor_enabled', 'updated_at'].sort());
    expect(created).toMatchObject({ name: '', timezone: 'UTC', email_verified: false, two_factor_enabled: false, updated_at: created.created_at });
    expect(created).toMatchObject({ username: body.username, email: body.email, roles: ['operator', 'viewer'], auth_provider: 'local', disabled: false, last_login: null });
    expect(Date.parse(created.created_at)).toBeGreaterThan(Date.now() - 60_000);
    expect(JSON.stringify(created)).not.toContain('pbkdf2');

    const list = (await (await api('/api/v1/users', { key })).json()) as { users: UserOut[] };
    expect(list.users.find((u) => u.id === created.id)).toEqual(created);
    for (const u of list.users) expect(u).not.toHaveProperty('password_hash');

    const got = await api(`/api/v1/users/${created.id}`, { key });
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual(created);

    expect((await login(body.username, body.password)).status).toBe(200);
  });

  it('refuses a duplicate username with 409 CONFLICT and unknown roles with 400', async () => {
    const { key, username } = await userWithKey(['admin']);
    await expectError(await api('/api/v1/users', { key, json: { ...newUser(), username } }), 409, 'CONFLICT');
    const unknown = await expectError(await api('/api/v1/users', { key, json: newUser(['viewer', 'no-such-role']) }), 400, 'VALIDATION_ERROR');
    expect(unknown.details.unknown_roles).toEqual(['no-such-role']);
  });

  it('validates username, password, email and roles', async () => {
    const { key } = await userWithKey(['admin']);
    const paths = async (json: unknown) =>
      ((await expectError(await api('/api/v1/users', { key, json }), 400, 'VALIDATION_ERROR')).details.issues as { path: string }[]).map((i) => i.path);
    expect(await paths({ ...newUser(), username: 'ab' })).toEqual(['username']);
    expect(await paths({ ...newUser(), username: 'a'.repeat(65) })).toEqual(['username']);
    expect(await paths({ ...newUser(), username: 'has space' })).toEqual(['username']);
    expect(await paths({ ...newUser(), password: 'seven77' })).toEqual(['password']);
    expect(await paths({ ...newUser(), email: 'nope' })).toEqual(['email']);
    expect(await paths({ ...newUser(), roles: [] })).toEqual(['roles']);
    expect(await paths({ username: 'okname', password: 'password123' })).toEqual(['roles']);
    expect((await create(key, { ...newUser(), username: 'a.b_c-1' })).username).toBe('a.b_c-1');
  });

  it('answers unknown ids with 404', async () => {
    const { key } = await userWithKey(['admin']);
    await expectError(await api('/api/v1/users/nope', { key }), 404, 'NOT_FOUND');
    await expectError(await api('/api/v1/users/nope', { key, method: 'PUT', json: { email: null } }), 404, 'NOT_FOUND');
    await expectError(await api('/api/v1/users/nope', { key, method: 'DELETE' }), 404, 'NOT_FOUND');
    await expectError(await api('/api/v1/users/nope/password', { key, method: 'PUT', json: { new_password: 'password123' } }), 404, 'NOT_FOUND');
  });

  it('PUT updates email and roles, and the new roles take effect', async () => {
    const { key } = await userWithKey(['admin']);
    const u = await create(key, newUser(['viewer']));
    const res = await api(`/api/v1/users/${u.id}`, { key, method: 'PUT', json: { email: 'changed@example.com', roles: ['operator', 'viewer'] } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: u.id, email: 'changed@example.com', roles: ['operator', 'viewer'] });
    const row = await env.DB.prepare('SELECT roles FROM users WHERE id = ?1').bind(u.id).first<string>('roles');
    expect(JSON.parse(row!)).toEqual(['operator', 'viewer']);
    await expectError(await api(`/api/v1/users/${u.id}`, { key, method: 'PUT', json: {} }), 400, 'VALIDATION_ERROR');
    await expectError(await api(`/api/v1/users/${u.id}`, { key, method: 'PUT', json: { roles: ['ghost'] } }), 400, 'VALIDATION_ERROR');
  });

  it('an admin sets name, timezone and email_verified; a changed address is unverified unless the same request says so', async () => {
    const { key } = await userWithKey(['admin']);
    const made = await create(key, { ...newUser(), name: 'Grace Hopper', timezone: 'America/New_York', email_verified: true });
    expect(made).toMatchObject({ name: 'Grace Hopper', timezone: 'America/New_York', email_verified: true });
    const put = (json: unknown) => api(`/api/v1/users/${made.id}`, { key, method: 'PUT', json });
    expect(await (await put({ timezone: 'Asia/Tokyo', name: '' })).json()).toMatchObject({ timezone: 'Asia/Tokyo', name: '', email_verified: true });
    expect(await (await put({ email: 'moved@example.com' })).json()).toMatchObject({ email: 'moved@example.com', email_verified: false });
    expect(await (await put({ email: 'again@example.com', email_verified: true })).json()).toMatchObject({ email: 'again@example.com', email_verified: true });
    const bad = await expectError(await put({ timezone: 'Nowhere/Special' }), 400, 'VALIDATION_ERROR');
    expect(bad.details.issues).toEqual([expect.objectContaining({ path: 'timezone' })]);
  });

  it('only users:write may set email_verified: a users:read caller gets 403 and the flag stays', async () => {
    const { key } = await userWithKey(['admin']);
    const target = await create(key);
    const reader = await userWithKey([await customRole(['users:read'])]);
    await expectError(await api(`/api/v1/users/${target.id}`, { key: reader.key, method: 'PUT', json: { email_verified: true } }), 403, 'FORBIDDEN');
    expect(((await (await api(`/api/v1/users/${target.id}`, { key: reader.key })).json()) as UserOut).email_verified).toBe(false);
  });

  it('DELETE disables the user and ends its sessions and API keys; PUT disabled:false re-enables', async () => {
    const admin = await userWithKey(['admin']);
    const victim = await sessionUser(['operator']);
    const key = (await (await api('/api/v1/api-keys', { key: victim.token, json: { name: 'k' } })).json()) as { key: string; id: string };
    expect((await api('/api/v1/auth/me', { key: key.key })).status).toBe(200);

    expect((await api(`/api/v1/users/${victim.userId}`, { key: admin.key, method: 'DELETE' })).status).toBe(204);
    await expectError(await api('/api/v1/auth/me', { key: victim.token }), 401, 'UNAUTHORIZED');
    await expectError(await api('/api/v1/auth/me', { key: key.key }), 401, 'UNAUTHORIZED');
    await expectError(await login(victim.username, victim.password), 403, 'ACCOUNT_DISABLED');
    const got = (await (await api(`/api/v1/users/${victim.userId}`, { key: admin.key })).json()) as UserOut;
    expect(got.disabled).toBe(true);
    const live = await env.DB.prepare('SELECT (SELECT count(*) FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL) + (SELECT count(*) FROM api_keys WHERE user_id = ?1 AND revoked_at IS NULL) AS n')
      .bind(victim.userId)
      .first<number>('n');
    expect(live).toBe(0);

    const back = await api(`/api/v1/users/${victim.userId}`, { key: admin.key, method: 'PUT', json: { disabled: false } });
    expect(((await back.json()) as UserOut).disabled).toBe(false);
    expect((await login(victim.username, victim.password)).status).toBe(200);
    // The revoked key stays revoked.
    await expectError(await api('/api/v1/auth/me', { key: key.key }), 401, 'UNAUTHORIZED');
  });

  it('nobody can disable themselves (422 CANNOT_DISABLE_SELF)', async () => {
    const admin = await sessionUser(['admin']);
    await expectError(await api(`/api/v1/users/${admin.userId}`, { key: admin.token, method: 'DELETE' }), 422, 'CANNOT_DISABLE_SELF');
    await expectError(await api(`/api/v1/users/${admin.userId}`, { key: admin.token, method: 'PUT', json: { disabled: true } }), 422, 'CANNOT_DISABLE_SELF');
    expect((await api('/api/v1/auth/me', { key: admin.token })).status).toBe(200);
  });

  it('will not remove the last enabled admin (409 LAST_ADMIN)', async () => {
    const admin = await userWithKey(['admin']);
    await env.DB.prepare("UPDATE users SET disabled = 1 WHERE id != ?1 AND roles LIKE '%\"admin\"%'").bind(admin.userId).run();
    await expectError(await api(`/api/v1/users/${admin.userId}`, { key: admin.key, method: 'PUT', json: { roles: ['viewer'] } }), 409, 'LAST_ADMIN');
    const second = await create(admin.key, newUser(['admin']));
    const demoted = await api(`/api/v1/users/${admin.userId}`, { key: admin.key, method: 'PUT', json: { roles: ['viewer'] } });
    expect(demoted.status).toBe(200);
    expect(((await demoted.json()) as UserOut).roles).toEqual(['viewer']);
    expect(second.roles).toEqual(['admin']);
  });

  it("PUT /users/:id/password resets the password and ends that user's sessions", async () => {
    const { key } = await userWithKey(['admin']);
    const target = await sessionUser(['viewer']);
    const res = await api(`/api/v1/users/${target.userId}/password`, { key, method: 'PUT', json: { new_password: 'temporary-password' } });
    expect(res.status).toBe(204);
    await expectError(await api('/api/v1/auth/me', { key: target.token }), 401, 'UNAUTHORIZED');
    await expectError(await login(target.username, target.password), 401, 'INVALID_CREDENTIALS');
    expect((await login(target.username, 'temporary-password')).status).toBe(200);
    await expectError(await api(`/api/v1/users/${target.userId}/password`, { key, method: 'PUT', json: { new_password: 'short' } }), 400, 'VALIDATION_ERROR');
  });
});
