// Login sessions: a row in `sessions` plus the JWT that names it. The JWT alone would outlive a
// logout or a password change; the row is what resolvePrincipal checks, so revoking it ends the
// session at once everywhere.
import { and, eq, isNull, ne } from 'drizzle-orm';
import { ApiError } from '../errors.ts';
import { getDb, schema } from '../../shared/db/index.ts';
import { randomId } from './crypto.ts';
import { signSession } from './principal.ts';
import { SESSION_COOKIE } from '../../shared/api/auth.ts';

const DEFAULT_TTL_SECONDS = 86_400;

export function sessionTtlMs(env: Env): number {
  const seconds = Number(env.SESSION_TTL_SECONDS);
  return (Number.isFinite(seconds) && seconds > 0 ? seconds : DEFAULT_TTL_SECONDS) * 1000;
}

export async function createSession(env: Env, userId: string, now = Date.now()): Promise<{ token: string; expiresAt: number }> {
  if (!env.SESSION_SECRET || env.SESSION_SECRET.length < 32) {
    // A deployment fault, not the caller's: say so plainly instead of an anonymous 500.
    throw new ApiError(500, 'SERVER_MISCONFIGURED', 'SESSION_SECRET is not set (needs at least 32 characters)');
  }
  const id = randomId(16);
  const expiresAt = now + sessionTtlMs(env);
  await getDb(env.DB).insert(schema.sessions).values({ id, userId, createdAt: now, expiresAt });
  return { token: await signSession(env.SESSION_SECRET, id, userId, expiresAt), expiresAt };
}

export async function revokeSession(d1: D1Database, sessionId: string, now = Date.now()): Promise<void> {
  const s = schema.sessions;
  await getDb(d1).update(s).set({ revokedAt: now }).where(and(eq(s.id, sessionId), isNull(s.revokedAt)));
}

/** Ends every live session of a user, except `keep` (the caller's own, after a password change). */
export async function revokeUserSessions(d1: D1Database, userId: string, keep?: string, now = Date.now()): Promise<void> {
  const s = schema.sessions;
  const live = and(eq(s.userId, userId), isNull(s.revokedAt));
  await getDb(d1).update(s).set({ revokedAt: now }).where(keep ? and(live, ne(s.id, keep)) : live);
}

/**
 * The Set-Cookie of a browser's session: `__Host-` (so only this host, path /, Secure), HttpOnly
 * (no script reads it), SameSite=Strict (no other site's page sends it). An empty token with
 * max-age 0 clears it.
 */
export function sessionCookie(token: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${token}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; Secure; SameSite=Strict`;
}
