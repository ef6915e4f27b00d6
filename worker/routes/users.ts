// /api/v1/users: accounts, as Tyto has them. Deleting a user disables it (soft delete) and
// ends its sessions and API keys, so history that names the user stays readable. Guards keep
// an operator of this API from locking everyone out (no disabling yourself, no removing the
// last admin) or from escalating (you only manage users whose permissions you hold yourself).
import { createRoute, z } from '@hono/zod-openapi';
import { asc, eq } from 'drizzle-orm';
import type { App } from '../openapi.ts';
import { authErrors, bearerSecurity, conflictError, errorResponse, notFoundError } from '../openapi.ts';
import { ApiError, conflict, notFound, unprocessable } from '../errors.ts';
import { getDb, isUniqueViolation, iso, schema, type Db } from '../../shared/db/index.ts';
import type { User } from '../../shared/db/schema.ts';
import { principalOf } from '../auth/middleware.ts';
import { allows } from '../auth/access.ts';
import type { Principal } from '../auth/principal.ts';
import { randomId } from '../auth/crypto.ts';
import { hashPassword } from '../auth/password.ts';
import { turnOffTwoFactor } from './two-factor.ts';
import { revokeWatchers } from '../stream/revoke.ts';
import { revokeUserSessions } from '../auth/sessions.ts';
import { revokeUserApiKeys } from './api-keys.ts';
import { audit } from '../audit.ts';
import { assertHolds, knownRolePermissions, permissionsOfRoles } from './roles.ts';
import {
  CreateUserRequestSchema,
  ResetPasswordRequestSchema,
  UpdateUserRequestSchema,
  UserListSchema,
  UserSchema,
  canonicalTimeZone,
  type UpdateUserRequest,
} from '../../shared/api/auth.ts';

export const UserOut = UserSchema.openapi('User');
const UserParams = z.object({ id: z.string().min(1).max(64) });
const json = <T>(schema: T) => ({ 'application/json': { schema } });
const security = bearerSecurity;
const ADMIN_ROLE = 'admin';

/** The profile fields /auth/me and the user views share. */
export function profileView(u: User) {
  return {
    name: u.name,
    timezone: u.timezone,
    email_verified: u.emailVerified,
    two_factor_enabled: u.totpEnabledAt != null,
    // Accounts made before the column existed were last changed, as far as we know, when made.
    updated_at: iso(u.updatedAt ?? u.createdAt)!,
  };
}

export function userView(u: User) {
  return {
    id: u.id,
    username: u.username,
    email: u.email,
    roles: u.roles,
    auth_provider: u.authProvider,
    disabled: u.disabled,
    created_at: iso(u.createdAt)!,
    last_login: iso(u.lastLogin),
    ...profileView(u),
  };
}

/**
 * The columns a profile change sets: a changed e-mail address is unverified unless an admin says
 * otherwise in the same change, and a time zone is stored as the runtime spells it.
 */
export function profileChange(
  current: Pick<User, 'email'>,
  change: { email?: string | null; name?: string; timezone?: string; email_verified?: boolean },
  now: number,
): Partial<User> {
  const emailChanged = change.email !== undefined && change.email !== current.email;
  return {
    email: change.email,
    name: change.name,
    timezone: change.timezone === undefined ? undefined : (canonicalTimeZone(change.timezone) ?? undefined),
    emailVerified: change.email_verified ?? (emailChanged ? false : undefined),
    updatedAt: now,
  };
}

/** The names of the fields a request set, for the audit entry (never their values: e-mail addresses are personal). */
export function changedFields(change: Record<string, unknown>): string[] {
  return Object.keys(change).filter((k) => change[k] !== undefined);
}

/** Creates a local user; 409 CONFLICT when the username is taken. Roles are not checked here. */
export async function insertUser(
  db: Db,
  input: { username: string; password: string; email?: string | null; roles: string[]; name?: string; timezone?: string; email_verified?: boolean },
): Promise<User> {
  const taken = await db.query.users.findFirst({ where: eq(schema.users.username, input.username), columns: { id: true } });
  if (taken) throw conflict(`Username "${input.username}" is taken`, { username: input.username });
  const now = Date.now();
  try {
    const [user] = await db
      .insert(schema.users)
      .values({
        id: randomId(16),
        username: input.username,
        email: input.email ?? null,
        passwordHash: await hashPassword(input.password),
        roles: [...new Set(input.roles)],
        name: input.name ?? '',
        timezone: (input.timezone && canonicalTimeZone(input.timezone)) || 'UTC',
        emailVerified: input.email_verified ?? false,
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    return user!;
  } catch (e) {
    if (isUniqueViolation(e)) throw conflict(`Username "${input.username}" is taken`, { username: input.username });
    throw e;
  }
}

async function targetUser(db: Db, caller: Principal, id: string): Promise<User> {
  const user = await db.query.users.findFirst({ where: eq(schema.users.id, id) });
  if (!user) throw notFound('User', { id });
  assertHolds(caller, await permissionsOfRoles(db, user.roles), 'manage a user with');
  return user;
}

async function otherEnabledAdmins(d1: D1Database, exceptId: string): Promise<number> {
  const n = await d1
    .prepare('SELECT count(*) AS n FROM users u, json_each(u.roles) r WHERE r.value = ?1 AND u.disabled = 0 AND u.id != ?2')
    .bind(ADMIN_ROLE, exceptId)
    .first<number>('n');
  return n ?? 0;
}

/** The one path for changing a user, so PUT and DELETE share the lockout and escalation guards. */
async function changeUser(d1: D1Database, caller: Principal, target: User, change: UpdateUserRequest): Promise<User> {
  const db = getDb(d1);
  if (change.roles) assertHolds(caller, await knownRolePermissions(db, change.roles), 'grant');
  const disabling = change.disabled === true && !target.disabled;
  if (disabling && target.id === caller.userId) throw unprocessable('CANNOT_DISABLE_SELF', 'You cannot disable your own account');
  const adminAfter = !(change.disabled ?? target.disabled) && (change.roles ?? target.roles).includes(ADMIN_ROLE);
  const adminBefore = !target.disabled && target.roles.includes(ADMIN_ROLE);
  if (adminBefore && !adminAfter && (await otherEnabledAdmins(d1, target.id)) === 0) {
    throw new ApiError(409, 'LAST_ADMIN', 'This is the last enabled admin; make another admin first');
  }
  const [updated] = await db
    .update(schema.users)
    .set({ ...profileChange(target, change, Date.now()), roles: change.roles && [...new Set(change.roles)], disabled: change.disabled })
    .where(eq(schema.users.id, target.id))
    .returning();
  if (disabling) {
    await revokeUserSessions(d1, target.id);
    await revokeUserApiKeys(d1, target.id);
  }
  return updated!;
}

const routeBase = { tags: ['users'], security };

const listUsers = createRoute({
  ...routeBase,
  method: 'get',
  path: '/api/v1/users',
  summary: 'List users (disabled ones included)',
  ...allows('users:read'),
  responses: { 200: { description: 'All users', content: json(UserListSchema) }, ...authErrors },
});

const createUser = createRoute({
  ...routeBase,
  method: 'post',
  path: '/api/v1/users',
  summary: 'Create a user',
  ...allows('users:write'),
  request: { body: { required: true, content: json(CreateUserRequestSchema.openapi('CreateUserRequest')) } },
  responses: { 201: { description: 'Created', content: json(UserOut) }, ...authErrors, ...conflictError },
});

const getUser = createRoute({
  ...routeBase,
  method: 'get',
  path: '/api/v1/users/{id}',
  summary: 'Get a user',
  ...allows('users:read'),
  request: { params: UserParams },
  responses: { 200: { description: 'The user', content: json(UserOut) }, ...authErrors, ...notFoundError },
});

const updateUser = createRoute({
  ...routeBase,
  method: 'put',
  path: '/api/v1/users/{id}',
  summary: 'Update a user (email, roles, disabled, name, timezone, email_verified)',
  ...allows('users:write'),
  request: { params: UserParams, body: { required: true, content: json(UpdateUserRequestSchema.openapi('UpdateUserRequest')) } },
  responses: {
    200: { description: 'Updated', content: json(UserOut) },
    ...authErrors,
    ...notFoundError,
    409: errorResponse('Would leave no enabled admin (LAST_ADMIN)'),
    422: errorResponse('You cannot disable yourself (CANNOT_DISABLE_SELF)'),
  },
});

const deleteUser = createRoute({
  ...routeBase,
  method: 'delete',
  path: '/api/v1/users/{id}',
  summary: 'Disable a user (soft delete); ends its sessions and revokes its API keys',
  ...allows('users:write'),
  request: { params: UserParams },
  responses: {
    204: { description: 'Disabled' },
    ...authErrors,
    ...notFoundError,
    409: errorResponse('Would leave no enabled admin (LAST_ADMIN)'),
    422: errorResponse('You cannot disable yourself (CANNOT_DISABLE_SELF)'),
  },
});

const resetPassword = createRoute({
  ...routeBase,
  method: 'put',
  path: '/api/v1/users/{id}/password',
  summary: "Reset a user's password; ends that user's sessions and their live streams",
  ...allows('users:write'),
  request: { params: UserParams, body: { required: true, content: json(ResetPasswordRequestSchema.openapi('ResetPasswordRequest')) } },
  responses: { 204: { description: 'Password set' }, ...authErrors, ...notFoundError },
});

const resetTwoFactor = createRoute({
  ...routeBase,
  method: 'delete',
  path: '/api/v1/users/{id}/2fa',
  summary: "Turn a user's two-factor login off (they lost their phone and their recovery codes); they may enrol again",
  ...allows('users:write'),
  request: { params: UserParams },
  responses: { 204: { description: 'Two-factor login is off' }, ...authErrors, ...notFoundError },
});

export function registerUserRoutes(app: App) {
  app.openapi(listUsers, async (c) => {
    const rows = await getDb(c.env.DB).select().from(schema.users).orderBy(asc(schema.users.createdAt), asc(schema.users.username));
    return c.json({ users: rows.map(userView) }, 200);
  });

  app.openapi(createUser, async (c) => {
    const body = c.req.valid('json');
    const db = getDb(c.env.DB);
    assertHolds(principalOf(c), await knownRolePermissions(db, body.roles), 'grant');
    const user = await insertUser(db, body);
    audit(c, { action: 'user.create', targetType: 'user', targetId: user.id, details: { username: user.username, roles: user.roles } });
    return c.json(userView(user), 201);
  });

  app.openapi(getUser, async (c) => {
    const { id } = c.req.valid('param');
    const user = await getDb(c.env.DB).query.users.findFirst({ where: eq(schema.users.id, id) });
    if (!user) throw notFound('User', { id });
    return c.json(userView(user), 200);
  });

  app.openapi(updateUser, async (c) => {
    const caller = principalOf(c);
    const target = await targetUser(getDb(c.env.DB), caller, c.req.valid('param').id);
    const change = c.req.valid('json');
    const updated = await changeUser(c.env.DB, caller, target, change);
    const disabling = change.disabled === true && !target.disabled;
    // Disabling has its own action; re-enabling is an update; repeating the current state is neither.
    const fields = changedFields(change).filter((f) => f !== 'disabled' || (change.disabled === false && target.disabled));
    if (fields.length) audit(c, { action: 'user.update', targetType: 'user', targetId: target.id, details: { fields, ...(change.roles && { roles: updated.roles }) } });
    if (disabling) audit(c, { action: 'user.disable', targetType: 'user', targetId: target.id });
    // New roles may see less (an instance admin no longer); a disabled user sees nothing.
    if (disabling || change.roles) await revokeWatchers(c.env, { userId: target.id });
    return c.json(userView(updated), 200);
  });

  app.openapi(deleteUser, async (c) => {
    const caller = principalOf(c);
    const target = await targetUser(getDb(c.env.DB), caller, c.req.valid('param').id);
    await changeUser(c.env.DB, caller, target, { disabled: true });
    if (!target.disabled) {
      audit(c, { action: 'user.disable', targetType: 'user', targetId: target.id });
      await revokeWatchers(c.env, { userId: target.id });
    }
    return c.body(null, 204);
  });

  app.openapi(resetPassword, async (c) => {
    const caller = principalOf(c);
    const db = getDb(c.env.DB);
    const target = await targetUser(db, caller, c.req.valid('param').id);
    await db
      .update(schema.users)
      .set({ passwordHash: await hashPassword(c.req.valid('json').new_password), updatedAt: Date.now() })
      .where(eq(schema.users.id, target.id));
    // Resets usually follow a suspected compromise: whoever holds a session must log in again.
    await revokeUserSessions(c.env.DB, target.id, target.id === caller.userId ? caller.sessionId : undefined);
    audit(c, { action: 'password.reset', targetType: 'user', targetId: target.id });
    // The ended sessions' streams end too (all of the user's: those of a kept session or an API key reconnect at once).
    await revokeWatchers(c.env, { userId: target.id });
    return c.body(null, 204);
  });

  app.openapi(resetTwoFactor, async (c) => {
    const target = await targetUser(getDb(c.env.DB), principalOf(c), c.req.valid('param').id);
    await turnOffTwoFactor(c.env.DB, target.id);
    if (target.totpEnabledAt != null || target.totpSecret != null) audit(c, { action: '2fa.reset', targetType: 'user', targetId: target.id });
    return c.body(null, 204);
  });
}
