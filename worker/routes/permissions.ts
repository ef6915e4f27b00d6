// GET /api/v1/permissions: the permission catalogue a role editor or an API key's narrowing picks
// from. It is read from the routes' own declarations — the x-permissions of every OpenAPI route
// (worker/auth/access.ts) and the permissions of the routes outside the document
// (worker/auth/raw-routes.ts) — so it lists exactly what the relay checks and cannot drift from
// the code: a route added with a new permission adds it here. The wildcards that cover them
// ("*", "<resource>:*") come with it. Any signed-in caller may read it: /api/v1/openapi.json
// already publishes the same declarations to anyone, and every user narrowing an API key needs it.
import { createRoute } from '@hono/zod-openapi';
import type { App } from '../openapi.ts';
import { authErrors, bearerSecurity } from '../openapi.ts';
import { allows } from '../auth/access.ts';
import { RAW_ROUTES } from '../auth/raw-routes.ts';
import { PermissionCatalogueSchema, type PermissionCatalogue, type PermissionEntry, type PermissionRoute } from '../../shared/api/permissions.ts';

const listPermissionsRoute = createRoute({
  method: 'get',
  path: '/api/v1/permissions',
  tags: ['roles'],
  summary: "Every permission the API's routes declare, with the wildcards that cover them and the routes that need each",
  security: bearerSecurity,
  ...allows(),
  responses: {
    200: { description: 'The permissions, by resource', content: { 'application/json': { schema: PermissionCatalogueSchema.openapi('PermissionCatalogue') } } },
    ...authErrors,
  },
});

/** Each declared permission and the routes that declare it. */
function declaredPermissions(app: App): Map<string, PermissionRoute[]> {
  const byPermission = new Map<string, PermissionRoute[]>();
  const add = (permission: string, route: PermissionRoute) => {
    const list = byPermission.get(permission) ?? [];
    list.push(route);
    byPermission.set(permission, list);
  };
  for (const def of app.openAPIRegistry.definitions) {
    if (def.type !== 'route') continue;
    const declared = (def.route as { 'x-permissions'?: unknown })['x-permissions'];
    if (!Array.isArray(declared)) continue;
    // Paths are registered as the document shows them ({id}), summaries as written.
    const route = { method: def.route.method.toUpperCase(), path: def.route.path, summary: def.route.summary ?? null };
    for (const p of declared) add(String(p), route);
  }
  for (const r of RAW_ROUTES) {
    if (!('permissions' in r.access)) continue;
    for (const p of r.access.permissions) for (const method of r.methods) add(p, { method, path: r.path, summary: null });
  }
  return byPermission;
}

/** "List your teams (an instance admin: every team)" → "List your teams": the clause before any aside. */
function shortSummary(summary: string): string {
  return summary.split(/ \(|; |: /)[0]!.trim();
}

function describeRoutes(routes: PermissionRoute[]): string {
  const said = [...new Set(routes.map((r) => (r.summary ? shortSummary(r.summary) : `${r.method} ${r.path}`)))];
  const shown = said.slice(0, 3).join('; ');
  return said.length > 3 ? `${shown}; and ${said.length - 3} more` : shown;
}

function split(permission: string): { resource: string; action: string } {
  const [resource, action = '*'] = permission.split(':');
  return { resource: resource!, action };
}

export function buildCatalogue(app: App): PermissionCatalogue {
  const declared = declaredPermissions(app);
  const entries = new Map<string, PermissionEntry>();
  const byRoute = (a: PermissionRoute, b: PermissionRoute) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method);
  for (const [permission, routes] of declared) {
    const { resource, action } = split(permission);
    entries.set(permission, {
      permission,
      resource,
      action,
      wildcard: permission === '*' || action === '*',
      description: describeRoutes(routes),
      routes: routes.sort(byRoute),
    });
  }
  const resources = [...new Set([...entries.values()].map((e) => e.resource).filter((r) => r !== '*'))].sort();
  for (const resource of resources) {
    const permission = `${resource}:*`;
    const covered = [...entries.values()].filter((e) => e.resource === resource && !e.wildcard).map((e) => e.permission).sort();
    const routes = entries.get(permission)?.routes ?? [];
    entries.set(permission, {
      permission,
      resource,
      action: '*',
      wildcard: true,
      description: `Every ${resource} permission (${covered.join(', ')}), including any added later`,
      routes,
    });
  }
  const everything = entries.get('*');
  entries.set('*', {
    permission: '*',
    resource: '*',
    action: '*',
    wildcard: true,
    // Some routes (instance maintenance) need "*" itself: name them after the rest.
    description: `Everything: every permission of every resource, including any added later${everything ? `; needed by: ${everything.description}` : ''}`,
    routes: everything?.routes ?? [],
  });
  // "*" first, then by resource, each resource's wildcard before its actions.
  const order = (a: PermissionEntry, b: PermissionEntry) =>
    Number(b.resource === '*') - Number(a.resource === '*') || a.resource.localeCompare(b.resource) || Number(b.wildcard) - Number(a.wildcard) || a.action.localeCompare(b.action);
  return { permissions: [...entries.values()].sort(order) };
}

export function registerPermissionRoutes(app: App) {
  // Built on the first call, once every route is registered; the routes do not change after.
  let catalogue: PermissionCatalogue | undefined;
  app.openapi(listPermissionsRoute, (c) => c.json((catalogue ??= buildCatalogue(app)), 200));
}
