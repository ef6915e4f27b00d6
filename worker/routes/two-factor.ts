// /api/v1/auth/2fa/*: a user turns two-factor login (TOTP, worker/auth/totp.ts) on and off and
// replaces their recovery codes; and what the login's second step (worker/routes/auth.ts) shares
// with them: the challenge, and spending a code. The secret is sealed at rest and shown only at
// enrolment; recovery codes are kept as SHA-256 and shown only when made. Every code works once:
// a TOTP code only for a time step later than the last one accepted, a recovery code until it is
// used, each claimed with one conditional UPDATE so two requests racing with one code cannot both
// win. A wrong code counts as a failed login in the login throttle, here as at login, so a stolen
// session cannot guess its way to turning 2FA off.
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { eq } from 'drizzle-orm';
import type { AppEnv } from '../app-env.ts';
import type { App } from '../openapi.ts';
import { authErrors, bearerSecurity, errorResponse } from '../openapi.ts';
import { ApiError } from '../errors.ts';
import { audit } from '../audit.ts';
import { getDb, schema } from '../../shared/db/index.ts';
import type { User } from '../../shared/db/schema.ts';
import { principalOf } from '../auth/middleware.ts';
import { selfService } from '../auth/access.ts';
import { randomBytes, randomId, randomToken, sha256Hex } from '../auth/crypto.ts';
import { assertLoginAllowed, clearLoginFailures, loginKeys, recordLoginFailure } from '../auth/rate-limit.ts';
import { open, seal, totpPlace, type SecretKeys } from '../auth/secret-box.ts';
import { matchTotp, newTotpSecret, otpauthUri } from '../auth/totp.ts';
import {
  RECOVERY_CODE_COUNT,
  RecoveryCodesSchema,
  TwoFactorCodeRequestSchema,
  TwoFactorConfirmRequestSchema,
  TwoFactorEnrolmentSchema,
} from '../../shared/api/auth.ts';

export const LOGIN_CHALLENGE_PREFIX = 'prc_';
export const LOGIN_CHALLENGE_TTL_MS = 5 * 60_000;
export const LOGIN_CHALLENGE_MAX_ATTEMPTS = 5;

/** Crockford's base32: no i, l, o or u, so a code read off paper is not misread. */
const RECOVERY_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const RECOVERY_GROUPS = 3;
const RECOVERY_GROUP_LENGTH = 4;

/** A readable code like "7k2m-q9xd-4hfa": 60 random bits. */
function newRecoveryCode(): string {
  const chars = [...randomBytes(RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH)].map((b) => RECOVERY_ALPHABET[b & 31]);
  const groups: string[] = [];
  for (let i = 0; i < chars.length; i += RECOVERY_GROUP_LENGTH) groups.push(chars.slice(i, i + RECOVERY_GROUP_LENGTH).join(''));
  return groups.join('-');
}

/** A typed recovery code in the form it was made in (case, spaces and dashes do not matter; o, i and l read as 0, 1 and 1), or null. */
function normalizeRecoveryCode(input: string): string | null {
  const chars = input.toLowerCase().replace(/[\s-]/g, '').replace(/o/g, '0').replace(/[il]/g, '1');
  const length = RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH;
  if (chars.length !== length || [...chars].some((ch) => !RECOVERY_ALPHABET.includes(ch))) return null;
  return chars.match(new RegExp(`.{${RECOVERY_GROUP_LENGTH}}`, 'g'))!.join('-');
}

/** Makes ten new recovery codes for a user, voiding the old ones, in one batch; returns them (the only time they are seen). */
async function replaceRecoveryCodes(d1: D1Database, userId: string): Promise<string[]> {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
  const insert = d1.prepare('INSERT OR IGNORE INTO recovery_codes (user_id, code_hash, used_at) VALUES (?1, ?2, NULL)');
  await d1.batch([
    d1.prepare('DELETE FROM recovery_codes WHERE user_id = ?1').bind(userId),
    ...(await Promise.all(codes.map(async (code) => insert.bind(userId, await sha256Hex(code))))),
  ]);
  return codes;
}

export type SecondFactor = 'totp' | 'recovery_code';

/** The user's TOTP code, if it is one for a step not yet used; the step is claimed in the same statement that checks it. */
async function spendTotp(env: SecretKeys & { DB: D1Database }, user: User, code: string, now: number): Promise<boolean> {
  if (!user.totpSecret || !user.totpEnabledAt) return false;
  const step = await matchTotp(await open(env, user.totpSecret, totpPlace(user.id)), code, now, user.totpLastStep);
  if (step === null) return false;
  const { meta } = await env.DB.prepare(
    'UPDATE users SET totp_last_step = ?1 WHERE id = ?2 AND totp_secret = ?3 AND (totp_last_step IS NULL OR totp_last_step < ?1)',
  )
    .bind(step, user.id, user.totpSecret)
    .run();
  return meta.changes === 1;
}

async function spendRecoveryCode(d1: D1Database, userId: string, input: string, now: number): Promise<boolean> {
  const code = normalizeRecoveryCode(input);
  if (!code) return false;
  const { meta } = await d1
    .prepare('UPDATE recovery_codes SET used_at = ?1 WHERE user_id = ?2 AND code_hash = ?3 AND used_at IS NULL')
    .bind(now, userId, await sha256Hex(code))
    .run();
  return meta.changes === 1;
}

/**
 * Checks a second factor of a user with two-factor login on and spends it. `code` is a TOTP code,
 * `recoveryCode` a recovery code; `either` is whichever the user typed (6 digits: TOTP). Returns
 * the factor that worked, or null.
 */
export async function spendSecondFactor(
  env: SecretKeys & { DB: D1Database },
  user: User,
  given: { code?: string; recoveryCode?: string; either?: string },
  now = Date.now(),
): Promise<SecondFactor | null> {
  const totp = given.code ?? (given.either !== undefined && /^\d{6}$/.test(given.either) ? given.either : undefined);
  if (totp !== undefined) return (await spendTotp(env, user, totp, now)) ? 'totp' : null;
  const recovery = given.recoveryCode ?? given.either;
  if (recovery !== undefined) return (await spendRecoveryCode(env.DB, user.id, recovery, now)) ? 'recovery_code' : null;
  return null;
}

/** The password was right: a challenge for the second step (only its SHA-256 is stored). */
export async function issueLoginChallenge(d1: D1Database, userId: string, now = Date.now()): Promise<{ challenge: string; expiresAt: number }> {
  const challenge = randomToken(LOGIN_CHALLENGE_PREFIX);
  const expiresAt = now + LOGIN_CHALLENGE_TTL_MS;
  await d1.batch([
    d1.prepare('INSERT INTO login_challenges (id, user_id, token_hash, attempts, created_at, expires_at) VALUES (?1, ?2, ?3, 0, ?4, ?5)').bind(
      randomId(16),
      userId,
      await sha256Hex(challenge),
      now,
      expiresAt,
    ),
    // Expired challenges say nothing any more; dropping them here needs no cron. (A used one may be
    // a claim still in flight, so it waits for its expiry like the rest.)
    d1.prepare('DELETE FROM login_challenges WHERE expires_at <= ?1').bind(now),
  ]);
  return { challenge, expiresAt };
}

export const invalidTwoFactorCode = (status: 401 | 403, details: Record<string, unknown> = {}) =>
  new ApiError(status, 'INVALID_TWO_FACTOR_CODE', 'The code is wrong, or was already used', details);

/** Forgets a user's TOTP secret, recovery codes and open login challenges, in one transaction. */
export async function turnOffTwoFactor(d1: D1Database, userId: string): Promise<void> {
  await d1.batch([
    d1.prepare('UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL, updated_at = ?1 WHERE id = ?2').bind(Date.now(), userId),
    d1.prepare('DELETE FROM recovery_codes WHERE user_id = ?1').bind(userId),
    d1.prepare('DELETE FROM login_challenges WHERE user_id = ?1').bind(userId),
  ]);
}

const alreadyEnabled = () => new ApiError(409, 'TWO_FACTOR_ALREADY_ENABLED', 'Two-factor login is already on; disable it first to enrol again');
const notEnabled = () => new ApiError(409, 'TWO_FACTOR_NOT_ENABLED', 'Two-factor login is not on');

async function currentUser(c: Context<AppEnv>): Promise<User> {
  const user = await getDb(c.env.DB).query.users.findFirst({ where: eq(schema.users.id, principalOf(c).userId) });
  if (!user) throw new ApiError(401, 'UNAUTHORIZED', 'Missing or invalid credentials');
  return user;
}

/**
 * Runs `check` under the login throttle of the caller's name and address: refused with 429 while
 * it is exhausted, a failure counted (and audited as 2fa.failed) when `check` finds nothing.
 */
async function throttledCheck<T>(c: Context<AppEnv>, during: string, check: () => Promise<T | null>): Promise<T> {
  const keys = loginKeys(c, principalOf(c).username);
  await assertLoginAllowed(c, keys);
  const result = await check();
  if (result !== null) {
    await clearLoginFailures(c.env.DB, keys);
    return result;
  }
  await recordLoginFailure(c.env.DB, keys);
  audit(c, { action: '2fa.failed', targetType: 'user', targetId: principalOf(c).userId, details: { during } });
  // 403, not 401: the caller is authenticated, and clients treat 401 as "log in again".
  throw invalidTwoFactorCode(403);
}

const json = <T>(schema: T) => ({ 'application/json': { schema } });
const CodeRequest = TwoFactorCodeRequestSchema.openapi('TwoFactorCodeRequest');
const RecoveryCodesOut = RecoveryCodesSchema.openapi('RecoveryCodes');
const routeBase = { tags: ['auth'], security: bearerSecurity, ...selfService() };
const codeErrors = {
  403: errorResponse('The code is wrong or used (INVALID_TWO_FACTOR_CODE), or the credential is a narrowed API key (NARROWED_API_KEY)'),
  429: errorResponse('Too many failed attempts (RATE_LIMITED); see Retry-After'),
};

const enrol = createRoute({
  ...routeBase,
  method: 'post',
  path: '/api/v1/auth/2fa/enrol',
  summary: 'Start two-factor login: a new TOTP secret and its otpauth:// URI (replaces an unconfirmed one; shown only here)',
  responses: {
    200: { description: 'The secret, to enter or scan into an authenticator app', content: json(TwoFactorEnrolmentSchema.openapi('TwoFactorEnrolment')) },
    ...authErrors,
    409: errorResponse('Two-factor login is already on (TWO_FACTOR_ALREADY_ENABLED)'),
    503: errorResponse('VARIABLES_KEY is not set, so the secret cannot be sealed (SECRETS_UNAVAILABLE)'),
  },
});

const confirm = createRoute({
  ...routeBase,
  method: 'post',
  path: '/api/v1/auth/2fa/confirm',
  summary: 'Turn two-factor login on with a code of the enrolled secret; returns ten recovery codes (shown only here)',
  request: { body: { required: true, content: json(TwoFactorConfirmRequestSchema.openapi('TwoFactorConfirmRequest')) } },
  responses: {
    200: { description: 'On; the recovery codes', content: json(RecoveryCodesOut) },
    ...authErrors,
    ...codeErrors,
    409: errorResponse('Already on (TWO_FACTOR_ALREADY_ENABLED), or nothing enrolled (TWO_FACTOR_NOT_ENROLLED)'),
  },
});

const disable = createRoute({
  ...routeBase,
  method: 'post',
  path: '/api/v1/auth/2fa/disable',
  summary: 'Turn two-factor login off with a current TOTP code or a recovery code; forgets the secret and the recovery codes',
  request: { body: { required: true, content: json(CodeRequest) } },
  responses: { 204: { description: 'Off' }, ...authErrors, ...codeErrors, 409: errorResponse('Two-factor login is not on (TWO_FACTOR_NOT_ENABLED)') },
});

const regenerate = createRoute({
  ...routeBase,
  method: 'post',
  path: '/api/v1/auth/2fa/recovery-codes',
  summary: 'Replace the recovery codes (a current TOTP code or a recovery code); the old ones stop working',
  request: { body: { required: true, content: json(CodeRequest) } },
  responses: {
    200: { description: 'The new recovery codes', content: json(RecoveryCodesOut) },
    ...authErrors,
    ...codeErrors,
    409: errorResponse('Two-factor login is not on (TWO_FACTOR_NOT_ENABLED)'),
  },
});

export function registerTwoFactorRoutes(app: App) {
  app.openapi(enrol, async (c) => {
    const user = await currentUser(c);
    if (user.totpEnabledAt) throw alreadyEnabled();
    const secret = newTotpSecret();
    const sealed = await seal(c.env, secret, totpPlace(user.id));
    // Conditional, so an enrolment racing a confirmation cannot swap the secret of an enabled account.
    const { meta } = await c.env.DB.prepare('UPDATE users SET totp_secret = ?1, totp_last_step = NULL WHERE id = ?2 AND totp_enabled_at IS NULL')
      .bind(sealed, user.id)
      .run();
    if (!meta.changes) throw alreadyEnabled();
    audit(c, { action: '2fa.enrol', targetType: 'user', targetId: user.id });
    return c.json({ secret, otpauth_uri: otpauthUri(user.username, secret) }, 200);
  });

  app.openapi(confirm, async (c) => {
    const { code } = c.req.valid('json');
    const user = await currentUser(c);
    if (user.totpEnabledAt) throw alreadyEnabled();
    if (!user.totpSecret) throw new ApiError(409, 'TWO_FACTOR_NOT_ENROLLED', 'Nothing to confirm; POST /api/v1/auth/2fa/enrol first');
    const sealed = user.totpSecret;
    const now = Date.now();
    await throttledCheck(c, 'confirm', async () => {
      const step = await matchTotp(await open(c.env, sealed, totpPlace(user.id)), code, now, user.totpLastStep);
      if (step === null) return null;
      // The secret checked is the one switched on: a re-enrolment in between makes this match nothing.
      const { meta } = await c.env.DB.prepare(
        `UPDATE users SET totp_enabled_at = ?1, totp_last_step = ?2, updated_at = ?1
         WHERE id = ?3 AND totp_secret = ?4 AND totp_enabled_at IS NULL AND (totp_last_step IS NULL OR totp_last_step < ?2)`,
      )
        .bind(now, step, user.id, sealed)
        .run();
      return meta.changes === 1 ? step : null;
    });
    const recovery_codes = await replaceRecoveryCodes(c.env.DB, user.id);
    audit(c, { action: '2fa.enable', targetType: 'user', targetId: user.id });
    return c.json({ recovery_codes }, 200);
  });

  app.openapi(disable, async (c) => {
    const { code } = c.req.valid('json');
    const user = await currentUser(c);
    if (!user.totpEnabledAt) throw notEnabled();
    const factor = await throttledCheck(c, 'disable', () => spendSecondFactor(c.env, user, { either: code }));
    if (factor === 'recovery_code') audit(c, { action: '2fa.recovery_used', targetType: 'user', targetId: user.id });
    await turnOffTwoFactor(c.env.DB, user.id);
    audit(c, { action: '2fa.disable', targetType: 'user', targetId: user.id });
    return c.body(null, 204);
  });

  app.openapi(regenerate, async (c) => {
    const { code } = c.req.valid('json');
    const user = await currentUser(c);
    if (!user.totpEnabledAt) throw notEnabled();
    const factor = await throttledCheck(c, 'recovery_regenerate', () => spendSecondFactor(c.env, user, { either: code }));
    if (factor === 'recovery_code') audit(c, { action: '2fa.recovery_used', targetType: 'user', targetId: user.id });
    const recovery_codes = await replaceRecoveryCodes(c.env.DB, user.id);
    audit(c, { action: '2fa.recovery_regenerate', targetType: 'user', targetId: user.id });
    return c.json({ recovery_codes }, 200);
  });
}
