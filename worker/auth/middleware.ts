// The one access check every route uses: `requires('devices:read')` authenticates the caller
// (once per request) and refuses with 401/403 unless every named permission is held. Routes
// declare it through worker/auth/access.ts, which also publishes it in the OpenAPI document.
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { ApiError, forbidden, unauthorized } from '../errors.ts';
import { permits } from './permissions.ts';
import { credentialFrom, resolvePrincipal, type Principal } from './principal.ts';
import { cookieValue } from './cookies.ts';
import { SESSION_COOKIE } from '../../shared/api/auth.ts';

/** Only waitUntil is needed; Hono's context and the Worker's fetch handler both offer it. */
export interface Background {
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * Resolved credentials, per isolate, for a few seconds: resolving costs a D1 round trip, which
 * was half of a device RPC's latency. Any change to users, roles, keys or sessions made through
 * this isolate clears it at once (see forgetPrincipals); other isolates notice within the TTL,
 * and an entry never outlives the credential's own expiry.
 */
const PRINCIPAL_CACHE_MS = 5_000;
const CACHE_MAX = 10_000;
const principalCache = new Map<string, { principal: Principal; until: number }>();
/** API keys whose last-used time was written recently from this isolate (once a minute is enough). */
const touched = new Map<string, number>();

export function forgetPrincipals(): void {
  principalCache.clear();
}

/**
 * The principal behind a raw credential (API key or session JWT), or null. `fresh` reads it from
 * D1 whatever the cache holds, for what outlives the cache (an event stream's teams).
 */
export async function principalFor(env: Env, ctx: Background | undefined, credential: string, now = Date.now(), opts: { fresh?: boolean } = {}): Promise<Principal | null> {
  const hit = opts.fresh ? undefined : principalCache.get(credential);
  if (hit && hit.until > now) return hit.principal;
  const principal = await resolvePrincipal(credential, {
    db: env.DB,
    secret: env.SESSION_SECRET,
    now,
    touchApiKey: (id) => {
      if (!ctx || (touched.get(id) ?? 0) > now - 60_000) return;
      touched.set(id, now);
      if (touched.size > CACHE_MAX) touched.clear();
      ctx.waitUntil(env.DB.prepare('UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?3)').bind(now, id, now - 60_000).run());
    },
  });
  if (principal) {
    if (principalCache.size >= CACHE_MAX) principalCache.clear();
    principalCache.set(credential, { principal, until: Math.min(now + PRINCIPAL_CACHE_MS, principal.expiresAt ?? Infinity) });
  }
  return principal;
}

export async function authenticate(c: Context<AppEnv>): Promise<Principal | null> {
  const cached = c.get('principal');
  if (cached !== undefined) return cached;
  const credential = requestCredential(c);
  const principal = credential ? await principalFor(c.env, c.executionCtx, credential) : null;
  c.set('principal', principal);
  return principal;
}

/**
 * The credential a request carries: Authorization, else `queryKey` (the ?api_key= a WebSocket
 * route takes), else a browser's session cookie, which may change something only from the
 * relay's own pages (assertSameOrigin).
 */
export function requestCredential(c: Context<AppEnv>, queryKey?: string | null): string | null {
  const header = credentialFrom(c.req.header('authorization'));
  if (header) return header;
  if (queryKey) return queryKey;
  const cookie = cookieValue(c.req.header('cookie'), SESSION_COOKIE);
  if (cookie) assertSameOrigin(c);
  return cookie;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CSRF: a browser sends the session cookie with whatever a page asks it to, so a request that
 * changes something (or opens a WebSocket) on the strength of the cookie alone must come from a
 * page of this relay: its Origin must be the relay's own. SameSite=Strict already keeps other
 * sites' requests from carrying the cookie; this holds even where that is not enforced. A
 * credential in Authorization is never sent by a browser on its own, so it needs no such check.
 */
function assertSameOrigin(c: Context<AppEnv>): void {
  const upgrade = c.req.header('upgrade')?.toLowerCase() === 'websocket';
  if (SAFE_METHODS.has(c.req.method) && !upgrade) return;
  const origin = c.req.header('origin');
  if (origin !== new URL(c.req.url).origin) {
    throw new ApiError(403, 'CSRF_REJECTED', 'A request made with the session cookie must come from a page of this relay (Origin)', { origin: origin ?? null });
  }
}

export function requires(...permissions: string[]): MiddlewareHandler<AppEnv> {
  return guard(permissions, false);
}

/**
 * For writes to the caller's own account (profile, password): a narrowed API key was given out
 * to do part of its owner's work, not to take over the account, so only a session or an API key
 * with all of its owner's permissions passes.
 */
export function requiresOwnAccount(...permissions: string[]): MiddlewareHandler<AppEnv> {
  return guard(permissions, true);
}

function guard(permissions: string[], ownAccount: boolean): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const principal = await authenticate(c);
    if (!principal) throw unauthorized();
    if (ownAccount && principal.narrowed) {
      throw new ApiError(403, 'NARROWED_API_KEY', 'An API key narrowed to some permissions cannot change its account; use a session or an unrestricted key');
    }
    const missing = permissions.filter((p) => !permits(principal.permissions, p));
    if (missing.length) throw forbidden('Insufficient permissions', { required: missing });
    c.set('required', permissions);
    await next();
  };
}

/** The authenticated caller inside a handler guarded by `requires`. */
export function principalOf(c: Context<AppEnv>): Principal {
  const p = c.get('principal');
  if (!p) throw unauthorized();
  return p;
}

/** Clears the principal cache after every write to accounts, keys, sessions or roles. */
export const forgetPrincipalsOnWrite: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD') forgetPrincipals();
};
