import { env } from 'cloudflare:test';
import { forgetPrincipals } from '../../worker/auth/middleware.ts';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../worker/auth/crypto.ts';
import { api, userWithKey } from './helpers.ts';
import { basicAuth, expectError, sessionUser } from './auth-helpers.ts';

interface Created {
  id: string;
  name: string;
  key: string;
  prefix: string;
  permissions: string[] | null;
  created_at: string;
  expires_at: string | null;
}
type Listed = Omit<Created, 'key'> & { user_id: string; last_used_at: string | null; revoked_at: string | null };

async function createKey(credential: string, body: Record<string, unknown> = { name: 'ci' }) {
  const res = await api('/api/v1/api-keys', { key: credential, json: body });
  expect(res.status).toBe(201);
  return (await res.json()) as Created;
}

async function listKeys(credential: string, query = '') {
  const res = await api(`/api/v1/api-keys${query}`, { key: credential });
  expect(res.status).toBe(200);
  return ((await res.json()) as { api_keys: Listed[] }).api_keys;
}

describe('POST /api/v1/api-keys', () => {
  it('creates a key shown once, storing only its SHA-256', async () => {
    const s = await sessionUser(['viewer']);
    const before = Date.now();
    const res = await api('/api/v1/api-keys', { key: s.token, json: { name: 'laptop', expires_in_days: 30 } });
    expect(res.status).toBe(201);
    const k = (await res.json()) as Created;
    expect(Object.keys(k).sort()).toEqual(['created_at', 'expires_at', 'id', 'key', 'name', 'permissions', 'prefix']);
    expect(k).toMatchObject({ name: 'laptop', permissions: null });
    expect(k.key).toMatch(/^prk_[A-Za-z0-9_-]{40,}$/);
    expect(k.key.startsWith(k.prefix)).toBe(true);
    expect(k.prefix.length).toBeLessThan(16);
    expect(Date.parse(k.expires_at!) - before).toBeGreaterThanOrEqual(30 * 86_400_000 - 1000);
    expect(Date.parse(k.expires_at!) - before).toBeLessThan(30 * 86_400_000 + 60_000);
    const row = await env.DB.prepare('SELECT * FROM api_keys WHERE id = ?1').bind(k.id).first<Record<string, unknown>>();
    expect(row!.key_hash).toBe(await sha256Hex(k.key));
    expect(Object.values(row!)).not.toContain(k.key);
    expect(row!.user_id).toBe(s.userId);
  });

  it('accepts expires_at, and a key created by another key', async () => {
    const { key } = await userWithKey(['operator']);
    const at = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const k = await createKey(key, { name: 'from-a-key', expires_at: at });
    expect(k.expires_at).toBe(at);
    expect((await api('/api/v1/auth/me', { key: k.key })).status).toBe(200);
  });

  it('validates the body', async () => {
    const { key } = await userWithKey(['viewer']);
    const post = (json: unknown) => api('/api/v1/api-keys', { key, json });
    const paths = async (json: unknown) => ((await expectError(await post(json), 400, 'VALIDATION_ERROR')).details.issues as { path: string }[]).map((i) => i.path);
    expect(await paths({})).toEqual(['name']);
    expect(await paths({ name: '' })).toEqual(['name']);
    expect(await paths({ name: 'x', expires_in_days: 0 })).toEqual(['expires_in_days']);
    expect(await paths({ name: 'x', expires_in_days: 3651 })).toEqual(['expires_in_days']);
    expect(await paths({ name: 'x', expires_in_days: 1.5 })).toEqual(['expires_in_days']);
    expect(await paths({ name: 'x', expires_at: 'tomorrow' })).toEqual(['expires_at']);
    expect(await paths({ name: 'x', expires_at: new Date(Date.now() - 1000).toISOString() })).toEqual(['expires_at']);
    expect(await paths({ name: 'x', expires_in_days: 1, expires_at: new Date(Date.now() + 86_400_000).toISOString() })).toEqual(['expires_at']);
    expect(await paths({ name: 'x', permissions: ['Devices:Read'] })).toEqual(['permissions.0']);
    expect(await paths({ name: 'x', permissions: 'devices:read' })).toEqual(['permissions']);
  });

  it('needs credentials and api-keys:own', async () => {
    await expectError(await api('/api/v1/api-keys', { json: { name: 'x' } }), 401, 'UNAUTHORIZED');
    const admin = await userWithKey(['admin']);
    const narrow = await createKey(admin.key, { name: 'devices only', permissions: ['devices:read'] });
    const body = await expectError(await api('/api/v1/api-keys', { key: narrow.key, json: { name: 'x' } }), 403, 'FORBIDDEN');
    expect(body.details.required).toEqual(['api-keys:own']);
  });
});

describe('using API keys', () => {
  it('works as Bearer and as Basic user name with an empty password', async () => {
    const s = await sessionUser(['viewer']);
    const k = await createKey(s.token);
    const bearer = await api('/api/v1/auth/me', { key: k.key });
    expect(bearer.status).toBe(200);
    expect(((await bearer.json()) as { id: string }).id).toBe(s.userId);
    const basic = await api('/api/v1/auth/me', { headers: basicAuth(k.key) });
    expect(basic.status).toBe(200);
    expect(((await basic.json()) as { id: string }).id).toBe(s.userId);
    await expectError(await api('/api/v1/auth/me', { headers: basicAuth(`${k.key}x`) }), 401, 'UNAUTHORIZED');
  });

  it('refuses an expired key with 401', async () => {
    const { key } = await userWithKey(['viewer']);
    const k = await createKey(key, { name: 'short-lived', expires_in_days: 1 });
    expect((await api('/api/v1/auth/me', { key: k.key })).status).toBe(200);
    await env.DB.prepare('UPDATE api_keys SET expires_at = ?1 WHERE id = ?2').bind(Date.now() - 1000, k.id).run();
    // Written behind the API's back, so drop what this isolate resolved in the last seconds.
    forgetPrincipals();
    await expectError(await api('/api/v1/auth/me', { key: k.key }), 401, 'UNAUTHORIZED');
  });

  it('a narrowed key gets 403 for a permission it lacks, though its owner has it', async () => {
    const admin = await userWithKey(['admin']);
    const k = await createKey(admin.key, { name: 'read users', permissions: ['users:read'] });
    expect(k.permissions).toEqual(['users:read']);
    expect((await api('/api/v1/users', { key: k.key })).status).toBe(200);
    const res = await api('/api/v1/users', { key: k.key, json: { username: 'someone', password: 'password123', roles: ['viewer'] } });
    const body = await expectError(res, 403, 'FORBIDDEN');
    expect(body.details.required).toEqual(['users:write']);
    expect((await api('/api/v1/users', { key: admin.key, json: { username: 'someone', password: 'password123', roles: ['viewer'] } })).status).toBe(201);
    const me = (await (await api('/api/v1/auth/me', { key: k.key })).json()) as { permissions: string[] };
    expect(me.permissions).toEqual(['users:read']);
  });

  it('cannot be narrowed to permissions the caller lacks (403)', async () => {
    const s = await sessionUser(['viewer']);
    const body = await expectError(await api('/api/v1/api-keys', { key: s.token, json: { name: 'x', permissions: ['devices:read', 'users:read'] } }), 403, 'FORBIDDEN');
    expect(body.details.missing).toEqual(['users:read']);
    await expectError(await api('/api/v1/api-keys', { key: s.token, json: { name: 'x', permissions: ['devices:*'] } }), 403, 'FORBIDDEN');
    await expectError(await api('/api/v1/api-keys', { key: s.token, json: { name: 'x', permissions: ['*'] } }), 403, 'FORBIDDEN');
    const ok = await createKey(s.token, { name: 'x', permissions: ['devices:read', 'api-keys:own'] });
    expect(ok.permissions).toEqual(['devices:read', 'api-keys:own']);
  });

  it('a key made by a narrowed key, without a list, is no broader than its maker', async () => {
    const admin = await userWithKey(['admin']);
    const narrow = await createKey(admin.key, { name: 'narrow', permissions: ['api-keys:own', 'users:read'] });
    const child = await createKey(narrow.key, { name: 'child' });
    expect(child.permissions).toEqual(['api-keys:own', 'users:read']);
    await expectError(await api('/api/v1/roles', { key: child.key }), 403, 'FORBIDDEN');
    await expectError(await api('/api/v1/api-keys', { key: narrow.key, json: { name: 'wider', permissions: ['roles:read'] } }), 403, 'FORBIDDEN');
  });
});

describe('GET /api/v1/api-keys', () => {
  it("lists the caller's keys without secrets or hashes", async () => {
    const s = await sessionUser(['operator']);
    const a = await createKey(s.token, { name: 'a' });
    const b = await createKey(s.token, { name: 'b', permissions: ['devices:read'] });
    const other = await userWithKey(['operator']);
    const keys = await listKeys(s.token);
    expect(keys.map((k) => k.id).sort()).toEqual([a.id, b.id].sort());
    for (const k of keys) {
      expect(Object.keys(k).sort()).toEqual(['created_at', 'expires_at', 'id', 'last_used_at', 'name', 'permissions', 'prefix', 'revoked_at', 'user_id']);
      expect(JSON.stringify(k)).not.toContain(a.key);
      expect(JSON.stringify(k)).not.toContain(b.key);
      expect(JSON.stringify(k)).not.toContain(await sha256Hex(a.key));
    }
    expect(keys.find((k) => k.id === b.id)!.permissions).toEqual(['devices:read']);
    expect(keys.some((k) => k.user_id === other.userId)).toBe(false);
  });

  it("needs api-keys:* for another user's keys or everyone's", async () => {
    const viewer = await userWithKey(['viewer']);
    const other = await userWithKey(['viewer']);
    await expectError(await api(`/api/v1/api-keys?user_id=${other.userId}`, { key: viewer.key }), 403, 'FORBIDDEN');
    await expectError(await api('/api/v1/api-keys?all=true', { key: viewer.key }), 403, 'FORBIDDEN');
    expect((await listKeys(viewer.key, `?user_id=${viewer.userId}`)).length).toBe(1);
    await expectError(await api('/api/v1/api-keys?all=yes', { key: viewer.key }), 400, 'VALIDATION_ERROR');

    const admin = await userWithKey(['admin']);
    const theirs = await listKeys(admin.key, `?user_id=${other.userId}`);
    expect(theirs.map((k) => k.user_id)).toEqual([other.userId]);
    const all = await listKeys(admin.key, '?all=true');
    const owners = new Set(all.map((k) => k.user_id));
    expect([viewer.userId, other.userId, admin.userId].every((id) => owners.has(id))).toBe(true);
  });
});

describe('DELETE /api/v1/api-keys/:id', () => {
  it('revokes a key at once; it shows as revoked and stops working', async () => {
    const s = await sessionUser(['viewer']);
    const k = await createKey(s.token);
    expect((await api('/api/v1/auth/me', { key: k.key })).status).toBe(200);
    expect((await api(`/api/v1/api-keys/${k.id}`, { key: s.token, method: 'DELETE' })).status).toBe(204);
    await expectError(await api('/api/v1/auth/me', { key: k.key }), 401, 'UNAUTHORIZED');
    await expectError(await api('/api/v1/auth/me', { headers: basicAuth(k.key) }), 401, 'UNAUTHORIZED');
    const listed = (await listKeys(s.token)).find((x) => x.id === k.id)!;
    expect(Date.parse(listed.revoked_at!)).toBeGreaterThan(Date.now() - 60_000);
    // Revoking twice is harmless.
    expect((await api(`/api/v1/api-keys/${k.id}`, { key: s.token, method: 'DELETE' })).status).toBe(204);
  });

  it("hides other users' keys from non-admins (404), lets admins revoke them", async () => {
    const owner = await userWithKey(['operator']);
    const k = await createKey(owner.key);
    const stranger = await userWithKey(['operator']);
    await expectError(await api(`/api/v1/api-keys/${k.id}`, { key: stranger.key, method: 'DELETE' }), 404, 'NOT_FOUND');
    expect((await api('/api/v1/auth/me', { key: k.key })).status).toBe(200);
    const admin = await userWithKey(['admin']);
    expect((await api(`/api/v1/api-keys/${k.id}`, { key: admin.key, method: 'DELETE' })).status).toBe(204);
    await expectError(await api('/api/v1/auth/me', { key: k.key }), 401, 'UNAUTHORIZED');
    await expectError(await api('/api/v1/api-keys/no-such-key', { key: admin.key, method: 'DELETE' }), 404, 'NOT_FOUND');
  });
});

describe('resolved-credential cache', () => {
  it('never outlives the key: a key expiring in 300 ms stops working then, though it was just used', async () => {
    const { key } = await userWithKey(['viewer']);
    const k = await createKey(key, { name: 'soon', expires_in_days: 1 });
    await env.DB.prepare('UPDATE api_keys SET expires_at = ?1 WHERE id = ?2').bind(Date.now() + 300, k.id).run();
    forgetPrincipals();
    expect((await api('/api/v1/auth/me', { key: k.key })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 400));
    await expectError(await api('/api/v1/auth/me', { key: k.key }), 401, 'UNAUTHORIZED');
  });

  it('a revoke through the API takes effect at once even right after the key was used', async () => {
    const { key } = await userWithKey(['viewer']);
    const k = await createKey(key, { name: 'revoked soon' });
    expect((await api('/api/v1/auth/me', { key: k.key })).status).toBe(200);
    expect((await api(`/api/v1/api-keys/${k.id}`, { key, method: 'DELETE' })).status).toBe(204);
    await expectError(await api('/api/v1/auth/me', { key: k.key }), 401, 'UNAUTHORIZED');
  });
});
