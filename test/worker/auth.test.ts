import { env, SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { randomId } from '../../worker/auth/crypto.ts';
import { signSession } from '../../worker/auth/principal.ts';
import { BASE, api, userWithKey } from './helpers.ts';
import { expectError, jsonInit, login, sessionUser, userWithPassword, withEnv, type ErrorBody } from './auth-helpers.ts';

const SECRET = env.SESSION_SECRET;

describe('POST /api/v1/auth/login', () => {
  it('returns a token, the user with roles and permissions, and expires_at, as Tyto does', async () => {
    const u = await userWithPassword(['operator']);
    const before = Date.now();
    const res = await login(u.username, u.password);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown> & { user: Record<string, unknown>; expires_at: string; token: string };
    expect(Object.keys(body).sort()).toEqual(['expires_at', 'token', 'user']);
    expect(Object.keys(body.user).sort()).toEqual(['email', 'id', 'permissions', 'roles', 'username']);
    expect(body.user).toMatchObject({ id: u.userId, username: u.username, email: `${u.username}@example.com`, roles: ['operator'] });
    expect(body.user.permissions).toEqual(expect.arrayContaining(['devices:read', 'tunnels:*', 'api-keys:own']));
    expect(body.user.permissions).not.toContain('users:write');
    expect(body.token.split('.')).toHaveLength(3);
    // Default TTL is SESSION_TTL_SECONDS = 86400 from wrangler.toml.
    const expires = Date.parse(body.expires_at);
    expect(body.expires_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(expires - before).toBeGreaterThanOrEqual(86_400_000 - 1000);
    expect(expires - before).toBeLessThan(86_400_000 + 60_000);
    // The token works, and last_login was recorded.
    const me = await api('/api/v1/auth/me', { key: body.token });
    expect(me.status).toBe(200);
    const meBody = (await me.json()) as { last_login: string | null };
    expect(meBody.last_login).not.toBeNull();
    expect(Date.parse(meBody.last_login!)).toBeGreaterThanOrEqual(before - 1000);
    const row = await env.DB.prepare('SELECT count(*) AS n FROM sessions WHERE user_id = ?1').bind(u.userId).first<number>('n');
    expect(row).toBe(1);
  });

  it('gives an admin the "*" permission', async () => {
    const u = await userWithPassword(['admin']);
    const body = (await (await login(u.username, u.password)).json()) as { user: { permissions: string[] } };
    expect(body.user.permissions).toEqual(['*']);
  });

  it('honours SESSION_TTL_SECONDS', async () => {
    const u = await userWithPassword();
    const res = await withEnv({ SESSION_TTL_SECONDS: '60' }, '/api/v1/auth/login', jsonInit({ username: u.username, password: u.password }, { 'cf-connecting-ip': '203.0.113.9' }));
    expect(res.status).toBe(200);
    const { expires_at } = (await res.json()) as { expires_at: string };
    expect(Date.parse(expires_at) - Date.now()).toBeLessThanOrEqual(60_000);
    expect(Date.parse(expires_at) - Date.now()).toBeGreaterThan(50_000);
  });

  it('answers a wrong password and an unknown user the same way: 401 INVALID_CREDENTIALS', async () => {
    const u = await userWithPassword();
    const wrong = await expectError(await login(u.username, 'not-the-password'), 401, 'INVALID_CREDENTIALS');
    const unknown = await expectError(await login('nobody-here', 'whatever-password'), 401, 'INVALID_CREDENTIALS');
    expect(unknown).toEqual(wrong);
  });

  it('refuses a user whose password hash is unusable', async () => {
    const { username } = await userWithKey(['admin']);
    await expectError(await login(username, 'unusable'), 401, 'INVALID_CREDENTIALS');
  });

  it('tells a disabled user with the right password 403 ACCOUNT_DISABLED, and a wrong password still 401', async () => {
    const u = await userWithPassword(['viewer'], { disabled: true });
    await expectError(await login(u.username, u.password), 403, 'ACCOUNT_DISABLED');
    await expectError(await login(u.username, 'wrong-password'), 401, 'INVALID_CREDENTIALS');
  });

  it('validates the body: 400 VALIDATION_ERROR with details', async () => {
    const res = await api('/api/v1/auth/login', { json: { username: 'x' } });
    const body = await expectError(res, 400, 'VALIDATION_ERROR');
    expect(body.details.issues).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'password' })]));
    await expectError(await api('/api/v1/auth/login', { json: { username: '', password: 'x' } }), 400, 'VALIDATION_ERROR');
    await expectError(await api('/api/v1/auth/login', { json: ['admin', 'pw'] }), 400, 'VALIDATION_ERROR');
  });

  it('answers malformed JSON, an empty body and a non-JSON body with 4xx in the error shape, never 500', async () => {
    const post = async (body: string | undefined, type?: string) => {
      const res = await SELF.fetch(`${BASE}/api/v1/auth/login`, { method: 'POST', headers: type ? { 'content-type': type } : {}, body });
      const json = (await res.json()) as ErrorBody;
      expect(json).toEqual({ error: expect.any(String), code: expect.any(String), details: expect.any(Object) });
      return { status: res.status, json };
    };
    // app.ts renders body-parsing failures; which code it picks is its business, the status is ours to check.
    const truncated = await post('{"username": "a", ', 'application/json');
    expect(truncated.status).toBe(400);
    expect(truncated.json.error).toMatch(/JSON/i);
    expect((await post(undefined, 'application/json')).status).toBe(400);
    expect((await post('username=a&password=b', 'application/x-www-form-urlencoded')).status).toBe(415);
    const none = await post(undefined);
    expect(none).toMatchObject({ status: 400, json: { code: 'VALIDATION_ERROR' } });
  });
});

describe('sessions', () => {
  it('logout returns 204 and the token stops working', async () => {
    const s = await sessionUser();
    expect((await api('/api/v1/auth/me', { key: s.token })).status).toBe(200);
    const out = await api('/api/v1/auth/logout', { key: s.token, method: 'POST' });
    expect(out.status).toBe(204);
    await expectError(await api('/api/v1/auth/me', { key: s.token }), 401, 'UNAUTHORIZED');
    await expectError(await api('/api/v1/auth/logout', { key: s.token, method: 'POST' }), 401, 'UNAUTHORIZED');
  });

  it('logout needs credentials, and is not for API keys', async () => {
    await expectError(await api('/api/v1/auth/logout', { method: 'POST' }), 401, 'UNAUTHORIZED');
    const { key } = await userWithKey(['viewer']);
    await expectError(await api('/api/v1/auth/logout', { key, method: 'POST' }), 400, 'NOT_A_SESSION');
  });

  it('refuses a session JWT whose expiry has passed', async () => {
    const u = await userWithPassword();
    const id = randomId(8);
    const past = Date.now() - 60_000;
    await env.DB.prepare('INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)').bind(id, u.userId, past - 1000, Date.now() + 3_600_000).run();
    const token = await signSession(SECRET, id, u.userId, past);
    await expectError(await api('/api/v1/auth/me', { key: token }), 401, 'UNAUTHORIZED');
    // The same session signed with a future expiry works, so the refusal above was the expiry.
    const good = await signSession(SECRET, id, u.userId, Date.now() + 3_600_000);
    expect((await api('/api/v1/auth/me', { key: good })).status).toBe(200);
  });

  it('refuses a valid JWT whose session row has expired', async () => {
    const u = await userWithPassword();
    const id = randomId(8);
    await env.DB.prepare('INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)').bind(id, u.userId, Date.now() - 7200_000, Date.now() - 1000).run();
    const token = await signSession(SECRET, id, u.userId, Date.now() + 3_600_000);
    await expectError(await api('/api/v1/auth/me', { key: token }), 401, 'UNAUTHORIZED');
  });

  it('refuses a JWT signed with another secret', async () => {
    const u = await userWithPassword();
    const id = randomId(8);
    await env.DB.prepare('INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)').bind(id, u.userId, Date.now(), Date.now() + 3_600_000).run();
    const forged = await signSession('another-secret-that-is-long-enough-0123456789', id, u.userId, Date.now() + 3_600_000);
    await expectError(await api('/api/v1/auth/me', { key: forged }), 401, 'UNAUTHORIZED');
  });
});

describe('/api/v1/auth/me', () => {
  it('describes the caller as Tyto does', async () => {
    const s = await sessionUser(['viewer']);
    const res = await api('/api/v1/auth/me', { key: s.token });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    // Tyto's fields, and the profile fields Pipetower's account has.
    const tyto = ['auth_provider', 'email', 'id', 'last_login', 'permissions', 'roles', 'username'];
    expect(Object.keys(body).sort()).toEqual([...tyto, 'email_verified', 'name', 'timezone', 'two_factor_enabled', 'updated_at'].sort());
    expect(body).toMatchObject({ id: s.userId, username: s.username, roles: ['viewer'], auth_provider: 'local' });
    expect(body).toMatchObject({ name: '', timezone: 'UTC', email_verified: false, two_factor_enabled: false });
    expect(body.updated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(body.permissions).toEqual(expect.arrayContaining(['devices:read', 'api-keys:own']));
    expect(body.permissions).not.toContain('devices:write');
  });

  it('needs credentials', async () => {
    await expectError(await api('/api/v1/auth/me'), 401, 'UNAUTHORIZED');
    await expectError(await api('/api/v1/auth/me', { key: 'not.a.jwt' }), 401, 'UNAUTHORIZED');
  });

  it('PUT updates the email, and can clear it', async () => {
    const s = await sessionUser();
    const res = await api('/api/v1/auth/me', { key: s.token, method: 'PUT', json: { email: 'new@example.com' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { email: string }).email).toBe('new@example.com');
    const stored = await env.DB.prepare('SELECT email FROM users WHERE id = ?1').bind(s.userId).first<string>('email');
    expect(stored).toBe('new@example.com');
    const cleared = await api('/api/v1/auth/me', { key: s.token, method: 'PUT', json: { email: null } });
    expect(((await cleared.json()) as { email: string | null }).email).toBeNull();
  });

  it('PUT sets name and timezone (an IANA name, stored as the zone database spells it)', async () => {
    const s = await sessionUser();
    const res = await api('/api/v1/auth/me', { key: s.token, method: 'PUT', json: { name: '  Ada Lovelace ', timezone: 'Europe/Paris' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { name: string; timezone: string; email: string; updated_at: string };
    expect(body).toMatchObject({ name: 'Ada Lovelace', timezone: 'Europe/Paris', email: `${s.username}@example.com` });
    expect(Date.parse(body.updated_at)).toBeGreaterThan(Date.now() - 60_000);
    const utc = (await (await api('/api/v1/auth/me', { key: s.token, method: 'PUT', json: { timezone: 'utc' } })).json()) as { timezone: string; name: string };
    expect(utc).toMatchObject({ timezone: 'UTC', name: 'Ada Lovelace' });
    for (const timezone of ['Mars/Olympus_Mons', '+01:00', 'UTC; DROP TABLE users', '', 'x'.repeat(65)]) {
      const bad = await expectError(await api('/api/v1/auth/me', { key: s.token, method: 'PUT', json: { timezone } }), 400, 'VALIDATION_ERROR');
      expect([...new Set((bad.details.issues as { path: string }[]).map((i) => i.path))], timezone).toEqual(['timezone']);
    }
    for (const name of ['a\u0000b', 'line\nbreak', 'n'.repeat(129)]) {
      await expectError(await api('/api/v1/auth/me', { key: s.token, method: 'PUT', json: { name } }), 400, 'VALIDATION_ERROR');
    }
    await expectError(await api('/api/v1/auth/me', { key: s.token, method: 'PUT', json: {} }), 400, 'VALIDATION_ERROR');
  });

  it("PUT cannot verify one's own e-mail, and changing the address makes it unverified", async () => {
    const s = await sessionUser();
    const admin = await userWithKey(['admin']);
    const verify = await api(`/api/v1/users/${s.userId}`, { key: admin.key, method: 'PUT', json: { email_verified: true } });
    expect(((await verify.json()) as { email_verified: boolean }).email_verified).toBe(true);
    // Saying the same address again, or changing the name, keeps it verified.
    const same = await api('/api/v1/auth/me', { key: s.token, method: 'PUT', json: { email: `${s.username}@example.com`, name: 'Me' } });
    expect(((await same.json()) as { email_verified: boolean }).email_verified).toBe(true);
    const moved = await api('/api/v1/auth/me', { key: s.token, method: 'PUT', json: { email: 'elsewhere@example.com', email_verified: true } });
    expect(moved.status).toBe(200);
    expect(await moved.json()).toMatchObject({ email: 'elsewhere@example.com', email_verified: false });
    const stored = await env.DB.prepare('SELECT email_verified FROM users WHERE id = ?1').bind(s.userId).first<number>('email_verified');
    expect(stored).toBe(0);
  });

  it('PUT rejects a bad email with VALIDATION_ERROR', async () => {
    const s = await sessionUser();
    const body = await expectError(await api('/api/v1/auth/me', { key: s.token, method: 'PUT', json: { email: 'not-an-email' } }), 400, 'VALIDATION_ERROR');
    expect(body.details.issues).toEqual([expect.objectContaining({ path: 'email' })]);
  });
});

describe('PUT /api/v1/auth/me/password', () => {
  it('ends the other sessions even right after they were used, and keeps this one', async () => {
    const s = await sessionUser();
    const other = (await (await login(s.username, s.password)).json()) as { token: string };
    // Resolved just now, so this isolate holds it in its principal cache.
    expect((await api('/api/v1/auth/me', { key: other.token })).status).toBe(200);
    const res = await api('/api/v1/auth/me/password', { key: s.token, method: 'PUT', json: { current_password: s.password, new_password: 'brand-new-password' } });
    expect(res.status).toBe(204);
    await expectError(await api('/api/v1/auth/me', { key: other.token }), 401, 'UNAUTHORIZED');
    expect((await api('/api/v1/auth/me', { key: s.token })).status).toBe(200);
  });

  it('changes the password and ends the other sessions, keeping this one', async () => {
    const s = await sessionUser();
    const other = (await (await login(s.username, s.password)).json()) as { token: string };
    const res = await api('/api/v1/auth/me/password', { key: s.token, method: 'PUT', json: { current_password: s.password, new_password: 'brand-new-password' } });
    expect(res.status).toBe(204);
    expect((await api('/api/v1/auth/me', { key: s.token })).status).toBe(200);
    await expectError(await api('/api/v1/auth/me', { key: other.token }), 401, 'UNAUTHORIZED');
    await expectError(await login(s.username, s.password), 401, 'INVALID_CREDENTIALS');
    expect((await login(s.username, 'brand-new-password')).status).toBe(200);
    const hash = await env.DB.prepare('SELECT password_hash FROM users WHERE id = ?1').bind(s.userId).first<string>('password_hash');
    expect(hash).toMatch(/^pbkdf2-sha256\$100000\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  });

  it('refuses a wrong current password with 403 INVALID_CURRENT_PASSWORD and keeps the old one', async () => {
    const s = await sessionUser();
    await expectError(
      await api('/api/v1/auth/me/password', { key: s.token, method: 'PUT', json: { current_password: 'wrong-one', new_password: 'brand-new-password' } }),
      403,
      'INVALID_CURRENT_PASSWORD',
    );
    expect((await login(s.username, s.password)).status).toBe(200);
  });

  it('enforces the password policy (at least 8 characters)', async () => {
    const s = await sessionUser();
    const body = await expectError(
      await api('/api/v1/auth/me/password', { key: s.token, method: 'PUT', json: { current_password: s.password, new_password: 'short' } }),
      400,
      'VALIDATION_ERROR',
    );
    expect(body.details.issues).toEqual([expect.objectContaining({ path: 'new_password' })]);
  });
});

describe('POST /api/v1/auth/register', () => {
  it('is disabled by default: 403 REGISTRATION_DISABLED, whatever the body', async () => {
    await expectError(await api('/api/v1/auth/register', { json: { username: 'newbie', password: 'password123' } }), 403, 'REGISTRATION_DISABLED');
    await expectError(await api('/api/v1/auth/register', { json: {} }), 403, 'REGISTRATION_DISABLED');
    const n = await env.DB.prepare("SELECT count(*) AS n FROM users WHERE username = 'newbie'").first<number>('n');
    expect(n).toBe(0);
  });

  it('creates a viewer when ALLOW_REGISTRATION is "true"', async () => {
    const open = { ALLOW_REGISTRATION: 'true' };
    const res = await withEnv(open, '/api/v1/auth/register', jsonInit({ username: 'selfmade', password: 'password123', email: 'me@example.com' }));
    expect(res.status).toBe(201);
    const user = (await res.json()) as { username: string; roles: string[]; disabled: boolean };
    expect(user).toMatchObject({ username: 'selfmade', roles: ['viewer'], disabled: false });
    expect((await login('selfmade', 'password123')).status).toBe(200);
    await expectError(await withEnv(open, '/api/v1/auth/register', jsonInit({ username: 'selfmade', password: 'password456' })), 409, 'CONFLICT');
    const bad = await expectError(await withEnv(open, '/api/v1/auth/register', jsonInit({ username: 'a b', password: 'short' })), 400, 'VALIDATION_ERROR');
    expect((bad.details.issues as { path: string }[]).map((i) => i.path).sort()).toEqual(['password', 'username']);
  });
});

describe('openapi.json', () => {
  it('documents the account routes', async () => {
    const doc = (await (await api('/api/v1/openapi.json')).json()) as { paths: Record<string, Record<string, unknown>> };
    const expected: Record<string, string[]> = {
      '/api/v1/auth/login': ['post'],
      '/api/v1/auth/login/2fa': ['post'],
      '/api/v1/auth/2fa/enrol': ['post'],
      '/api/v1/auth/2fa/confirm': ['post'],
      '/api/v1/auth/2fa/disable': ['post'],
      '/api/v1/auth/2fa/recovery-codes': ['post'],
      '/api/v1/auth/logout': ['post'],
      '/api/v1/auth/me': ['get', 'put'],
      '/api/v1/auth/me/password': ['put'],
      '/api/v1/auth/register': ['post'],
      '/api/v1/bootstrap': ['post'],
      '/api/v1/api-keys': ['get', 'post'],
      '/api/v1/api-keys/{id}': ['delete'],
      '/api/v1/users': ['get', 'post'],
      '/api/v1/users/{id}': ['get', 'put', 'delete'],
      '/api/v1/users/{id}/password': ['put'],
      '/api/v1/roles': ['get', 'post'],
      '/api/v1/roles/{id}': ['get', 'put', 'delete'],
    };
    for (const [path, methods] of Object.entries(expected)) {
      expect(Object.keys(doc.paths[path] ?? {}).sort(), path).toEqual(methods.sort());
    }
  });
});

describe('self-service writes with a narrowed API key', () => {
  const keyFor = async (token: string, body: Record<string, unknown>) => {
    const res = await api('/api/v1/api-keys', { key: token, json: body });
    expect(res.status).toBe(201);
    return ((await res.json()) as { key: string }).key;
  };

  it('refuses PUT /auth/me and PUT /auth/me/password with 403 NARROWED_API_KEY, changing nothing', async () => {
    const s = await sessionUser(['operator']);
    // Narrowed, even to everything the account holds: a narrowed key is for work, not the account.
    for (const permissions of [['devices:read'], ['devices:read', 'api-keys:own', 'tunnels:*']]) {
      const key = await keyFor(s.token, { name: 'narrow', permissions });
      await expectError(await api('/api/v1/auth/me', { key, method: 'PUT', json: { email: 'attacker@example.com' } }), 403, 'NARROWED_API_KEY');
      await expectError(
        await api('/api/v1/auth/me/password', { key, method: 'PUT', json: { current_password: s.password, new_password: 'taken-over-password' } }),
        403,
        'NARROWED_API_KEY',
      );
      // A wrong guess is refused before it is checked, so a narrowed key is no password oracle either.
      await expectError(
        await api('/api/v1/auth/me/password', { key, method: 'PUT', json: { current_password: 'a-guess', new_password: 'taken-over-password' } }),
        403,
        'NARROWED_API_KEY',
      );
      // Reading who it is stays allowed.
      expect((await api('/api/v1/auth/me', { key })).status).toBe(200);
    }
    const stored = await env.DB.prepare('SELECT email FROM users WHERE id = ?1').bind(s.userId).first<string>('email');
    expect(stored).toBe(`${s.username}@example.com`);
    expect((await api('/api/v1/auth/me', { key: s.token })).status).toBe(200);
    expect((await login(s.username, s.password)).status).toBe(200);
  });

  it('lets a session and an unrestricted key change the account', async () => {
    const s = await sessionUser(['viewer']);
    const key = await keyFor(s.token, { name: 'full' });
    const res = await api('/api/v1/auth/me', { key, method: 'PUT', json: { email: 'via-key@example.com' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { email: string }).email).toBe('via-key@example.com');
    // With no session of its own, the key's password change ends every session.
    expect((await api('/api/v1/auth/me/password', { key, method: 'PUT', json: { current_password: s.password, new_password: 'brand-new-password' } })).status).toBe(204);
    await expectError(await api('/api/v1/auth/me', { key: s.token }), 401, 'UNAUTHORIZED');
    expect((await api('/api/v1/auth/me', { key })).status).toBe(200);
  });

  it('a narrowed key cannot mint a key broader than itself, with or without a list', async () => {
    const s = await sessionUser(['operator']);
    const narrow = await keyFor(s.token, { name: 'narrow', permissions: ['devices:read', 'api-keys:own'] });
    for (const permissions of [['devices:write'], ['devices:*'], ['*'], ['devices:read', 'tunnels:read']]) {
      await expectError(await api('/api/v1/api-keys', { key: narrow, json: { name: 'wider', permissions } }), 403, 'FORBIDDEN');
    }
    const child = await keyFor(narrow, { name: 'child' });
    await expectError(await api('/api/v1/devices/x', { key: child, method: 'PATCH', json: { name: 'y' } }), 403, 'FORBIDDEN');
    const me = (await (await api('/api/v1/auth/me', { key: child })).json()) as { permissions: string[] };
    expect(me.permissions.sort()).toEqual(['api-keys:own', 'devices:read']);
    // A key from a narrowed key is narrowed too, so it cannot change the account either.
    await expectError(await api('/api/v1/auth/me', { key: child, method: 'PUT', json: { email: null } }), 403, 'NARROWED_API_KEY');
  });
});
