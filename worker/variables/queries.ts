// The D1 side of variables: one owner's list, create-or-update, delete, and the merged set a
// device's runs get. A secret's plaintext exists only on its way into seal() here and out of
// open() in effectiveVariables; everything else passes the sealed text around, so the routes
// that answer clients never hold a secret to leak.
import { and, eq, or, sql } from 'drizzle-orm';
import { getDb, schema } from '../../shared/db/index.ts';
import type { Variable } from '../../shared/db/schema.ts';
import type { PutVariable, VariableLevel } from '../../shared/api/variables.ts';
import { ApiError, conflict } from '../errors.ts';
import { randomId } from '../auth/crypto.ts';
import { open, seal, variablePlace, type SecretKeys } from '../auth/secret-box.ts';

const { variables } = schema;

/** Whose variables: a user's (the account), a team's or a device's. */
export interface Owner {
  level: VariableLevel;
  id: string;
}

const ownerColumn = { user: variables.userId, team: variables.teamId, device: variables.deviceId } as const;

const ofOwner = (o: Owner) => and(eq(variables.level, o.level), eq(ownerColumn[o.level], o.id));

/** The additional data a variable's secret is sealed with: it opens only on its own row. */

export async function listVariables(d1: D1Database, owner: Owner): Promise<Variable[]> {
  return getDb(d1).select().from(variables).where(ofOwner(owner)).orderBy(variables.name);
}

/** The columns a PUT writes, from the current row (if any) and the body; seals when it must. */
async function nextState(env: SecretKeys, id: string, current: Variable | undefined, body: PutVariable) {
  const secret = body.secret ?? current?.secret ?? false;
  if (secret) {
    // Already secret and no new value: the sealed value stays as it is (it is never opened here).
    if (body.value === undefined && current?.secret) return { secret, value: null, sealed: current.sealed };
    const plaintext = body.value ?? current?.value;
    if (plaintext == null) throw valueRequired('A new variable needs a value');
    return { secret, value: null, sealed: await seal(env, plaintext, variablePlace(id)) };
  }
  if (body.value !== undefined) return { secret, value: body.value, sealed: null };
  if (!current) throw valueRequired('A new variable needs a value');
  if (current.secret) throw valueRequired('Making a secret variable plain needs a new value: a secret is never read back');
  return { secret, value: current.value, sealed: null };
}

const valueRequired = (message: string) => new ApiError(422, 'VARIABLE_VALUE_REQUIRED', message);

// Each round of racing writers lets at least one through, so this many writers always finish.
const ATTEMPTS = 5;

/**
 * Creates or updates `name` of `owner`. Safe against a concurrent PUT or DELETE of the same name:
 * a create inserts only if the unique index (level, owner, name) lets it, an update applies only
 * to the row as it was read (value, sealed value and updated_at unchanged); whichever loses reads
 * again. The row's id must be known before sealing (it is in the additional data), which is why
 * this is not one INSERT … ON CONFLICT DO UPDATE.
 */
export async function putVariable(
  env: SecretKeys & { DB: D1Database },
  owner: Owner,
  name: string,
  body: PutVariable,
  now = Date.now(),
): Promise<{ variable: Variable; created: boolean }> {
  const db = getDb(env.DB);
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const current = await db.select().from(variables).where(and(ofOwner(owner), eq(variables.name, name))).get();
    if (!current) {
      const id = randomId(8);
      const row = {
        id,
        level: owner.level,
        userId: owner.level === 'user' ? owner.id : null,
        teamId: owner.level === 'team' ? owner.id : null,
        deviceId: owner.level === 'device' ? owner.id : null,
        name,
        ...(await nextState(env, id, undefined, body)),
        createdAt: now,
        updatedAt: now,
      };
      const [inserted] = await db.insert(variables).values(row).onConflictDoNothing().returning();
      if (inserted) return { variable: inserted, created: true };
      continue;
    }
    const [updated] = await db
      .update(variables)
      .set({ ...(await nextState(env, current.id, current, body)), updatedAt: now })
      .where(
        and(
          eq(variables.id, current.id),
          eq(variables.updatedAt, current.updatedAt),
          sql`${variables.value} IS ${current.value}`,
          sql`${variables.sealed} IS ${current.sealed}`,
        ),
      )
      .returning();
    if (updated) return { variable: updated, created: false };
  }
  throw conflict(`Variable ${name} kept changing while it was being saved; try again`, { name });
}

/** Deletes `name` of `owner`; the deleted row, or null when there was none. */
export async function deleteVariable(d1: D1Database, owner: Owner, name: string): Promise<Variable | null> {
  const [row] = await getDb(d1).delete(variables).where(and(ofOwner(owner), eq(variables.name, name))).returning();
  return row ?? null;
}

const PRECEDENCE: Record<VariableLevel, number> = { user: 1, team: 2, device: 3 };

/**
 * The variables a run on `deviceId` for `userId` gets, by name: the device's over its team's over
 * the user's own (README, "Variables"). One D1 query; the device's team is read in it. Secrets
 * stay sealed. The caller has checked the user may act on the device.
 */
export async function effectiveRows(d1: D1Database, who: { userId: string; deviceId: string }): Promise<Variable[]> {
  const rows = await getDb(d1)
    .select()
    .from(variables)
    .where(
      or(
        and(eq(variables.level, 'device'), eq(variables.deviceId, who.deviceId)),
        and(eq(variables.level, 'team'), sql`${variables.teamId} = (SELECT team_id FROM devices WHERE id = ${who.deviceId})`),
        and(eq(variables.level, 'user'), eq(variables.userId, who.userId)),
      ),
    );
  const byName = new Map<string, Variable>();
  for (const r of rows) {
    const seen = byName.get(r.name);
    if (!seen || PRECEDENCE[r.level] > PRECEDENCE[seen.level]) byName.set(r.name, r);
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface EffectiveVariable {
  /** The plaintext, a secret's too. */
  value: string;
  secret: boolean;
  level: VariableLevel;
}

/**
 * The merged set with secrets opened, for the run that needs them (the automation issue) and
 * nothing else: no route may answer with it. Throws 503 SECRETS_UNAVAILABLE when a secret is
 * under a key the relay no longer has.
 */
export async function effectiveVariables(
  env: SecretKeys & { DB: D1Database },
  who: { userId: string; deviceId: string },
): Promise<Map<string, EffectiveVariable>> {
  const rows = await effectiveRows(env.DB, who);
  const values = await Promise.all(rows.map((r) => (r.secret ? open(env, r.sealed ?? '', variablePlace(r.id)) : r.value ?? '')));
  return new Map(rows.map((r, i) => [r.name, { value: values[i]!, secret: r.secret, level: r.level }]));
}
