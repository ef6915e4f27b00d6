// Drizzle over the D1 binding, and the small conversions rows need on their way out. In shared/
// because the Worker and the hubs (an alert's row, its rule) both read D1 through it.
import { drizzle, type AnyD1Database } from 'drizzle-orm/d1';
import * as schema from './schema.ts';

export type Db = ReturnType<typeof getDb>;

export function getDb(d1: AnyD1Database) {
  return drizzle(d1, { schema });
}

/** Unix ms → ISO 8601, keeping null as null. */
export function iso(ms: number | null | undefined): string | null {
  return ms == null ? null : new Date(ms).toISOString();
}

export { schema };

/** Whether a D1 error is a unique index (or primary key) refusing a row: the race-safe "already taken". */
export function isUniqueViolation(e: unknown): boolean {
  return e instanceof Error && /UNIQUE constraint failed/i.test(`${e.message} ${String(e.cause ?? '')}`);
}
