// Whether a visitor may use a tunnel, decided from the tunnel's row and the request's headers
// alone (the principal lookup is passed in), so every mode can be tested without a network:
// public lets everyone in; basic checks HTTP Basic against the stored PBKDF2 hash; bearer checks
// the SHA-256 of a token; pirelay wants a relay session or API key holding `tunnels:use` whose
// user may act in the device's team (a caller of another team is refused exactly as one without
// a credential, so the answer does not tell whose tunnel it is).
// The decision also says whether the Authorization header was the tunnel's credential, because
// such a header must never reach the target.
import { parseBasic } from '../auth/basic.ts';
import { sha256Hex, timingSafeEqual } from '../auth/crypto.ts';
import { verifyPassword } from '../auth/password.ts';
import { permits } from '../auth/permissions.ts';
import { credentialFrom, type Principal } from '../auth/principal.ts';
import { mayActIn } from '../auth/scope.ts';
import type { Tunnel } from '../../shared/db/schema.ts';
import { cookieValue } from '../auth/cookies.ts';
import { SESSION_COOKIE } from '../../shared/api/auth.ts';

export const TUNNEL_USE_PERMISSION = 'tunnels:use';

/** The tunnel's row as the ingress caches it, with its device's team (no query per visit). */
export type TunnelAccessRow = Pick<Tunnel, 'id' | 'name' | 'access' | 'basicUser' | 'basicPasswordHash' | 'bearerTokenHash' | 'updatedAt'> & { deviceTeamId: string };

export type AccessDecision =
  | { allow: true; stripAuthorization: boolean; principal?: Principal }
  | { allow: false; status: 401 | 403; message: string; challenge?: string };

export interface AccessDeps {
  /** Resolves a relay credential (API key or session JWT) to its principal, or null. */
  principal: (credential: string) => Promise<Principal | null>;
  /** Remembers successful Basic checks; PBKDF2 is slow by design. */
  basicMemo?: BasicMemo;
  now?: number;
}

/**
 * Basic credentials that verified recently, keyed by the SHA-256 of the header plus the tunnel's id
 * and updated_at: changing the password (or anything else) bumps updated_at, so an old password
 * stops working at once. Only successes are kept, so a wrong guess always pays the full PBKDF2.
 */
export class BasicMemo {
  private entries = new Map<string, number>();
  constructor(
    readonly ttlMs = 60_000,
    private readonly max = 10_000,
  ) {}

  has(key: string, now: number): boolean {
    const until = this.entries.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.entries.delete(key);
    return false;
  }

  add(key: string, now: number): void {
    if (this.entries.size >= this.max) this.entries.clear();
    this.entries.set(key, now + this.ttlMs);
  }
}

export const basicMemo = new BasicMemo();

export function bearerToken(header: string | null): string | null {
  const m = header ? /^bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1]! : null;
}

const quoted = (s: string) => `"${s.replace(/["\\]/g, '')}"`;

export async function checkTunnelAccess(tunnel: TunnelAccessRow, headers: Headers, deps: AccessDeps): Promise<AccessDecision> {
  const authorization = headers.get('authorization');
  const now = deps.now ?? Date.now();
  switch (tunnel.access) {
    case 'public':
      return { allow: true, stripAuthorization: false };

    case 'basic': {
      const challenge = `Basic realm=${quoted(tunnel.name)}, charset="UTF-8"`;
      const creds = parseBasic(authorization);
      if (!creds) return { allow: false, status: 401, message: 'This tunnel needs a user name and password', challenge };
      const memoKey = `${await sha256Hex(authorization!)}|${tunnel.id}|${tunnel.updatedAt}`;
      if (deps.basicMemo?.has(memoKey, now)) return { allow: true, stripAuthorization: true };
      // Both checks always run, so the time taken does not tell a wrong user from a wrong password.
      const userOk = timingSafeEqual(creds.user, tunnel.basicUser ?? '') && tunnel.basicUser != null;
      const passwordOk = await verifyPassword(creds.password, tunnel.basicPasswordHash);
      if (!userOk || !passwordOk) return { allow: false, status: 401, message: 'Wrong user name or password', challenge };
      deps.basicMemo?.add(memoKey, now);
      return { allow: true, stripAuthorization: true };
    }

    case 'bearer': {
      const token = bearerToken(authorization);
      const realm = `Bearer realm=${quoted(tunnel.name)}`;
      if (!token) return { allow: false, status: 401, message: 'This tunnel needs a bearer token', challenge: realm };
      const ok = tunnel.bearerTokenHash != null && timingSafeEqual(await sha256Hex(token), tunnel.bearerTokenHash);
      if (!ok) return { allow: false, status: 401, message: 'Wrong bearer token', challenge: `${realm}, error="invalid_token"` };
      return { allow: true, stripAuthorization: true };
    }

    case 'pirelay': {
      const challenge = 'Bearer realm="pirelay"';
      const fromHeader = credentialFrom(authorization);
      const fromCookie = cookieValue(headers.get('cookie'), SESSION_COOKIE);
      let principal: Principal | null = null;
      let viaHeader = false;
      if (fromHeader) {
        principal = await deps.principal(fromHeader);
        viaHeader = principal !== null;
      }
      if (!principal && fromCookie) principal = await deps.principal(fromCookie);
      const none = { allow: false, status: 401, message: 'This tunnel needs a pirelay API key or session', challenge } as const;
      if (!principal) return fromHeader || fromCookie ? { ...none, message: 'Invalid or expired pirelay credentials' } : none;
      // Someone of another team is refused as if they had brought nothing.
      if (!mayActIn(principal, tunnel.deviceTeamId)) return none;
      if (!permits(principal.permissions, TUNNEL_USE_PERMISSION)) {
        return { allow: false, status: 403, message: `Your pirelay account lacks the ${TUNNEL_USE_PERMISSION} permission` };
      }
      return { allow: true, stripAuthorization: viaHeader, principal };
    }
  }
}
