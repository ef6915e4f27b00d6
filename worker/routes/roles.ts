// /api/v1/roles: named permission sets, as Tyto has them. The three system roles (admin,
// operator, viewer) come from a migration and cannot be changed here; custom roles can. Also
// the role lookups the users and API-key routes share, and the rule that nobody grants a
// permission they do not hold themselves (otherwise roles:write or users:write would be a
// path to "*").
import { createRoute, z } from '@hono/zod-openapi';
import { eq, inArray, sql } from 'drizzle-orm';
import type { App } from '../openapi.ts';
import { authErrors, bearerSecurity, conflictError, errorResponse, notFoundError } from '../openapi.ts';
import { ApiError, conflict, forbidden, notFound } from '../errors.ts';
import { getDb, schema, type Db } from '../../shared/db/index.ts';
import type { Role } from '../../shared/db/schema.ts';
import { principalOf } from '../auth/middleware.ts';
import { allows } from '../auth/access.ts';
import { permits } from '../auth/permissions.ts';
import { audit } from '../audit.ts';
import type { Principal } from '../auth/principal.ts';
import {
  CreateRoleRequestSchema,
  RoleIdSchema,
  RoleListResponseSchema,
  RoleSchema,
  UpdateRoleRequestSchema,
} from '../../shared/api/auth.ts';

const RoleOut = RoleSchema.openapi('Role');
const RoleParams = z.object({ id: RoleIdSchema });
const json = <T>(schema: T) => ({ 'application/json': { schema } });
const security = bearerSecurity;

export function roleView(r: Role) {
  return { id: r.id, name: r.name, description: r.description, permissions: r.permissions, is_system: r.isSystem };
}

/** The union of the permissions of the named roles (unknown ids contribute nothing). */
export async function permissionsOfRoles(db: Db, ids: readonly string[]): Promise<string[]> {
  if (!ids.length) return [];
  const rows = await db.select({ permissions: schema.roles.permissions }).from(schema.roles).where(inArray(schema.roles.id, [...ids]));
  return [...new Set(rows.flatMap((r) => r.permissions))];
}

/** Throws 400 unless every role id exists; returns the permissions they carry. */
export async function knownRolePermissions(db: Db, ids: readonly string[]): Promise<string[]> {
  const rows = await db.select().from(schema.roles).where(inArray(schema.roles.id, [...ids]));
  const unknown = ids.filter((id) => !rows.some((r) => r.id === id));
  if (unknown.length) {
    throw new ApiError(400, 'VALIDATION_ERROR', `Unknown role: ${unknown.join(', ')}`, {
      issues: [{ path: 'roles', message: 'unknown role', code: 'unknown_role' }],
      unknown_roles: unknown,
    });
  }
  return [...new Set(rows.flatMap((r) => r.permissions))];
}

/** 403 unless the caller holds every one of `permissions` (wildcards only through wildcards). */
export function assertHolds(caller: Principal, permissions: readonly string[], what: string) {
  const missing = permissions.filter((p) => !permits(caller.permissions, p));
  if (missing.length) throw forbidden(`You cannot ${what} permissions you do not hold`, { missing });
}

function slugOf(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48) || 'role';
}

async function freeRoleId(db: Db, base: string): Promise<string> {
  const taken = new Set((await db.select({ id: schema.roles.id }).from(schema.roles)).map((r) => r.id));
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
  return id;
}

async function assertNameFree(db: Db, name: string, exceptId?: string) {
  const same = await db.select({ id: schema.roles.id }).from(schema.roles).where(sql`lower(${schema.roles.name}) = lower(${name})`);
  if (same.some((r) => r.id !== exceptId)) throw conflict(`A role named "${name}" already exists`, { name });
}

/**
 * A custom role the caller may change or delete: one whose every permission the caller holds,
 * as with users. Otherwise roles:write would let its holder rename, empty or delete a role
 * stronger than its own, and so demote everyone who has it.
 */
async function customRole(db: Db, caller: Principal, id: string): Promise<Role> {
  const role = await db.query.roles.findFirst({ where: eq(schema.roles.id, id) });
  if (!role) throw notFound('Role', { id });
  if (role.isSystem) throw new ApiError(403, 'SYSTEM_ROLE', `"${id}" is a system role and cannot be changed or deleted`, { id });
  assertHolds(caller, role.permissions, 'change a role with');
  return role;
}

/** What an update changed, as {field: {from, to}}, for the audit log. */
function roleChanges(before: Role, after: Role): Record<string, { from: unknown; to: unknown }> {
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  if (before.name !== after.name) changes.name = { from: before.name, to: after.name };
  if (before.description !== after.description) changes.description = { from: before.description, to: after.description };
  if (JSON.stringify(before.permissions) !== JSON.stringify(after.permissions)) changes.permissions = { from: before.permissions, to: after.permissions };
  return changes;
}

const listRoles = createRoute({
  method: 'get',
  path: '/api/v1/roles',
  tags: ['roles'],
  summary: 'List roles',
  security,
  ...allows('roles:read'),
  responses: { 200: { description: 'All roles', content: json(RoleListResponseSchema) }, ...authErrors },
});

const getRole = createRoute({
  method: 'get',
  path: '/api/v1/roles/{id}',
  tags: ['roles'],
  summary: 'Get a role',
  security,
  ...allows('roles:read'),
  request: { params: RoleParams },
  responses: { 200: { description: 'The role', content: json(RoleOut) }, ...authErrors, ...notFoundError },
});

const createRole = createRoute({
  method: 'post',
  path: '/api/v1/roles',
  tags: ['roles'],
  summary: 'Create a custom role (its id is a slug of its name)',
  security,
  ...allows('roles:write'),
  request: { body: { required: true, content: json(CreateRoleRequestSchema.openapi('CreateRoleRequest')) } },
  responses: { 201: { description: 'Created', content: json(RoleOut) }, ...authErrors, ...conflictError },
});

const updateRole = createRoute({
  method: 'put',
  path: '/api/v1/roles/{id}',
  tags: ['roles'],
  summary: 'Update a custom role',
  security,
  ...allows('roles:write'),
  request: { params: RoleParams, body: { required: true, content: json(UpdateRoleRequestSchema.openapi('UpdateRoleRequest')) } },
  responses: { 200: { description: 'Updated', content: json(RoleOut) }, ...authErrors, ...notFoundError, ...conflictError },
});

const deleteRole = createRoute({
  method: 'delete',
  path: '/api/v1/roles/{id}',
  tags: ['roles'],
  summary: 'Delete a custom role that no user has',
  security,
  ...allows('roles:write'),
  request: { params: RoleParams },
  responses: {
    204: { description: 'Deleted' },
    ...authErrors,
    ...notFoundError,
    409: errorResponse('The role is still assigned to users (ROLE_IN_USE)'),
  },
});

export function registerRoleRoutes(app: App) {
  app.openapi(listRoles, async (c) => {
    const rows = await getDb(c.env.DB).select().from(schema.roles).orderBy(sql`${schema.roles.isSystem} DESC`, schema.roles.id);
    return c.json({ roles: rows.map(roleView) }, 200);
  });

  app.openapi(getRole, async (c) => {
    const { id } = c.req.valid('param');
    const role = await getDb(c.env.DB).query.roles.findFirst({ where: eq(schema.roles.id, id) });
    if (!role) throw notFound('Role', { id });
    return c.json(roleView(role), 200);
  });

  app.openapi(createRole, async (c) => {
    const body = c.req.valid('json');
    const db = getDb(c.env.DB);
    assertHolds(principalOf(c), body.permissions, 'grant');
    await assertNameFree(db, body.name);
    const [role] = await db
      .insert(schema.roles)
      .values({ id: await freeRoleId(db, slugOf(body.name)), name: body.name, description: body.description ?? '', permissions: body.permissions })
      .returning();
    audit(c, { action: 'role.create', targetType: 'role', targetId: role!.id, details: { name: role!.name, permissions: role!.permissions } });
    return c.json(roleView(role!), 201);
  });

  app.openapi(updateRole, async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    const db = getDb(c.env.DB);
    const before = await customRole(db, principalOf(c), id);
    if (body.permissions) assertHolds(principalOf(c), body.permissions, 'grant');
    if (body.name !== undefined) await assertNameFree(db, body.name, id);
    const [role] = await db
      .update(schema.roles)
      .set({ name: body.name, description: body.description, permissions: body.permissions })
      .where(eq(schema.roles.id, id))
      .returning();
    // Deleted since customRole found it (a DELETE racing this PUT).
    if (!role) throw notFound('Role', { id });
    audit(c, { action: 'role.update', targetType: 'role', targetId: id, details: roleChanges(before, role) });
    return c.json(roleView(role), 200);
  });

  app.openapi(deleteRole, async (c) => {
    const { id } = c.req.valid('param');
    const db = getDb(c.env.DB);
    const role = await customRole(db, principalOf(c), id);
    const users = await c.env.DB.prepare('SELECT count(*) AS n FROM users u, json_each(u.roles) r WHERE r.value = ?1').bind(id).first<number>('n');
    if (users) throw new ApiError(409, 'ROLE_IN_USE', `Role "${id}" is assigned to ${users} user(s)`, { id, users });
    await db.delete(schema.roles).where(eq(schema.roles.id, id));
    audit(c, { action: 'role.delete', targetType: 'role', targetId: id, details: { name: role.name, permissions: role.permissions } });
    return c.body(null, 204);
  });
}
