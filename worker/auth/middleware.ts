// The one access check every route uses: `requires('devices:read')` authenticates the caller
// (once per request) and refuses with 401/403 unless every named permission is held.
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { forbidden, unauthorized } from '../errors.ts';
import { permits } from './permissions.ts';
import { credentialFrom, resolvePrincipal, type Principal } from './principal.ts';

/** Per-isolate memo of API keys whose last-used time was written recently. */
const touched = new Map<string, number>();

export async function authenticate(c: Context<AppEnv>): Promise<Principal | null> {
  const cached = c.get('principal');
  if (cached !== undefined) return cached;
  const credential = credentialFrom(c.req.header('authorization'));
  let principal: Principal | null = null;
  if (credential) {
    principal = await resolvePrincipal(credential, {
      db: c.env.DB,
      secret: c.env.SESSION_SECRET,
      now: Date.now(),
      touchApiKey: (id) => {
        // A burst of requests with one key would otherwise each write; once a minute is enough.
        const now = Date.now();
        if ((touched.get(id) ?? 0) > now - 60_000) return;
        touched.set(id, now);
        if (touched.size > 10_000) touched.clear();
        c.executionCtx.waitUntil(
          c.env.DB.prepare('UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?3)').bind(now, id, now - 60_000).run(),
        );
      },
    });
  }
  c.set('principal', principal);
  return principal;
}

export function requires(...permissions: string[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const principal = await authenticate(c);
    if (!principal) throw unauthorized();
    const missing = permissions.filter((p) => !permits(principal.permissions, p));
    if (missing.length) throw forbidden('Insufficient permissions', { required: missing });
    await next();
  };
}

/** The authenticated caller inside a handler guarded by `requires`. */
export function principalOf(c: Context<AppEnv>): Principal {
  const p = c.get('principal');
  if (!p) throw unauthorized();
  return p;
}
