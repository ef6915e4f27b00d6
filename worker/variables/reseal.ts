// Key rotation: moves sealed values (variable secrets, TOTP secrets and alert rules' channels,
// every value the secret box keeps) from VARIABLES_KEY_PREVIOUS to VARIABLES_KEY, a bounded batch per call so one request
// stays within a Worker's limits; the operator calls again until nothing remains (README,
// "Rotating VARIABLES_KEY"). A value that does not open is counted, never dropped or answered
// with a 500: it is still there if the right key comes back.
import type { ResealResult } from '../../shared/api/variables.ts';
import { alertRulePlace, currentKeyId, reseal, totpPlace, variablePlace, type SecretKeys } from '../auth/secret-box.ts';

/** Values moved per call. */
export const RESEAL_BATCH = 500;
/** The size of one UPDATE's JSON of [id, old, new] rows: well under D1's 2 MB per bound value. */
const CHUNK_BYTES = 1_000_000;

interface Sealed {
  kind: 'variable' | 'totp' | 'alert_rule';
  id: string;
  sealed: string;
}

// A sealed value starts "<key id>." (8 hex and a dot): SQL compares that prefix with a bound one.
const under = (column: string, prefix: string) => `${column} IS NOT NULL AND substr(${column}, 1, 9) = ${prefix}`;
const notUnder = (column: string, prefix: string) => `${column} IS NOT NULL AND substr(${column}, 1, 9) <> ${prefix}`;

const UPDATE = {
  variable: `UPDATE variables SET sealed = json_extract(m.value, '$[2]') FROM json_each(?1) AS m
             WHERE variables.id = json_extract(m.value, '$[0]') AND variables.sealed = json_extract(m.value, '$[1]')`,
  totp: `UPDATE users SET totp_secret = json_extract(m.value, '$[2]') FROM json_each(?1) AS m
         WHERE users.id = json_extract(m.value, '$[0]') AND users.totp_secret = json_extract(m.value, '$[1]')`,
  alert_rule: `UPDATE alert_rules SET channels_sealed = json_extract(m.value, '$[2]') FROM json_each(?1) AS m
               WHERE alert_rules.id = json_extract(m.value, '$[0]') AND alert_rules.channels_sealed = json_extract(m.value, '$[1]')`,
} as const;

const PLACE: Record<Sealed['kind'], (id: string) => string> = { variable: variablePlace, totp: totpPlace, alert_rule: alertRulePlace };

/** [id, old, new] rows in JSON arrays of at most CHUNK_BYTES. */
function chunked(rows: [string, string, string][]): string[] {
  const out: string[] = [];
  let chunk: string[] = [];
  let size = 0;
  for (const row of rows) {
    const text = JSON.stringify(row);
    if (chunk.length && size + text.length > CHUNK_BYTES) {
      out.push(`[${chunk.join(',')}]`);
      chunk = [];
      size = 0;
    }
    chunk.push(text);
    size += text.length + 1;
  }
  if (chunk.length) out.push(`[${chunk.join(',')}]`);
  return out;
}

/**
 * Re-seals up to RESEAL_BATCH values under VARIABLES_KEY_PREVIOUS with VARIABLES_KEY. An update
 * applies only if the value is still the one read, so a secret changed meanwhile (already under
 * the new key) is not overwritten with its old value.
 */
export async function resealBatch(env: SecretKeys & { DB: D1Database }): Promise<ResealResult> {
  const current = `${await currentKeyId(env)}.`;
  // The previous key's id is what it would have as the current one.
  const previousId = env.VARIABLES_KEY_PREVIOUS ? await currentKeyId({ VARIABLES_KEY: env.VARIABLES_KEY_PREVIOUS }) : null;
  const previous = previousId && `${previousId}.` !== current ? `${previousId}.` : null;

  const moved: Record<Sealed['kind'], [string, string, string][]> = { variable: [], totp: [], alert_rule: [] };
  let failed = 0;
  if (previous) {
    const { results } = await env.DB.prepare(
      `SELECT 'variable' AS kind, id, sealed FROM variables WHERE ${under('sealed', '?1')}
       UNION ALL SELECT 'totp' AS kind, id, totp_secret AS sealed FROM users WHERE ${under('totp_secret', '?1')}
       UNION ALL SELECT 'alert_rule' AS kind, id, channels_sealed AS sealed FROM alert_rules WHERE ${under('channels_sealed', '?1')}
       LIMIT ${RESEAL_BATCH}`,
    )
      .bind(previous)
      .all<Sealed>();
    for (const v of results) {
      try {
        const next = await reseal(env, v.sealed, PLACE[v.kind](v.id));
        if (next) moved[v.kind].push([v.id, v.sealed, next]);
      } catch {
        // Tampered, or sealed for another place: it stays, unreadable, and is reported.
        failed++;
      }
    }
  }

  const updates = (['variable', 'totp', 'alert_rule'] as const).flatMap((kind) => chunked(moved[kind]).map((json) => env.DB.prepare(UPDATE[kind]).bind(json)));
  const count = env.DB.prepare(
    `SELECT (SELECT count(*) FROM variables WHERE ${notUnder('sealed', '?1')}) + (SELECT count(*) FROM users WHERE ${notUnder('totp_secret', '?1')})
              + (SELECT count(*) FROM alert_rules WHERE ${notUnder('channels_sealed', '?1')}) AS behind,
            (SELECT count(*) FROM variables WHERE ${under('sealed', '?2')}) + (SELECT count(*) FROM users WHERE ${under('totp_secret', '?2')})
              + (SELECT count(*) FROM alert_rules WHERE ${under('channels_sealed', '?2')}) AS previous`,
  ).bind(current, previous);
  const results = await env.DB.batch([...updates, count]);
  const resealed = results.slice(0, -1).reduce((n, r) => n + (r.meta.changes ?? 0), 0);
  const left = results.at(-1)!.results[0] as { behind: number; previous: number };
  // Under neither key: nothing here can open them.
  const lost = left.behind - left.previous;
  return { resealed, remaining: left.previous - failed, failed: failed + lost };
}
