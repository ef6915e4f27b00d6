// Enrollment tokens: the secrets an admin hands to agents so they may register. Only the
// SHA-256 of a token is stored; the secret is returned once, at creation. Using a token is one
// conditional UPDATE, so concurrent enrollments can never exceed max_uses.
import { and, desc, eq, gt, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { randomId, randomToken, sha256Hex } from '../auth/crypto.ts';
import { getDb } from '../../shared/db/index.ts';
import { enrollmentTokens, type EnrollmentToken } from '../../shared/db/schema.ts';
import { ApiError } from '../errors.ts';

export const ENROLLMENT_TOKEN_PREFIX = 'pre_';
/** Enough of the secret to tell tokens apart in a list, far too little to guess the rest. */
const SHOWN_PREFIX_LENGTH = ENROLLMENT_TOKEN_PREFIX.length + 6;

export interface NewEnrollmentToken {
  name?: string;
  autoApprove?: boolean;
  expiresAt?: number | null;
  maxUses?: number | null;
  deviceId?: string | null;
  createdBy?: string | null;
  /** The team enrolled devices join. */
  teamId: string;
}

/** Builds the row and the secret without writing, so a caller can batch the insert. */
export async function prepareEnrollmentToken(t: NewEnrollmentToken, now: number): Promise<{ row: EnrollmentToken; token: string }> {
  const token = randomToken(ENROLLMENT_TOKEN_PREFIX);
  const row: EnrollmentToken = {
    id: randomId(8),
    name: t.name ?? '',
    tokenHash: await sha256Hex(token),
    prefix: token.slice(0, SHOWN_PREFIX_LENGTH),
    autoApprove: t.autoApprove ?? false,
    deviceId: t.deviceId ?? null,
    teamId: t.teamId,
    maxUses: t.maxUses ?? null,
    uses: 0,
    createdBy: t.createdBy ?? null,
    createdAt: now,
    expiresAt: t.expiresAt ?? null,
    revokedAt: null,
  };
  return { row, token };
}

export function insertEnrollmentToken(d1: D1Database, row: EnrollmentToken) {
  return getDb(d1).insert(enrollmentTokens).values(row);
}

/** Tokens of these teams (null: of every team), newest first. */
export async function listEnrollmentTokens(d1: D1Database, teams: readonly string[] | null): Promise<EnrollmentToken[]> {
  if (teams && teams.length === 0) return [];
  const q = getDb(d1).select().from(enrollmentTokens);
  return (teams ? q.where(inArray(enrollmentTokens.teamId, [...teams])) : q).orderBy(desc(enrollmentTokens.createdAt), enrollmentTokens.id);
}

export async function findEnrollmentToken(d1: D1Database, id: string): Promise<EnrollmentToken | undefined> {
  return getDb(d1).select().from(enrollmentTokens).where(eq(enrollmentTokens.id, id)).get();
}

/** Revokes a token (idempotent: a revoked token keeps its first revocation time). */
export async function revokeEnrollmentToken(d1: D1Database, id: string, now: number): Promise<EnrollmentToken | undefined> {
  const row = await getDb(d1)
    .update(enrollmentTokens)
    .set({ revokedAt: sql`COALESCE(${enrollmentTokens.revokedAt}, ${now})` })
    .where(eq(enrollmentTokens.id, id))
    .returning()
    .get();
  return row;
}

/**
 * Spends one use of the token with this secret and returns its row, or throws the reason it
 * cannot be used: INVALID_ENROLLMENT_TOKEN (unknown or revoked), ENROLLMENT_TOKEN_EXPIRED or
 * ENROLLMENT_TOKEN_EXHAUSTED (max_uses reached), all 401 since the token is the credential.
 */
export async function spendEnrollmentToken(d1: D1Database, secret: string, now: number): Promise<EnrollmentToken> {
  const hash = await sha256Hex(secret);
  const db = getDb(d1);
  const t = enrollmentTokens;
  const spent = await db
    .update(t)
    .set({ uses: sql`${t.uses} + 1` })
    .where(
      and(eq(t.tokenHash, hash), isNull(t.revokedAt), or(isNull(t.expiresAt), gt(t.expiresAt, now)), or(isNull(t.maxUses), lt(t.uses, t.maxUses))),
    )
    .returning()
    .get();
  if (spent) return spent;
  // Only a refusal pays a second read, to say why.
  const row = await db.select().from(t).where(eq(t.tokenHash, hash)).get();
  if (!row || row.revokedAt != null) throw new ApiError(401, 'INVALID_ENROLLMENT_TOKEN', 'Unknown or revoked enrollment token');
  if (row.expiresAt != null && row.expiresAt <= now) {
    throw new ApiError(401, 'ENROLLMENT_TOKEN_EXPIRED', 'The enrollment token has expired', { expired_at: new Date(row.expiresAt).toISOString() });
  }
  throw new ApiError(401, 'ENROLLMENT_TOKEN_EXHAUSTED', 'The enrollment token has been used as often as it allows', { max_uses: row.maxUses });
}

/** Gives back a use spent on an enrollment that then failed. */
export async function refundEnrollmentToken(d1: D1Database, id: string): Promise<void> {
  await d1.prepare('UPDATE enrollment_tokens SET uses = MAX(uses - 1, 0) WHERE id = ?1').bind(id).run();
}
