// Who is calling: resolves a request's credentials (session JWT, API key as Bearer, or API key
// as the HTTP Basic user name as PiTunnel documents `curl -u KEY:`) to a Principal with its
// effective permissions. One D1 query per request; nothing here trusts the client.
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { sha256Hex } from './crypto.ts';
import { narrow } from './permissions.ts';

export interface Principal {
  kind: 'session' | 'api_key';
  userId: string;
  username: string;
  roles: string[];
  permissions: string[];
  sessionId?: string;
  apiKeyId?: string;
  /** An API key with its own permission list: it may act, but not change its owner's account. */
  narrowed?: boolean;
  /** When the credential itself expires (ms), if it does. */
  expiresAt: number | null;
}

export const API_KEY_PREFIX = 'prk_';
const SESSION_ISSUER = 'pirelay';
/** The audience of every session JWT the relay signs (how a relay credential is told from an app's own JWT). */
export const SESSION_AUDIENCE = 'pirelay-api';

function secretKey(secret: string | undefined): Uint8Array {
  if (!secret || secret.length < 32) throw new Error('SESSION_SECRET is not set (needs at least 32 characters)');
  return new TextEncoder().encode(secret);
}

export async function signSession(secret: string | undefined, sessionId: string, userId: string, expiresAt: number): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setJti(sessionId)
    .setIssuer(SESSION_ISSUER)
    .setAudience(SESSION_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(Math.floor(expiresAt / 1000))
    .sign(secretKey(secret));
}

/** Returns {sessionId, userId} for a valid, unexpired session JWT, else null. */
export async function verifySession(secret: string | undefined, token: string): Promise<{ sessionId: string; userId: string } | null> {
  try {
    const { payload } = await jwtVerify(token, secretKey(secret), { issuer: SESSION_ISSUER, audience: SESSION_AUDIENCE, algorithms: ['HS256'] });
    if (typeof payload.jti !== 'string' || typeof payload.sub !== 'string') return null;
    return { sessionId: payload.jti, userId: payload.sub };
  } catch (e) {
    if (e instanceof joseErrors.JOSEError) return null;
    throw e;
  }
}

/** Extracts the raw credential from Authorization (Bearer or Basic with the key as user name). */
export function credentialFrom(header: string | undefined | null): string | null {
  if (!header) return null;
  const space = header.indexOf(' ');
  if (space < 0) return null;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (!value) return null;
  if (scheme === 'bearer') return value;
  if (scheme === 'basic') {
    let decoded: string;
    try {
      decoded = atob(value);
    } catch {
      return null;
    }
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? decoded : decoded.slice(0, colon);
    return user || null;
  }
  return null;
}

interface PrincipalRow {
  user_id: string;
  username: string;
  roles: string;
  disabled: number;
  role_permissions: string;
  key_id?: string;
  key_permissions?: string | null;
  key_last_used?: number | null;
  expires_at: number | null;
}

const ROLE_PERMISSIONS_SQL = `(SELECT json_group_array(r.permissions) FROM roles r WHERE r.id IN (SELECT value FROM json_each(u.roles)))`;

function permissionsOf(row: PrincipalRow): string[] {
  const lists = JSON.parse(row.role_permissions) as string[];
  const set = new Set<string>();
  for (const l of lists) for (const p of JSON.parse(l) as string[]) set.add(p);
  return [...set];
}

export interface ResolveOptions {
  db: D1Database;
  secret: string | undefined;
  now: number;
  /** Called with the key id when an API key's last-used time should be refreshed. */
  touchApiKey?: (keyId: string) => void;
}

/** Resolves a credential to a principal, or null when it is unknown, expired, revoked or disabled. */
export async function resolvePrincipal(credential: string, opts: ResolveOptions): Promise<Principal | null> {
  if (credential.startsWith(API_KEY_PREFIX)) {
    const hash = await sha256Hex(credential);
    const row = await opts.db
      .prepare(
        `SELECT u.id AS user_id, u.username, u.roles, u.disabled, ${ROLE_PERMISSIONS_SQL} AS role_permissions,
                k.id AS key_id, k.permissions AS key_permissions, k.last_used_at AS key_last_used, k.expires_at
           FROM api_keys k JOIN users u ON u.id = k.user_id
          WHERE k.key_hash = ?1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?2)`,
      )
      .bind(hash, opts.now)
      .first<PrincipalRow>();
    if (!row || row.disabled) return null;
    const owner = permissionsOf(row);
    const keyPerms = row.key_permissions ? (JSON.parse(row.key_permissions) as string[]) : null;
    if (opts.touchApiKey && (!row.key_last_used || row.key_last_used < opts.now - 60_000)) opts.touchApiKey(row.key_id!);
    return {
      kind: 'api_key',
      userId: row.user_id,
      username: row.username,
      roles: JSON.parse(row.roles) as string[],
      permissions: narrow(owner, keyPerms),
      apiKeyId: row.key_id!,
      narrowed: keyPerms !== null,
      expiresAt: row.expires_at,
    };
  }
  if (credential.split('.').length !== 3) return null;
  const session = await verifySession(opts.secret, credential);
  if (!session) return null;
  const row = await opts.db
    .prepare(
      `SELECT u.id AS user_id, u.username, u.roles, u.disabled, ${ROLE_PERMISSIONS_SQL} AS role_permissions, s.expires_at
         FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL AND s.expires_at > ?3`,
    )
    .bind(session.sessionId, session.userId, opts.now)
    .first<PrincipalRow>();
  if (!row || row.disabled) return null;
  return {
    kind: 'session',
    userId: row.user_id,
    username: row.username,
    roles: JSON.parse(row.roles) as string[],
    permissions: permissionsOf(row),
    sessionId: session.sessionId,
    expiresAt: row.expires_at,
  };
}
