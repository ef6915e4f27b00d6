// GET /api/v1/permissions, the catalogue the dashboard's permission picker offers: it must hold
// every permission a route declares — read here from the published OpenAPI document and from
// worker/auth/raw-routes.ts, not from a list of our own — with the routes that need it, and the
// wildcards that cover them, so it cannot drift from what the relay checks.
import { describe, expect, it } from 'vitest';
import { RAW_ROUTES } from '../../worker/auth/raw-routes.ts';
import { PERMISSION_PATTERN } from '../../shared/api/auth.ts';
import { PermissionCatalogueSchema, type PermissionEntry } from '../../shared/api/permissions.ts';
import { api, userWithKey } from './helpers.ts';
import { expectError } from './auth-helpers.ts';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

async function catalogue(key: string): Promise<PermissionEntry[]> {
  const res = await api('/api/v1/permissions', { key });
  expect(res.status).toBe(200);
  return PermissionCatalogueSchema.parse(await res.json()).permissions;
}

/** Every permission each route declares, as `METHOD path` → permissions, from the document and RAW_ROUTES. */
async function declarations(): Promise<Map<string, string[]>> {
  const res = await api('/api/v1/openapi.json');
  const doc = (await res.json()) as { paths: Record<string, Record<string, { 'x-permissions'?: string[] }>> };
  const out = new Map<string, string[]>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const perms = item[method]?.['x-permissions'];
      if (perms) out.set(`${method.toUpperCase()} ${path}`, perms);
    }
  }
  for (const r of RAW_ROUTES) if ('permissions' in r.access) for (const m of r.methods) out.set(`${m} ${r.path}`, [...r.access.permissions]);
  return out;
}

describe('GET /api/v1/permissions', () => {
  it('holds every permission any route declares, each with the routes that declare it', async () => {
    const { key } = await userWithKey(['admin']);
    const list = await catalogue(key);
    const byName = new Map(list.map((e) => [e.permission, e]));
    const declared = await declarations();
    const missing: string[] = [];
    const unlisted: string[] = [];
    for (const [route, perms] of declared) {
      for (const p of perms) {
        const entry = byName.get(p);
        if (!entry) missing.push(`${p} (${route})`);
        else if (!entry.routes.some((r) => `${r.method} ${r.path}` === route)) unlisted.push(`${route} under ${p}`);
      }
    }
    expect(missing).toEqual([]);
    expect(unlisted).toEqual([]);
    // The ones the dashboard and the README lean on, named (a catalogue of nothing would pass the loop above).
    for (const p of ['devices:read', 'devices:write', 'devices:admin', 'tunnels:read', 'tunnels:write', 'tunnels:use', 'teams:read', 'teams:write', 'users:read', 'users:write', 'roles:read', 'roles:write', 'variables:read', 'variables:write', 'audit:read', 'api-keys:own', '*']) {
      expect(byName.has(p), p).toBe(true);
    }
    const reads = byName.get('devices:read')!;
    expect(reads).toMatchObject({ resource: 'devices', action: 'read', wildcard: false });
    expect(reads.routes).toContainEqual({ method: 'GET', path: '/api/v1/devices', summary: expect.any(String) });
    // PiTunnel's /devices is outside the document; it is listed, without a summary.
    expect(reads.routes).toContainEqual({ method: 'GET', path: '/devices', summary: null });
    expect(reads.description.length).toBeGreaterThan(0);
    expect(reads.description).not.toContain('\n');
  });

  it('lists nothing that no route declares, besides the wildcards, and each is a valid permission', async () => {
    const { key } = await userWithKey(['admin']);
    const list = await catalogue(key);
    const declared = new Set([...(await declarations()).values()].flat());
    expect(list.filter((e) => !e.wildcard && !declared.has(e.permission)).map((e) => e.permission)).toEqual([]);
    for (const e of list) expect(e.permission, e.permission).toMatch(PERMISSION_PATTERN);
    expect(new Set(list.map((e) => e.permission)).size).toBe(list.length);
  });

  it('offers "*" and a "<resource>:*" for every resource, saying what each covers', async () => {
    const { key } = await userWithKey(['admin']);
    const list = await catalogue(key);
    expect(list[0]).toMatchObject({ permission: '*', resource: '*', action: '*', wildcard: true });
    // "*" is declared by a route of its own (instance maintenance), which it names.
    expect(list[0]!.routes.map((r) => r.path)).toContain('/api/v1/admin/reseal');
    const resources = [...new Set(list.filter((e) => e.resource !== '*').map((e) => e.resource))];
    expect(resources).toContain('devices');
    for (const resource of resources) {
      const all = list.find((e) => e.permission === `${resource}:*`);
      expect(all, resource).toMatchObject({ resource, action: '*', wildcard: true });
      for (const e of list.filter((x) => x.resource === resource && !x.wildcard)) expect(all!.description).toContain(e.permission);
    }
    // By resource, each resource's wildcard first.
    const devices = list.filter((e) => e.resource === 'devices').map((e) => e.permission);
    expect(devices[0]).toBe('devices:*');
    expect(devices.slice(1)).toEqual([...devices.slice(1)].sort());
  });

  it('is open to any signed-in caller, and to no one else', async () => {
    const { key } = await userWithKey(['viewer']);
    const list = await catalogue(key);
    expect(list.some((e) => e.permission === 'devices:admin')).toBe(true);
    await expectError(await api('/api/v1/permissions'), 401, 'UNAUTHORIZED');
  });
});
