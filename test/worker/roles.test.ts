import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { randomId } from '../../worker/auth/crypto.ts';
import { api, userWithKey } from './helpers.ts';
import { expectError, login, userWithPassword } from './auth-helpers.ts';

interface RoleOut {
  id: string;
  name: string;
  description: string;
  permissions: string[];
  is_system: boolean;
}

async function createRole(key: string, body: Record<string, unknown>) {
  const res = await api('/api/v1/roles', { key, json: body });
  expect(res.status).toBe(201);
  return (await res.json()) as RoleOut;
}

describe('GET /api/v1/roles', () => {
  it('lists the system roles in the Tyto shape', async () => {
    const { key } = await userWithKey(['admin']);
    const res = await api('/api/v1/roles', { key });
    expect(res.status).toBe(200);
    const { roles } = (await res.json()) as { roles: RoleOut[] };
    expect(roles.find((r) => r.id === 'admin')).toEqual({ id: 'admin', name: 'Administrator', description: 'Full system access', permissions: ['*'], is_system: true });
    expect(roles.filter((r) => r.is_system).map((r) => r.id).sort()).toEqual(['admin', 'operator', 'viewer']);
    const one = await api('/api/v1/roles/viewer', { key });
    expect(((await one.json()) as RoleOut).permissions).toContain('devices:read');
    await expectError(await api('/api/v1/roles/nope', { key }), 404, 'NOT_FOUND');
  });

  it('needs roles:read: viewers and operators get 403', async () => {
    for (const role of ['viewer', 'operator']) {
      const { key } = await userWithKey([role]);
      const body = await expectError(await api('/api/v1/roles', { key }), 403, 'FORBIDDEN');
      expect(body.details.required).toEqual(['roles:read']);
      await expectError(await api('/api/v1/roles', { key, json: { name: 'x', permissions: [] } }), 403, 'FORBIDDEN');
    }
    await expectError(await api('/api/v1/roles'), 401, 'UNAUTHORIZED');
  });
});

describe('custom roles', () => {
  it('creates a role with a slug id; users with it get its permissions', async () => {
    const { key } = await userWithKey(['admin']);
    const role = await createRole(key, { name: 'Alert Manager', description: 'Can manage alerts only', permissions: ['dashboard:view', 'alerts:*'] });
    expect(role).toEqual({ id: 'alert-manager', name: 'Alert Manager', description: 'Can manage alerts only', permissions: ['dashboard:view', 'alerts:*'], is_system: false });
    const listed = (await (await api('/api/v1/roles', { key })).json()) as { roles: RoleOut[] };
    expect(listed.roles.map((r) => r.id)).toContain('alert-manager');

    const u = await userWithPassword(['alert-manager']);
    const session = (await (await login(u.username, u.password)).json()) as { user: { permissions: string[] } };
    expect(session.user.permissions.sort()).toEqual(['alerts:*', 'dashboard:view']);
  });

  it('makes distinct ids for names that slug alike, refuses a duplicate name with 409', async () => {
    const { key } = await userWithKey(['admin']);
    const a = await createRole(key, { name: 'Night Shift', permissions: ['devices:read'] });
    const b = await createRole(key, { name: 'Night-Shift!', permissions: ['devices:read'] });
    expect(a.id).toBe('night-shift');
    expect(b.id).toBe('night-shift-2');
    await expectError(await api('/api/v1/roles', { key, json: { name: 'night shift', permissions: [] } }), 409, 'CONFLICT');
    // A name whose slug is a system role's id gets its own id, never the system role's.
    const admin2 = await createRole(key, { name: 'Admin', permissions: ['devices:read'] });
    expect(admin2.id).toBe('admin-2');
    const sys = (await (await api('/api/v1/roles/admin', { key })).json()) as RoleOut;
    expect(sys.permissions).toEqual(['*']);
  });

  it('validates names and permission strings', async () => {
    const { key } = await userWithKey(['admin']);
    const paths = async (json: unknown) =>
      ((await expectError(await api('/api/v1/roles', { key, json }), 400, 'VALIDATION_ERROR')).details.issues as { path: string }[]).map((i) => i.path);
    expect(await paths({ name: '', permissions: [] })).toEqual(['name']);
    expect(await paths({ name: 'x' })).toEqual(['permissions']);
    expect(await paths({ name: 'x', permissions: ['Alerts:Read'] })).toEqual(['permissions.0']);
    expect(await paths({ name: 'x', permissions: ['alerts:read', 'alerts read'] })).toEqual(['permissions.1']);
    expect(await paths({ name: 'x', permissions: ['alerts:read:extra'] })).toEqual(['permissions.0']);
    expect(await paths({ name: 'x', permissions: [':read'] })).toEqual(['permissions.0']);
    expect((await createRole(key, { name: `ok ${randomId(3)}`, permissions: ['*', 'alerts', 'alerts:*', 'api-keys:own'] })).is_system).toBe(false);
  });

  it('updates a custom role; the change applies to its users at once', async () => {
    const { key } = await userWithKey(['admin']);
    const role = await createRole(key, { name: `Ops ${randomId(3)}`, permissions: ['devices:read'] });
    const member = await userWithKey([role.id]);
    await expectError(await api('/api/v1/roles', { key: member.key }), 403, 'FORBIDDEN');
    const res = await api(`/api/v1/roles/${role.id}`, { key, method: 'PUT', json: { description: 'now reads roles', permissions: ['devices:read', 'roles:read'] } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ...role, description: 'now reads roles', permissions: ['devices:read', 'roles:read'] });
    expect((await api('/api/v1/roles', { key: member.key })).status).toBe(200);
    await expectError(await api(`/api/v1/roles/${role.id}`, { key, method: 'PUT', json: {} }), 400, 'VALIDATION_ERROR');
    await expectError(await api('/api/v1/roles/no-such', { key, method: 'PUT', json: { name: 'x' } }), 404, 'NOT_FOUND');
  });

  it('protects system roles from change and deletion (403 SYSTEM_ROLE)', async () => {
    const { key } = await userWithKey(['admin']);
    for (const id of ['admin', 'operator', 'viewer']) {
      await expectError(await api(`/api/v1/roles/${id}`, { key, method: 'PUT', json: { permissions: ['*'] } }), 403, 'SYSTEM_ROLE');
      await expectError(await api(`/api/v1/roles/${id}`, { key, method: 'DELETE' }), 403, 'SYSTEM_ROLE');
    }
    const viewer = (await (await api('/api/v1/roles/viewer', { key })).json()) as RoleOut;
    expect(viewer.permissions).not.toContain('*');
  });

  it('deletes an unused custom role; a role in use gives 409 ROLE_IN_USE', async () => {
    const { key } = await userWithKey(['admin']);
    const role = await createRole(key, { name: `Temp ${randomId(3)}`, permissions: ['devices:read'] });
    const member = await userWithKey(['viewer', role.id]);
    const inUse = await expectError(await api(`/api/v1/roles/${role.id}`, { key, method: 'DELETE' }), 409, 'ROLE_IN_USE');
    expect(inUse.details.users).toBe(1);
    await env.DB.prepare('UPDATE users SET roles = ?1 WHERE id = ?2').bind('["viewer"]', member.userId).run();
    expect((await api(`/api/v1/roles/${role.id}`, { key, method: 'DELETE' })).status).toBe(204);
    await expectError(await api(`/api/v1/roles/${role.id}`, { key }), 404, 'NOT_FOUND');
    await expectError(await api(`/api/v1/roles/${role.id}`, { key, method: 'DELETE' }), 404, 'NOT_FOUND');
  });

  it('a roles:write holder cannot grant permissions it does not hold', async () => {
    const { key: adminKey } = await userWithKey(['admin']);
    const editor = await createRole(adminKey, { name: `Role editor ${randomId(3)}`, permissions: ['roles:read', 'roles:write', 'devices:read'] });
    const { key } = await userWithKey([editor.id]);
    const body = await expectError(await api('/api/v1/roles', { key, json: { name: 'Escalate', permissions: ['*'] } }), 403, 'FORBIDDEN');
    expect(body.details.missing).toEqual(['*']);
    const own = await createRole(key, { name: `Reader ${randomId(3)}`, permissions: ['devices:read'] });
    await expectError(await api(`/api/v1/roles/${own.id}`, { key, method: 'PUT', json: { permissions: ['users:write'] } }), 403, 'FORBIDDEN');
    await expectError(await api(`/api/v1/roles/${editor.id}`, { key, method: 'PUT', json: { permissions: ['roles:write', 'users:write'] } }), 403, 'FORBIDDEN');
  });

  it('a roles:write holder cannot weaken, rename or delete a role stronger than its own (403), nor demote its holders', async () => {
    const { key: adminKey } = await userWithKey(['admin']);
    const editor = await createRole(adminKey, { name: `Role editor ${randomId(3)}`, permissions: ['roles:read', 'roles:write', 'devices:read'] });
    const strong = await createRole(adminKey, { name: `Superuser ${randomId(3)}`, permissions: ['*'] });
    const holder = await userWithKey([strong.id]);
    const spare = await createRole(adminKey, { name: `Spare ${randomId(3)}`, permissions: ['users:write'] });
    const { key } = await userWithKey([editor.id]);
    for (const json of [{ permissions: [] }, { permissions: ['devices:read'] }, { name: `Renamed ${randomId(3)}` }, { description: 'demoted' }]) {
      const body = await expectError(await api(`/api/v1/roles/${strong.id}`, { key, method: 'PUT', json }), 403, 'FORBIDDEN');
      expect(body.details.missing).toEqual(['*']);
    }
    expect((await expectError(await api(`/api/v1/roles/${spare.id}`, { key, method: 'DELETE' }), 403, 'FORBIDDEN')).details.missing).toEqual(['users:write']);
    await expectError(await api(`/api/v1/roles/${strong.id}`, { key, method: 'DELETE' }), 403, 'FORBIDDEN');
    // Nothing changed: the role is as made, its holder still has "*", the spare role still exists.
    expect(await (await api(`/api/v1/roles/${strong.id}`, { key: adminKey })).json()).toEqual(strong);
    expect((await api('/api/v1/users', { key: holder.key })).status).toBe(200);
    expect((await api(`/api/v1/roles/${spare.id}`, { key: adminKey })).status).toBe(200);
    // A role within the editor's own permissions it may still change and delete.
    const own = await createRole(key, { name: `Reader ${randomId(3)}`, permissions: ['devices:read'] });
    expect((await api(`/api/v1/roles/${own.id}`, { key, method: 'PUT', json: { permissions: ['roles:read'] } })).status).toBe(200);
    expect((await api(`/api/v1/roles/${own.id}`, { key, method: 'DELETE' })).status).toBe(204);
  });
});
