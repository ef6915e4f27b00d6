// Every route the app serves says who may call it: OpenAPI routes through the x-permissions,
// x-self-service or x-public extension (worker/auth/access.ts), the others through an entry in
// worker/auth/raw-routes.ts; an OpenAPI route on one device or team also says so (x-scope, with
// the team role it needs, x-team-role). A route added without these fails here, and what is
// declared is what the e2e permission matrix (test/e2e/permission-matrix.test.ts) then holds
// the relay to.
import { describe, expect, it } from 'vitest';
import { createApp } from '../../worker/app.ts';
import { RAW_ROUTES } from '../../worker/auth/raw-routes.ts';
import { api } from './helpers.ts';

type Operation = Record<string, unknown>;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

async function document() {
  const res = await api('/api/v1/openapi.json');
  expect(res.status).toBe(200);
  return (await res.json()) as { paths: Record<string, Record<string, Operation>> };
}

describe('route declarations', () => {
  it('every OpenAPI operation declares its permissions, self-service or public, and only one of these', async () => {
    const undeclared: string[] = [];
    for (const [path, item] of Object.entries((await document()).paths)) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const perms = op['x-permissions'];
        const kinds = [Array.isArray(perms) && !op['x-self-service'], op['x-self-service'] === true && Array.isArray(perms), op['x-public'] === true];
        if (kinds.filter(Boolean).length !== 1) undeclared.push(`${method.toUpperCase()} ${path}`);
        // A route that takes credentials lists its security schemes; a public one needs none of ours.
        if (op['x-public'] !== true && !Array.isArray(op.security)) undeclared.push(`${method.toUpperCase()} ${path} (no security)`);
      }
    }
    expect(undeclared).toEqual([]);
  });

  it('every operation on one device or team declares it (x-scope) and the team role it needs there (x-team-role)', async () => {
    const unscoped: string[] = [];
    const scopes: Record<string, number> = {};
    for (const [path, item] of Object.entries((await document()).paths)) {
      // A path naming one device (an agent is one) or one team in its first parameter: /api/v1/devices/{id}…
      const named = path.match(/^\/api\/v1\/(devices|agents|teams)\/(?:[^{}]*\/)?\{(\w+)\}/);
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const route = `${method.toUpperCase()} ${path}`;
        const scope = op['x-scope'];
        if (named) {
          const kind = named[1] === 'teams' ? 'team' : 'device';
          if (scope !== `${kind}:${named[2]}`) unscoped.push(`${route} (x-scope ${String(scope)}, expected ${kind}:${named[2]})`);
        }
        if (scope !== undefined) {
          scopes[String(scope)] = (scopes[String(scope)] ?? 0) + 1;
          if (!['owner', 'admin', 'member'].includes(op['x-team-role'] as string)) unscoped.push(`${route} (x-team-role ${String(op['x-team-role'])})`);
        } else if (op['x-team-role'] !== undefined) unscoped.push(`${route} (x-team-role without x-scope)`);
      }
    }
    expect(unscoped).toEqual([]);
    // The pattern found the routes it is about (a renamed prefix would leave it checking nothing).
    expect(scopes['device:id']).toBeGreaterThan(20);
    expect(scopes['team:id']).toBeGreaterThan(10);
  });

  it('every route the app serves is in the OpenAPI document or in RAW_ROUTES', async () => {
    const app = createApp({ startedAt: Date.now() });
    const doc = await document();
    const declared = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of METHODS) if (item[method]) declared.add(`${method.toUpperCase()} ${path.replace(/\{(.+?)\}/g, ':$1')}`);
    }
    for (const r of RAW_ROUTES) for (const m of r.methods) declared.add(`${m} ${r.pattern ?? r.path}`);
    // app.use middleware shows as ALL; every handler is listed once per middleware in its chain.
    const served = new Set(app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path}`));
    expect([...served].filter((r) => !declared.has(r))).toEqual([]);
    // And nothing is declared that is not served (a stale entry would hide a renamed route).
    expect([...declared].filter((r) => !served.has(r))).toEqual([]);
  });
});
