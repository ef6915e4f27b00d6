// Drizzle over the D1 binding, and the small conversions rows need on their way out.
import { drizzle } from 'drizzle-orm/d1';
import * as schema from '../../shared/db/schema.ts';

export type Db = ReturnType<typeof getDb>;

export function getDb(d1: D1Database) {
  return drizzle(d1, { schema });
}

/** Unix ms → ISO 8601, keeping null as null. */
export function iso(ms: number | null | undefined): string | null {
  return ms == null ? null : new Date(ms).toISOString();
}

export { schema };
