// Throttles password guessing. Failures are counted in D1 (login_attempts) rather than in
// isolate memory, because every isolate of every colo must see the same count. Two fixed
// windows: one per username|ip, so one user's typos do not lock out an office behind one NAT,
// and one per IP, so an attacker cannot spray many usernames from one address.
import { and, gt, inArray } from 'drizzle-orm';
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { tooManyRequests } from '../errors.ts';
import { clientIpOf } from '../client-ip.ts';
import { getDb } from '../../shared/db/index.ts';
import { loginAttempts } from '../../shared/db/schema.ts';

export const LOGIN_WINDOW_MS = 15 * 60_000;
export const MAX_FAILURES_PER_USER_IP = 5;
export const MAX_FAILURES_PER_IP = 20;

export interface LoginKeys {
  pair: string;
  ip: string;
}

export function loginKeys(c: Context<AppEnv>, username: string): LoginKeys {
  const ip = clientIpOf(c.req.raw, c.env);
  return { pair: `${username.toLowerCase()}|${ip}`, ip: `ip:${ip}` };
}

/** Throws 429 RATE_LIMITED (with Retry-After) while either window is exhausted. */
export async function assertLoginAllowed(c: Context<AppEnv>, keys: LoginKeys, now = Date.now()): Promise<void> {
  const rows = await getDb(c.env.DB)
    .select()
    .from(loginAttempts)
    .where(and(inArray(loginAttempts.key, [keys.pair, keys.ip]), gt(loginAttempts.windowStart, now - LOGIN_WINDOW_MS)));
  let until = 0;
  for (const row of rows) {
    const limit = row.key === keys.ip ? MAX_FAILURES_PER_IP : MAX_FAILURES_PER_USER_IP;
    if (row.failures >= limit) until = Math.max(until, row.windowStart + LOGIN_WINDOW_MS);
  }
  if (!until) return;
  const retryAfter = Math.max(1, Math.ceil((until - now) / 1000));
  // onError renders with this same context, so the header survives the throw.
  c.header('Retry-After', String(retryAfter));
  throw tooManyRequests('Too many failed login attempts; try again later', { retry_after: retryAfter });
}

const COUNT_FAILURE = `INSERT INTO login_attempts (key, failures, window_start) VALUES (?1, 1, ?2)
  ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN window_start <= ?2 - ?3 THEN 1 ELSE failures + 1 END,
    window_start = CASE WHEN window_start <= ?2 - ?3 THEN ?2 ELSE window_start END`;

export async function recordLoginFailure(db: D1Database, keys: LoginKeys, now = Date.now()): Promise<void> {
  await db.batch([
    db.prepare(COUNT_FAILURE).bind(keys.pair, now, LOGIN_WINDOW_MS),
    db.prepare(COUNT_FAILURE).bind(keys.ip, now, LOGIN_WINDOW_MS),
    // Expired windows carry no information; dropping them here keeps the table small without a cron.
    db.prepare('DELETE FROM login_attempts WHERE window_start <= ?1').bind(now - LOGIN_WINDOW_MS),
  ]);
}

/** After a success only the username|ip counter resets: the per-IP count still guards other users. */
export async function clearLoginFailures(db: D1Database, keys: LoginKeys): Promise<void> {
  await db.prepare('DELETE FROM login_attempts WHERE key = ?1').bind(keys.pair).run();
}
