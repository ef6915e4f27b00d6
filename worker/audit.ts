// The audit log: who changed what, when, from where, in which team. A route calls audit(c, …)
// after a change succeeds (or for a login or a failed one); the entries of one request are
// written together, in one D1 statement, when the request ends, whatever its outcome (a failed
// login is an error response and is still recorded). Never pass a secret: variables go by name,
// keys and tokens by id or prefix.
//
// Costs and bounds: the whole request's entries travel as one JSON parameter of a single
// INSERT … SELECT FROM json_each, so the log costs one D1 query per request however many entries
// there are (D1 also caps bound parameters at 100 per query, which a multi-row VALUES would hit
// at nine entries). That parameter must stay under D1's 2 MB string limit, so a request keeps at
// most AUDIT_MAX_ENTRIES entries, each field and detail string is cut to a bounded length and
// details over AUDIT_DETAILS_MAX_CHARS are replaced by a marker. A route recording more entries
// than that is a bug: the extra ones are dropped and the drop is logged (action names only).
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from './app-env.ts';
import { clientIpOf } from './client-ip.ts';
import { credentialIdOf } from './auth/principal.ts';

export interface AuditInput {
  /** "<resource>.<verb>": team.create, member.remove, variable.update, login.failed … */
  action: string;
  targetType?: string;
  targetId?: string | null;
  teamId?: string | null;
  details?: Record<string, unknown>;
  /** Who acted, when it is not the authenticated caller (a login names the user it logged in). */
  actor?: { id: string | null; name: string };
}

/** Entries one request may record; more means a route loops over something it should summarise. */
export const AUDIT_MAX_ENTRIES = 100;
/** Longest string kept anywhere in an entry (ids, names, detail values); longer ones end in "…". */
export const AUDIT_STRING_MAX = 256;
/** Longest serialised details kept; larger ones become { truncated: true }. */
export const AUDIT_DETAILS_MAX_CHARS = 4096;
const ARRAY_MAX = 50;

/** Queues an entry for the end of the request. */
export function audit(c: Context<AppEnv>, entry: AuditInput): void {
  const list = c.get('audit') ?? [];
  if (list.length >= AUDIT_MAX_ENTRIES) {
    console.error(`audit log: over ${AUDIT_MAX_ENTRIES} entries in one request, not recorded:`, entry.action);
    return;
  }
  list.push(entry);
  c.set('audit', list);
}

const cut = (s: string) => (s.length > AUDIT_STRING_MAX ? `${s.slice(0, AUDIT_STRING_MAX - 1)}…` : s);
const cutOrNull = (s: string | null | undefined) => (s == null ? null : cut(String(s)));

/** The details as stored: long strings and arrays cut, the whole bounded; never throws. */
export function detailsJson(details: Record<string, unknown> | undefined): string | null {
  if (!details) return null;
  let text: string;
  try {
    text = JSON.stringify(details, (_key, v: unknown) => {
      if (typeof v === 'string') return cut(v);
      if (typeof v === 'bigint') return v.toString();
      if (Array.isArray(v) && v.length > ARRAY_MAX) return v.slice(0, ARRAY_MAX);
      return v;
    });
  } catch {
    // A cycle: the entry is still worth having without its details.
    return JSON.stringify({ truncated: true });
  }
  return text.length > AUDIT_DETAILS_MAX_CHARS ? JSON.stringify({ truncated: true }) : text;
}

// at and ip are the request's; each row of ?3 is [actor_id, actor_name, credential,
// credential_id, action, target_type, target_id, team_id, details]. Rows keep their order, so ids
// follow the order the route recorded them in.
const INSERT = `INSERT INTO audit_log (at, ip, actor_id, actor_name, credential, credential_id, action, target_type, target_id, team_id, details)
SELECT ?1, ?2, json_extract(e.value, '$[0]'), json_extract(e.value, '$[1]'), json_extract(e.value, '$[2]'), json_extract(e.value, '$[3]'),
  json_extract(e.value, '$[4]'), json_extract(e.value, '$[5]'), json_extract(e.value, '$[6]'), json_extract(e.value, '$[7]'), json_extract(e.value, '$[8]')
FROM json_each(?3) AS e ORDER BY e.key`;

/** Writes the request's entries, if any, in one statement, after the handler ran. */
export const writeAudit: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const entries = c.get('audit');
  if (!entries?.length) return;
  c.set('audit', undefined);
  try {
    const p = c.get('principal') ?? null;
    const rows = entries.map((e) => {
      const byCaller = !e.actor && p;
      const actor = e.actor ?? (p ? { id: p.userId, name: p.username } : { id: null, name: '' });
      return [
        cutOrNull(actor.id),
        cut(actor.name),
        byCaller ? p.kind : 'none',
        byCaller ? cutOrNull(credentialIdOf(p)) : null,
        cut(e.action),
        cut(e.targetType ?? ''),
        cutOrNull(e.targetId),
        cutOrNull(e.teamId),
        detailsJson(e.details),
      ];
    });
    await c.env.DB.prepare(INSERT).bind(Date.now(), cut(clientIpOf(c.req.raw, c.env)), JSON.stringify(rows)).run();
  } catch (err) {
    // The change itself is done and answered; a lost audit write must be loud, not a 500. Only
    // the action names and the error's message: entries and statements stay out of logs.
    console.error('audit log write failed:', entries.map((e) => e.action).join(','), err instanceof Error ? err.message : 'unknown error');
  }
};
