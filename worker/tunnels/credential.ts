// Relay credentials that do not arrive in the Authorization header the `requires` middleware
// reads: a tunnel visitor's `pirelay_session` cookie, and the `api_key` query parameter or form
// field of clients that cannot set headers (browsers opening a WebSocket, tunnel-control scripts
// pasted as a URL). Resolved through the middleware's cached principalFor, so a busy
// pirelay-protected tunnel is not one D1 query per request. An API key in a URL ends up in logs;
// the Authorization header is the better place.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { credentialFrom } from '../auth/principal.ts';
import { principalFor } from '../auth/middleware.ts';

export const SESSION_COOKIE = 'pirelay_session';

/** The value of one cookie in a Cookie header, or null. */
export function cookieValue(header: string | null | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || null;
  }
  return null;
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
