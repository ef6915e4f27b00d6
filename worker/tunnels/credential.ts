// Relay credentials that do not arrive in the Authorization header the `requires` middleware
// reads: a tunnel visitor's `__Host-pirelay_session` cookie, and the `api_key` query parameter or form
// field of clients that cannot set headers (browsers opening a WebSocket, tunnel-control scripts
// pasted as a URL). Resolved through the middleware's cached principalFor, so a busy
// pirelay-protected tunnel is not one D1 query per request. An API key in a URL ends up in logs;
// the Authorization header is the better place.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { API_KEY_PREFIX, credentialFrom, SESSION_AUDIENCE } from '../auth/principal.ts';
import { principalFor } from '../auth/middleware.ts';
import { COOKIE_SEPARATOR, cookieValue } from '../auth/cookies.ts';
import { LEGACY_SESSION_COOKIE, SESSION_COOKIE } from '../../shared/api/auth.ts';

/** The Cookie header without the relay's session cookie (either name); null when nothing else is left. */
export function withoutSessionCookie(cookie: string): string | null {
  // Most visitors carry no relay cookie: their header passes as it is (a value with a comma intact).
  if (!cookie.includes(LEGACY_SESSION_COOKIE)) return cookie;
  const kept: string[] = [];
  for (const part of cookie.split(COOKIE_SEPARATOR)) {
    const c = part.trim();
    if (!c) continue;
    const name = c.split('=', 1)[0]!.trim();
    if (name !== SESSION_COOKIE && name !== LEGACY_SESSION_COOKIE) kept.push(c);
  }
  return kept.length ? kept.join('; ') : null;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+$/;

/**
 * Whether an Authorization header carries a relay credential (an API key, or a session JWT whose
 * audience is the relay's), as Bearer or as the Basic user name. Decided from its shape alone, no
 * signature check: this only decides what never reaches a target, and a tunnel app's own JWTs
 * (another audience) pass.
 */
export function isRelayAuthorization(header: string): boolean {
  const cred = credentialFrom(header);
  if (!cred) return false;
  if (cred.startsWith(API_KEY_PREFIX)) return true;
  const jwt = JWT_SHAPE.exec(cred);
  if (!jwt) return false;
  try {
    const payload = JSON.parse(atob(jwt[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { aud?: unknown };
    return payload.aud === SESSION_AUDIENCE || (Array.isArray(payload.aud) && payload.aud.includes(SESSION_AUDIENCE));
  } catch {
    return false;
  }
}

/** The relay credential a request carries: Authorization first, then the session cookie. */
export function visitorCredential(headers: Headers): string | null {
  return credentialFrom(headers.get('authorization')) ?? cookieValue(headers.get('cookie'), SESSION_COOKIE);
}

/**
 * For routes clients reach with a WebSocket: when there is no Authorization header, an `api_key`
 * query parameter stands in for it. Runs before `requires(...)`, which then finds the principal.
 */
export const apiKeyFromQuery: MiddlewareHandler<AppEnv> = async (c, next) => {
  const key = c.req.query('api_key');
  if (key && !credentialFrom(c.req.header('authorization'))) {
    c.set('principal', await principalFor(c.env, c.executionCtx, key));
  }
  await next();
};
