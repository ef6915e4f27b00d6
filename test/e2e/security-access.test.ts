// Access-control attacks from the hardening review, replayed against the real relay in workerd:
// a roles:write holder weakening a role stronger than its own (demoting everyone who has it),
// an API key narrowed to devices:read taking over its owner's account, and a password change or
// reset leaving other sessions alive.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startDevEnv, type DevEnv } from '../../scripts/dev-env.ts';
import { freePort, http, tempDir } from './harness.ts';

let env: DevEnv;
let url: string;
let adminKey: string;

const call = (path: string, init: Parameters<typeof http>[1] = {}) => http(`${url}${path}`, { key: adminKey, ...init });

async function ok(what: string, p: ReturnType<typeof http>, status: number) {
  const r = await p;
  expect(r.status, `${what}: ${JSON.stringify(r.body)}`).toBe(status);
  return r.body;
}

/** A user with these roles and a password, made through the API. */
async function user(roles: string[]) {
  const username = `sec-${randomBytes(4).toString('hex')}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const body = await ok('create user', call('/api/v1/users', { json: { username, password, roles } }), 201);
  return { id: body.id as string, username, password };
}

async function login(username: string, password: string): Promise<string> {
  return (await ok('login', call('/api/v1/auth/login', { key: undefined, json: { username, password } }), 200)).token;
}

const me = (key: string) => call('/api/v1/auth/me', { key });

beforeAll(async () => {
  env = await startDevEnv({ dir: await tempDir('security-access'), port: await freePort(), demoDevices: [] });
  url = env.state.url;
  adminKey = env.state.apiKey;
});

afterAll(async () => {
  await env?.stop();
});

describe('roles', () => {
  it('a roles:write holder cannot weaken, rename or delete a role stronger than its own', async () => {
    const superuser = await ok('role', call('/api/v1/roles', { json: { name: `Superuser ${randomBytes(2).toString('hex')}`, permissions: ['*'] } }), 201);
    const editorRole = await ok('role', call('/api/v1/roles', { json: { name: `Editor ${randomBytes(2).toString('hex')}`, permissions: ['roles:read', 'roles:write'] } }), 201);
    const holder = await user([superuser.id]);
    const holderSession = await login(holder.username, holder.password);
    const editor = await user([editorRole.id]);
    const key = await login(editor.username, editor.password);

    for (const json of [{ permissions: [] }, { permissions: ['roles:read'] }, { name: 'Nobody' }]) {
      const r = await call(`/api/v1/roles/${superuser.id}`, { key, method: 'PUT', json });
      expect({ status: r.status, code: r.body.code, missing: r.body.details?.missing }).toEqual({ status: 403, code: 'FORBIDDEN', missing: ['*'] });
    }
    expect((await call(`/api/v1/roles/${superuser.id}`, { key, method: 'DELETE' })).status).toBe(403);
    // Creating a role, or widening one, beyond the editor's own permissions was refused already.
    expect((await call('/api/v1/roles', { key, json: { name: 'Escalate', permissions: ['users:write'] } })).status).toBe(403);
    expect((await call(`/api/v1/roles/${editorRole.id}`, { key, method: 'PUT', json: { permissions: ['*'] } })).status).toBe(403);

    expect((await call(`/api/v1/roles/${superuser.id}`)).body).toEqual(superuser);
    expect((await call('/api/v1/users', { key: holderSession })).status).toBe(200);
  });
});

describe('self-service', () => {
  it("a key narrowed to devices:read cannot change its owner's email or password (403 NARROWED_API_KEY)", async () => {
    const owner = await user(['admin']);
    const session = await login(owner.username, owner.password);
    const narrowed = (await ok('key', call('/api/v1/api-keys', { key: session, json: { name: 'ci', permissions: ['devices:read'] } }), 201)).key;
    const email = (await me(session)).body.email;

    const put = await call('/api/v1/auth/me', { key: narrowed, method: 'PUT', json: { email: 'attacker@example.com' } });
    expect({ status: put.status, code: put.body.code }).toEqual({ status: 403, code: 'NARROWED_API_KEY' });
    const pw = await call('/api/v1/auth/me/password', { key: narrowed, method: 'PUT', json: { current_password: owner.password, new_password: 'attacker-password' } });
    expect({ status: pw.status, code: pw.body.code }).toEqual({ status: 403, code: 'NARROWED_API_KEY' });
    // Nor can it mint itself a broader key.
    expect((await call('/api/v1/api-keys', { key: narrowed, json: { name: 'wider', permissions: ['*'] } })).status).toBe(403);

    expect((await me(session)).body.email).toBe(email);
    expect(typeof (await login(owner.username, owner.password))).toBe('string');
    // The same owner's unrestricted key may change the account.
    const full = (await ok('key', call('/api/v1/api-keys', { key: session, json: { name: 'full' } }), 201)).key;
    expect((await call('/api/v1/auth/me', { key: full, method: 'PUT', json: { email: 'owner@example.com' } })).status).toBe(200);
  });
});

describe('passwords', () => {
  it('a password change ends every other session at once (even one just used) and keeps the one that changed it', async () => {
    const u = await user(['viewer']);
    const [changer, used, idle] = [await login(u.username, u.password), await login(u.username, u.password), await login(u.username, u.password)];
    expect((await me(used)).status).toBe(200);
    await ok('change', call('/api/v1/auth/me/password', { key: changer, method: 'PUT', json: { current_password: u.password, new_password: 'a-brand-new-password' } }), 204);
    expect((await me(used)).status).toBe(401);
    expect((await me(idle)).status).toBe(401);
    expect((await me(changer)).status).toBe(200);
    expect((await call('/api/v1/auth/login', { key: undefined, json: { username: u.username, password: u.password } })).status).toBe(401);
    expect(typeof (await login(u.username, 'a-brand-new-password'))).toBe('string');
  });

  it("an admin's reset ends every session of that user", async () => {
    const u = await user(['operator']);
    const sessions = [await login(u.username, u.password), await login(u.username, u.password)];
    expect((await me(sessions[0]!)).status).toBe(200);
    await ok('reset', call(`/api/v1/users/${u.id}/password`, { method: 'PUT', json: { new_password: 'set-by-the-admin' } }), 204);
    for (const s of sessions) expect((await me(s)).status).toBe(401);
  });
});
