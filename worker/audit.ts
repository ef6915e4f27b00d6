// The audit log: who changed what, when, from where, in which team. A route calls audit(c, …)
// after a change succeeds (or for a login or a failed one); the entries of one request are
// written together, in one D1 batch, when the request ends, whatever its outcome (a failed login
// is an error response and is still recorded). Never pass a secret: variables go by name, keys
// and tokens by id or prefix.
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from './app-env.ts';
import { clientIpOf } from './client-ip.ts';

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

/** Queues an entry for the end of the request. */
export function audit(c: Context<AppEnv>, entry: AuditInput): void {
  const list = c.get('audit');
  if (list) list.push(entry);
  else c.set('audit', [entry]);
}

/** Writes the request's entries, if any, in one batch, after the handler ran. */
export const writeAudit: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const entries = c.get('audit');
  if (!entries?.length) return;
  c.set('audit', undefined);
  const p = c.get('principal') ?? null;
  const at = Date.now();
  const ip = clientIpOf(c.req.raw, c.env);
  const stmt = c.env.DB.prepare(
    'INSERT INTO audit_log (at, actor_id, actor_name, credential, credential_id, action, target_type, target_id, team_id, ip, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)',
  );
  const rows = entries.map((e) => {
    const actor = e.actor ?? (p ? { id: p.userId, name: p.username } : { id: null, name: '' });
    const byCaller = !e.actor && p;
    return stmt.bind(
      at,
      actor.id,
      actor.name,
      byCaller ? p.kind : 'none',
      byCaller ? (p.kind === 'api_key' ? p.apiKeyId ?? null : p.sessionId ?? null) : null,
      e.action,
      e.targetType ?? '',
      e.targetId ?? null,
      e.teamId ?? null,
      ip,
      e.details ? JSON.stringify(e.details) : null,
    );
  });
  try {
    await c.env.DB.batch(rows);
  } catch (err) {
    // The change itself is done and answered; a lost audit batch must be loud, not a 500.
    console.error('audit log write failed', entries.map((e) => e.action).join(','), err);
  }
};
