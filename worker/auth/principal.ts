// Who is calling: resolves a request's credentials (session JWT, API key as Bearer, or API key
// as the HTTP Basic user name as PiTunnel documents `curl -u KEY:`) to a Principal with its
// effective permissions. One D1 query per request; nothing here trusts the client.
import { and, eq, gt, isNull, or, sql, type SQL } from 'drizzle-orm';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { getDb } from '../../shared/db/index.ts';
import { apiKeys, sessions, users } from '../../shared/db/schema.ts';
import type { TeamRole } from '../../shared/api/teams.ts';
import { basicCredentials } from './basic.ts';
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
  /** The teams the user is a member of, by id (worker/auth/scope.ts decides what that allows). */
  teams: Readonly<Record<string, TeamMembership>>;
  /** Whether the user has confirmed two-factor login (teams may require it). */
  twoFactor: boolean;
}

export interface TeamMembership {
  role: TeamRole;
  /** The team requires two-factor login of its members. */
  require2fa: boolean;
}

/** The id of the credential itself: the API key's or the session's (what audit entries and streams name). */
export function credentialIdOf(p: Principal): string {
  const id = p.kind === 'api_key' ? p.apiKeyId : p.sessionId;
  if (!id) throw new Error(`a ${p.kind} principal without its id`);
  return id;
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
  if (scheme === 'basic') return basicCredentials(header)?.user || null;
  return null;
}

/**
 * The permissions of the caller's roles: one JSON array per role, as a JSON array (the role
 * lists are merged in permissionsOf), read in the same query as the user.
 */
const rolePermissions = sql<string>`(SELECT json_group_array(r.permissions) FROM roles r WHERE r.id IN (SELECT value FROM json_each(${users.roles})))`;
/** The user's memberships, as a JSON array of [team id, role, require_2fa], in the same query. */
const memberships = sql<string>`(SELECT json_group_array(json_array(m.team_id, m.role, t.require_2fa)) FROM team_members m JOIN teams t ON t.id = m.team_id WHERE m.user_id = ${users.id})`;
const userColumns = {
  userId: users.id,
  username: users.username,
  roles: users.roles,
  disabled: users.disabled,
  totpEnabledAt: users.totpEnabledAt,
  rolePermissions,
  memberships,
};

function teamsOf(memberships: string): Record<string, TeamMembership> {
  const out: Record<string, TeamMembership> = {};
  for (const [id, role, require2fa] of JSON.parse(memberships) as [string, TeamRole, number][]) out[id] = { role, require2fa: Boolean(require2fa) };
  return out;
}

function permissionsOf(rolePermissions: string): string[] {
  const lists = JSON.parse(rolePermissions) as string[];
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
    const found = await apiKeyPrincipal(opts.db, eq(apiKeys.keyHash, await sha256Hex(credential)), opts.now);
    if (!found) return null;
    if (opts.touchApiKey && (!found.lastUsed || found.lastUsed < opts.now - 60_000)) opts.touchApiKey(found.principal.apiKeyId!);
    return found.principal;
  }
  if (credential.split('.').length !== 3) return null;
  const session = await verifySession(opts.secret, credential);
  if (!session) return null;
  return sessionPrincipal(opts.db, and(eq(sessions.id, session.sessionId), eq(sessions.userId, session.userId))!, opts.now);
}

/**
 * The principal behind a credential known only by its id (what a terminal token records of the
 * credential its link was made with), read from D1 now: null once that API key or session is
 * revoked or expired, or its user disabled; otherwise the user's permissions (narrowed as the key
 * is) and teams as they are now.
 */
export async function principalByCredentialId(db: D1Database, credential: { kind: 'session' | 'api_key'; id: string }, now: number): Promise<Principal | null> {
  if (credential.kind === 'session') return sessionPrincipal(db, eq(sessions.id, credential.id), now);
  return (await apiKeyPrincipal(db, eq(apiKeys.id, credential.id), now))?.principal ?? null;
}

/** The principal of the live API key `which` finds, and when the key was last used. */
async function apiKeyPrincipal(db: D1Database, which: SQL, now: number): Promise<{ principal: Principal; lastUsed: number | null } | null> {
  const row = await getDb(db)
    .select({ ...userColumns, keyId: apiKeys.id, keyPermissions: apiKeys.permissions, keyLastUsed: apiKeys.lastUsedAt, expiresAt: apiKeys.expiresAt })
    .from(apiKeys)
    .innerJoin(users, eq(users.id, apiKeys.userId))
    .where(and(which, isNull(apiKeys.revokedAt), or(isNull(apiKeys.expiresAt), gt(apiKeys.expiresAt, now))))
    .get();
  if (!row || row.disabled) return null;
  const owner = permissionsOf(row.rolePermissions);
  const keyPerms = row.keyPermissions ?? null;
  const principal: Principal = {
    kind: 'api_key',
    userId: row.userId,
    username: row.username,
    roles: row.roles,
    permissions: narrow(owner, keyPerms),
    apiKeyId: row.keyId,
    narrowed: keyPerms !== null,
    expiresAt: row.expiresAt,
    teams: teamsOf(row.memberships),
    twoFactor: row.totpEnabledAt != null,
  };
  return { principal, lastUsed: row.keyLastUsed ?? null };
}

/** The principal of the live session `which` finds. */
async function sessionPrincipal(db: D1Database, which: SQL, now: number): Promise<Principal | null> {
  const row = await getDb(db)
    .select({ ...userColumns, sessionId: sessions.id, expiresAt: sessions.expiresAt })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(which, isNull(sessions.revokedAt), gt(sessions.expiresAt, now)))
    .get();
  if (!row || row.disabled) return null;
  return {
    kind: 'session',
    userId: row.userId,
    username: row.username,
    roles: row.roles,
    permissions: permissionsOf(row.rolePermissions),
    sessionId: row.sessionId,
    expiresAt: row.expiresAt,
    teams: teamsOf(row.memberships),
    twoFactor: row.totpEnabledAt != null,
  };
}
