// /api/v1/auth/* and /api/v1/bootstrap: how a person gets and ends a session, manages their own
// account, and how a fresh deployment gets its first admin. A deployed relay ships with no
// default password; the operator proves control with the BOOTSTRAP_TOKEN secret instead, once.
// With two-factor login on, the password alone earns only a challenge; the session comes from
// POST /auth/login/2fa with a code (worker/routes/two-factor.ts holds the factor checks).
import { createRoute, z } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { eq } from 'drizzle-orm';
import type { AppEnv } from '../app-env.ts';
import type { App } from '../openapi.ts';
import { authErrors, bearerSecurity, errorResponse } from '../openapi.ts';
import { ApiError } from '../errors.ts';
import { getDb, iso, schema, type Db } from '../../shared/db/index.ts';
import type { User } from '../../shared/db/schema.ts';
import { principalOf } from '../auth/middleware.ts';
import { allows, publicRoute, selfService } from '../auth/access.ts';
import { randomId, sha256Hex, timingSafeEqual } from '../auth/crypto.ts';
import { hashPassword, verifyPassword } from '../auth/password.ts';
import { assertLoginAllowed, clearLoginFailures, loginKeys, recordLoginFailure, type LoginKeys } from '../auth/rate-limit.ts';
import { createSession, revokeSession, revokeUserSessions, sessionCookie } from '../auth/sessions.ts';
import { audit } from '../audit.ts';
import { revokeWatchers, STREAMS_NOT_CLOSED } from '../stream/revoke.ts';
import { issueApiKey } from './api-keys.ts';
import { DEFAULT_TEAM_NAME, createTeam } from '../teams/queries.ts';
import { permissionsOfRoles } from './roles.ts';
import { changedFields, insertUser, profileChange, profileView, UserOut, userView } from './users.ts';
import { LOGIN_CHALLENGE_MAX_ATTEMPTS, invalidTwoFactorCode, issueLoginChallenge, spendSecondFactor, type SecondFactor } from './two-factor.ts';
import {
  BootstrapRequestSchema,
  BootstrapResponseSchema,
  ChangePasswordRequestSchema,
  LoginChallengeSchema,
  LoginRequestSchema,
  LoginResponseSchema,
  LoginTwoFactorRequestSchema,
  MeSchema,
  RegisterRequestSchema,
  UpdateMeRequestSchema,
} from '../../shared/api/auth.ts';

const json = <T>(schema: T) => ({ 'application/json': { schema } });
const security = bearerSecurity;
const MeOut = MeSchema.openapi('Me');
const LoginOut = LoginResponseSchema.openapi('LoginResponse');

const invalidCredentials = () => new ApiError(401, 'INVALID_CREDENTIALS', 'Invalid username or password');
const invalidChallenge = () =>
  new ApiError(401, 'INVALID_CHALLENGE', 'This login challenge is unknown, expired, used or out of tries; log in with your password again');
const accountDisabled = () => new ApiError(403, 'ACCOUNT_DISABLED', 'This account is disabled');

async function meView(db: Db, user: User, permissions?: string[]) {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    roles: user.roles,
    permissions: permissions ?? (await permissionsOfRoles(db, user.roles)),
    auth_provider: user.authProvider,
    last_login: iso(user.lastLogin),
    ...profileView(user),
  };
}

/**
 * Both login steps end here: the throttle forgets this name and address, and a session starts.
 * Asked for as a cookie (a browser), the token goes only into the HttpOnly cookie, never into
 * the body, where the page's scripts could read it.
 */
async function startSession(c: Context<AppEnv>, user: User, keys: LoginKeys, now: number, factor: SecondFactor | undefined, asCookie: boolean) {
  const db = getDb(c.env.DB);
  await clearLoginFailures(c.env.DB, keys);
  const { token, expiresAt } = await createSession(c.env, user.id, now);
  await db.update(schema.users).set({ lastLogin: now }).where(eq(schema.users.id, user.id));
  const details = { ...(factor && { second_factor: factor }), ...(asCookie && { cookie: true }) };
  audit(c, { action: 'login', targetType: 'user', targetId: user.id, actor: { id: user.id, name: user.username }, details: Object.keys(details).length ? details : undefined });
  const { id, email, roles, permissions } = await meView(db, user);
  const answer = { user: { id, username: user.username, email, roles, permissions }, expires_at: iso(expiresAt)! };
  if (!asCookie) return { token, ...answer };
  c.header('set-cookie', sessionCookie(token, Math.max(0, Math.floor((expiresAt - now) / 1000))));
  return answer;
}

async function currentUser(db: Db, userId: string): Promise<User> {
  const user = await db.query.users.findFirst({ where: eq(schema.users.id, userId) });
  if (!user) throw new ApiError(401, 'UNAUTHORIZED', 'Missing or invalid credentials');
  return user;
}

/** Runs before body validation, so a closed door answers the same whatever was sent. */
const registrationOpen: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.env.ALLOW_REGISTRATION !== 'true') throw new ApiError(403, 'REGISTRATION_DISABLED', 'Self-registration is disabled on this relay');
  await next();
};

const bootstrapAllowed: MiddlewareHandler<AppEnv> = async (c, next) => {
  const expected = c.env.BOOTSTRAP_TOKEN;
  if (!expected) throw new ApiError(403, 'BOOTSTRAP_DISABLED', 'BOOTSTRAP_TOKEN is not set on this relay');
  const given = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
  // Comparing digests keeps the comparison constant-time even when the lengths differ.
  if (!timingSafeEqual(await sha256Hex(given), await sha256Hex(expected))) {
    throw new ApiError(401, 'INVALID_BOOTSTRAP_TOKEN', 'Missing or wrong bootstrap token');
  }
  const anyUser = await c.env.DB.prepare('SELECT 1 FROM users LIMIT 1').first();
  if (anyUser) throw new ApiError(409, 'ALREADY_BOOTSTRAPPED', 'Users already exist; bootstrap only creates the first admin');
  await next();
};

const login = createRoute({
  method: 'post',
  path: '/api/v1/auth/login',
  tags: ['auth'],
  summary: 'Log in with username and password; returns a session token, or a challenge when two-factor login is on',
  ...publicRoute(),
  request: { body: { required: true, content: json(LoginRequestSchema.openapi('LoginRequest')) } },
  responses: {
    200: {
      description: 'A session; or, with two-factor login on, {two_factor_required, challenge, expires_at} for POST /api/v1/auth/login/2fa',
      content: json(z.union([LoginOut, LoginChallengeSchema.openapi('LoginChallenge')])),
    },
    400: errorResponse('Invalid input'),
    401: errorResponse('Wrong username or password (INVALID_CREDENTIALS)'),
    403: errorResponse('Right password, but the account is disabled (ACCOUNT_DISABLED)'),
    429: errorResponse('Too many failed attempts (RATE_LIMITED); see Retry-After'),
  },
});

const loginTwoFactor = createRoute({
  method: 'post',
  path: '/api/v1/auth/login/2fa',
  tags: ['auth'],
  summary: 'The second step of a login with two-factor login on: the challenge and a TOTP code or a recovery code',
  ...publicRoute(),
  request: { body: { required: true, content: json(LoginTwoFactorRequestSchema.openapi('LoginTwoFactorRequest')) } },
  responses: {
    200: { description: 'A session, as POST /api/v1/auth/login gives one', content: json(LoginOut) },
    400: errorResponse('Invalid input'),
    401: errorResponse('Wrong or used code (INVALID_TWO_FACTOR_CODE), or the challenge is unknown, expired, used or out of tries (INVALID_CHALLENGE)'),
    403: errorResponse('The account is disabled (ACCOUNT_DISABLED)'),
    429: errorResponse('Too many failed attempts (RATE_LIMITED); see Retry-After'),
  },
});

const logout = createRoute({
  method: 'post',
  path: '/api/v1/auth/logout',
  tags: ['auth'],
  summary: 'End the current session',
  security,
  ...allows(),
  responses: { 204: { description: 'Logged out' }, ...authErrors },
});

const getMe = createRoute({
  method: 'get',
  path: '/api/v1/auth/me',
  tags: ['auth'],
  summary: 'Who am I',
  security,
  ...allows(),
  responses: { 200: { description: 'The caller', content: json(MeOut) }, ...authErrors },
});

const updateMe = createRoute({
  method: 'put',
  path: '/api/v1/auth/me',
  tags: ['auth'],
  summary: 'Update your profile (a session or an API key that is not narrowed)',
  security,
  ...selfService(),
  request: { body: { required: true, content: json(UpdateMeRequestSchema.openapi('UpdateMeRequest')) } },
  responses: { 200: { description: 'The caller, updated', content: json(MeOut) }, ...authErrors },
});

const changePassword = createRoute({
  method: 'put',
  path: '/api/v1/auth/me/password',
  tags: ['auth'],
  summary: 'Change your password (a session or an API key that is not narrowed); ends your other sessions and your live streams',
  security,
  ...selfService(),
  request: { body: { required: true, content: json(ChangePasswordRequestSchema.openapi('ChangePasswordRequest')) } },
  responses: {
    204: { description: 'Changed' },
    ...authErrors,
    403: errorResponse('current_password is wrong (INVALID_CURRENT_PASSWORD), or the credential is a narrowed API key (NARROWED_API_KEY)'),
    429: errorResponse('Too many failed attempts (RATE_LIMITED)'),
  },
});

const register = createRoute({
  method: 'post',
  path: '/api/v1/auth/register',
  tags: ['auth'],
  summary: 'Create a viewer account (only when ALLOW_REGISTRATION is "true")',
  ...publicRoute(registrationOpen),
  request: { body: { required: true, content: json(RegisterRequestSchema.openapi('RegisterRequest')) } },
  responses: {
    201: { description: 'Created', content: json(UserOut) },
    400: errorResponse('Invalid input'),
    403: errorResponse('Registration is disabled (REGISTRATION_DISABLED)'),
    409: errorResponse('Username taken (CONFLICT)'),
  },
});

const bootstrap = createRoute({
  method: 'post',
  path: '/api/v1/bootstrap',
  tags: ['auth'],
  summary: 'Create the first admin and an admin API key (Authorization: Bearer <BOOTSTRAP_TOKEN>)',
  security: [{ bearerAuth: [] }],
  ...publicRoute(bootstrapAllowed),
  request: { body: { required: true, content: json(BootstrapRequestSchema.openapi('BootstrapRequest')) } },
  responses: {
    201: { description: 'The admin, and its API key (shown only here)', content: json(BootstrapResponseSchema.openapi('BootstrapResponse')) },
    400: errorResponse('Invalid input'),
    401: errorResponse('Missing or wrong bootstrap token (INVALID_BOOTSTRAP_TOKEN)'),
    403: errorResponse('BOOTSTRAP_TOKEN is not set (BOOTSTRAP_DISABLED)'),
    409: errorResponse('Users already exist (ALREADY_BOOTSTRAPPED)'),
  },
});

export function registerAuthRoutes(app: App) {
  app.openapi(login, async (c) => {
    const { username, password, session_cookie } = c.req.valid('json');
    const keys = loginKeys(c, username);
    await assertLoginAllowed(c, keys);
    const db = getDb(c.env.DB);
    const user = await db.query.users.findFirst({ where: eq(schema.users.username, username) });
    // verifyPassword does the full work even without a user, so timing does not reveal one.
    const ok = await verifyPassword(password, user?.authProvider === 'local' ? user.passwordHash : null);
    const tried = { id: user?.id ?? null, name: username };
    if (!user || !ok) {
      await recordLoginFailure(c.env.DB, keys);
      audit(c, { action: 'login.failed', targetType: 'user', targetId: tried.id, actor: tried, details: { reason: 'invalid_credentials' } });
      throw invalidCredentials();
    }
    // Only someone who knows the password learns that the account is disabled.
    if (user.disabled) {
      audit(c, { action: 'login.failed', targetType: 'user', targetId: user.id, actor: tried, details: { reason: 'account_disabled' } });
      throw accountDisabled();
    }
    const now = Date.now();
    if (user.totpEnabledAt) {
      // The throttle is not cleared here: a known password must not reset the count of wrong codes.
      const { challenge, expiresAt } = await issueLoginChallenge(c.env.DB, user.id, now);
      return c.json({ two_factor_required: true as const, challenge, expires_at: iso(expiresAt)! }, 200);
    }
    return c.json(await startSession(c, user, keys, now, undefined, session_cookie === true), 200);
  });

  app.openapi(loginTwoFactor, async (c) => {
    const body = c.req.valid('json');
    const now = Date.now();
    const db = getDb(c.env.DB);
    const lc = schema.loginChallenges;
    const found = await db
      .select({ challenge: lc, user: schema.users })
      .from(lc)
      .innerJoin(schema.users, eq(schema.users.id, lc.userId))
      .where(eq(lc.tokenHash, await sha256Hex(body.challenge)))
      .get();
    if (!found || found.challenge.usedAt || found.challenge.expiresAt <= now || !found.user.totpEnabledAt) throw invalidChallenge();
    const { challenge, user } = found;
    const actor = { id: user.id, name: user.username };
    if (user.disabled) {
      audit(c, { action: 'login.failed', targetType: 'user', targetId: user.id, actor, details: { reason: 'account_disabled' } });
      throw accountDisabled();
    }
    // The same throttle as the password step: wrong codes and wrong passwords count together.
    const keys = loginKeys(c, user.username);
    await assertLoginAllowed(c, keys, now);
    // The challenge is claimed and a try spent before the code is looked at, in one statement: a
    // request racing with the same challenge finds it taken (and spends none of its codes), and
    // guesses cannot exceed the limit.
    const tried = await c.env.DB.prepare(
      'UPDATE login_challenges SET attempts = attempts + 1, used_at = ?2 WHERE id = ?1 AND used_at IS NULL AND expires_at > ?2 AND attempts < ?3 RETURNING attempts',
    )
      .bind(challenge.id, now, LOGIN_CHALLENGE_MAX_ATTEMPTS)
      .first<number>('attempts');
    if (tried === null) throw invalidChallenge();
    const factor = await spendSecondFactor(c.env, user, { code: body.code, recoveryCode: body.recovery_code }, now);
    if (!factor) {
      // Free for another try (the claim above refuses it once the tries are used up).
      await c.env.DB.prepare('UPDATE login_challenges SET used_at = NULL WHERE id = ?1').bind(challenge.id).run();
      await recordLoginFailure(c.env.DB, keys, now);
      audit(c, { action: '2fa.failed', targetType: 'user', targetId: user.id, actor, details: { during: 'login' } });
      throw invalidTwoFactorCode(401, { attempts_left: LOGIN_CHALLENGE_MAX_ATTEMPTS - tried });
    }
    if (factor === 'recovery_code') audit(c, { action: '2fa.recovery_used', targetType: 'user', targetId: user.id, actor });
    return c.json(await startSession(c, user, keys, now, factor, body.session_cookie === true), 200);
  });

  app.openapi(logout, async (c) => {
    const principal = principalOf(c);
    if (principal.kind !== 'session' || !principal.sessionId) {
      throw new ApiError(400, 'NOT_A_SESSION', 'Logout ends a session; revoke an API key with DELETE /api/v1/api-keys/{id}');
    }
    await revokeSession(c.env.DB, principal.sessionId);
    audit(c, { action: 'logout', targetType: 'user', targetId: principal.userId });
    // A browser's cookie goes too (a session given as a token has none to clear; the header is harmless).
    c.header('set-cookie', sessionCookie('', 0));
    // The session's live streams end with it. A FleetHub that cannot be reached does not make the
    // logout a 502 (revokeWatchers logged it): the session is over, the client drops its token
    // either way and a retry would be a 401, so the answer could only mislead; the streams still
    // end at the session's expiry, when the hub closes them.
    try {
      await revokeWatchers(c.env, { userId: principal.userId, credentialId: principal.sessionId });
    } catch (e) {
      if (!(e instanceof ApiError && e.code === STREAMS_NOT_CLOSED)) throw e;
    }
    return c.body(null, 204);
  });

  app.openapi(getMe, async (c) => {
    const principal = principalOf(c);
    const db = getDb(c.env.DB);
    // An API key's permissions may be narrower than its owner's; show what this credential can do.
    return c.json(await meView(db, await currentUser(db, principal.userId), principal.permissions), 200);
  });

  app.openapi(updateMe, async (c) => {
    const principal = principalOf(c);
    const change = c.req.valid('json');
    const db = getDb(c.env.DB);
    const current = await currentUser(db, principal.userId);
    // email_verified is not in this request: only an admin may say an address is verified.
    const [updated] = await db.update(schema.users).set(profileChange(current, change, Date.now())).where(eq(schema.users.id, current.id)).returning();
    audit(c, { action: 'user.update', targetType: 'user', targetId: current.id, details: { fields: changedFields(change) } });
    return c.json(await meView(db, updated!, principal.permissions), 200);
  });

  app.openapi(changePassword, async (c) => {
    const { current_password, new_password } = c.req.valid('json');
    const principal = principalOf(c);
    const db = getDb(c.env.DB);
    // Same throttle as login: a stolen session must not become a password-guessing oracle.
    const keys = loginKeys(c, principal.username);
    await assertLoginAllowed(c, keys);
    const user = await currentUser(db, principal.userId);
    if (!(await verifyPassword(current_password, user.authProvider === 'local' ? user.passwordHash : null))) {
      await recordLoginFailure(c.env.DB, keys);
      // 403, not 401: the caller is authenticated, and clients treat 401 as "log in again".
      throw new ApiError(403, 'INVALID_CURRENT_PASSWORD', 'current_password is wrong');
    }
    // Two-factor login stays as it is: a new password is no reason to drop the second factor.
    await db.update(schema.users).set({ passwordHash: await hashPassword(new_password), updatedAt: Date.now() }).where(eq(schema.users.id, user.id));
    await revokeUserSessions(c.env.DB, user.id, principal.sessionId);
    await clearLoginFailures(c.env.DB, keys);
    audit(c, { action: 'password.change', targetType: 'user', targetId: user.id });
    // The ended sessions' streams end too (all of the user's: the kept ones reconnect at once).
    await revokeWatchers(c.env, { userId: user.id });
    return c.body(null, 204);
  });

  app.openapi(register, async (c) => {
    const body = c.req.valid('json');
    const user = await insertUser(getDb(c.env.DB), { ...body, roles: ['viewer'] });
    audit(c, {
      action: 'user.create',
      targetType: 'user',
      targetId: user.id,
      actor: { id: user.id, name: user.username },
      details: { username: user.username, roles: user.roles, via: 'register' },
    });
    return c.json(userView(user), 201);
  });

  app.openapi(bootstrap, async (c) => {
    const body = c.req.valid('json');
    const db = getDb(c.env.DB);
    const id = randomId(16);
    // One statement, so two racing bootstrap calls cannot both create an admin.
    const now = Date.now();
    const { meta } = await c.env.DB.prepare(
      `INSERT INTO users (id, username, email, password_hash, roles, auth_provider, disabled, created_at, updated_at)
       SELECT ?1, ?2, ?3, ?4, '["admin"]', 'local', 0, ?5, ?5 WHERE NOT EXISTS (SELECT 1 FROM users)`,
    )
      .bind(id, body.username, body.email ?? null, await hashPassword(body.password), now)
      .run();
    if (!meta.changes) throw new ApiError(409, 'ALREADY_BOOTSTRAPPED', 'Users already exist; bootstrap only creates the first admin');
    const teamId = await createTeam(c.env.DB, { name: DEFAULT_TEAM_NAME, ownerId: id }, now);
    const user = await currentUser(db, id);
    const { row, key } = await issueApiKey(db, { userId: id, name: 'bootstrap', permissions: null, expiresAt: null });
    // No one is logged in yet: the new admin is the actor of its own making.
    const actor = { id, name: user.username };
    audit(c, { action: 'user.create', targetType: 'user', targetId: id, actor, details: { username: user.username, roles: user.roles, via: 'bootstrap' } });
    audit(c, { action: 'team.create', targetType: 'team', targetId: teamId, teamId, actor, details: { name: DEFAULT_TEAM_NAME } });
    audit(c, { action: 'api_key.create', targetType: 'api_key', targetId: row.id, actor, details: { name: row.name, prefix: row.prefix } });
    return c.json({ user: userView(user), api_key: key }, 201);
  });
}
