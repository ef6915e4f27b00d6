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
import { AUDIT_INSERT, auditRow, cut } from '../shared/audit-log.ts';

export { AUDIT_DETAILS_MAX_CHARS, AUDIT_STRING_MAX, detailsJson } from '../shared/audit-log.ts';

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
      return auditRow({
        actorId: actor.id,
        actorName: actor.name,
        credential: byCaller ? p.kind : 'none',
        credentialId: byCaller ? credentialIdOf(p) : null,
        action: e.action,
        targetType: e.targetType ?? '',
        targetId: e.targetId ?? null,
        teamId: e.teamId ?? null,
        details: e.details,
      });
    });
    await c.env.DB.prepare(AUDIT_INSERT).bind(Date.now(), cut(clientIpOf(c.req.raw, c.env)), JSON.stringify(rows)).run();
  } catch (err) {
    // The change itself is done and answered; a lost audit write must be loud, not a 500. Only
    // the action names and the error's message: entries and statements stay out of logs.
    console.error('audit log write failed:', entries.map((e) => e.action).join(','), err instanceof Error ? err.message : 'unknown error');
  }
};
