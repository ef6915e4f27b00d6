// GET /api/v1/audit: the audit log, newest first, paged by id. Who sees what follows the team rule
// (worker/auth/scope.ts): an instance admin every entry; anyone else with audit:read only the
// entries of the teams they administer (admin or owner, with the second factor a team requires).
// Entries that belong to no team (logins, users, roles, API keys) are instance-wide, so only
// instance admins see them. Asking for one team's entries is asking to act in it as its admin:
// an outsider gets 404 Team, a plain member 403 TEAM_ROLE_REQUIRED. Without team_id, a caller who
// administers no team gets an empty page. One D1 query per page.
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { and, desc, eq, gte, lt, sql, type SQL } from 'drizzle-orm';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { authErrors, bearerSecurity, notFoundError } from '../openapi.ts';
import { allows } from '../auth/access.ts';
import { principalOf } from '../auth/middleware.ts';
import { authorizeTeam, isInstanceAdmin, mayActIn } from '../auth/scope.ts';
import { getDb, iso, schema } from '../../shared/db/index.ts';
import type { AuditEntry } from '../../shared/db/schema.ts';
import { AUDIT_PAGE_DEFAULT, AuditListQuerySchema, AuditPageSchema, type AuditCredential, type AuditListQuery } from '../../shared/api/audit.ts';

const log = schema.auditLog;

const listAudit = createRoute({
  method: 'get',
  path: '/api/v1/audit',
  tags: ['audit'],
  summary: "Audit log, newest first: everything for instance admins, the entries of the teams you administer otherwise",
  security: bearerSecurity,
  ...allows('audit:read'),
  request: { query: AuditListQuerySchema },
  responses: {
    200: { description: 'One page of entries', content: { 'application/json': { schema: AuditPageSchema.openapi('AuditPage') } } },
    ...authErrors,
    ...notFoundError,
  },
});

function entryView(e: AuditEntry) {
  return {
    id: e.id,
    at: iso(e.at)!,
    actor: { id: e.actorId, name: e.actorName },
    credential: e.credential as AuditCredential,
    credential_id: e.credentialId,
    action: e.action,
    target_type: e.targetType,
    target_id: e.targetId,
    team_id: e.teamId,
    ip: e.ip,
    details: e.details ?? null,
  };
}

/**
 * The teams whose entries the caller may read, or null for all. Throws for a team_id filter the
 * caller may not read (authorizeTeam: 404 Team, 403 TWO_FACTOR_REQUIRED or TEAM_ROLE_REQUIRED).
 * An instance admin may filter by any id, also of a deleted team, whose entries stay.
 */
function readableTeams(c: Context<AppEnv>, teamId: string | undefined): string[] | null {
  const p = principalOf(c);
  if (teamId !== undefined) {
    authorizeTeam(c, teamId, 'admin');
    return [teamId];
  }
  if (isInstanceAdmin(p)) return null;
  return Object.keys(p.teams).filter((id) => mayActIn(p, id, 'admin'));
}

function filtersOf(q: AuditListQuery, teams: string[] | null): SQL[] {
  const where: SQL[] = [];
  // One bound parameter however many teams (D1 allows 100 per query).
  if (teams) where.push(sql`${log.teamId} IN (SELECT value FROM json_each(${JSON.stringify(teams)}))`);
  if (q.actor_id !== undefined) where.push(eq(log.actorId, q.actor_id));
  if (q.action !== undefined) {
    // A prefix is compared as text, not with LIKE, in which "_" (api_key.) would match any character.
    where.push(q.action.endsWith('.') ? sql`substr(${log.action}, 1, ${q.action.length}) = ${q.action}` : eq(log.action, q.action));
  }
  if (q.target_type !== undefined) where.push(eq(log.targetType, q.target_type));
  if (q.target_id !== undefined) where.push(eq(log.targetId, q.target_id));
  if (q.from !== undefined) where.push(gte(log.at, Date.parse(q.from)));
  if (q.to !== undefined) where.push(lt(log.at, Date.parse(q.to)));
  if (q.before !== undefined) where.push(lt(log.id, q.before));
  return where;
}

export function registerAuditRoutes(app: App) {
  app.openapi(listAudit, async (c) => {
    const q = c.req.valid('query');
    const teams = readableTeams(c, q.team_id);
    if (teams?.length === 0) return c.json({ entries: [], next_before: null }, 200);
    const limit = q.limit ?? AUDIT_PAGE_DEFAULT;
    // One row more than the page tells whether another page follows, in the same query.
    const rows = await getDb(c.env.DB)
      .select()
      .from(log)
      .where(and(...filtersOf(q, teams)))
      .orderBy(desc(log.id))
      .limit(limit + 1);
    const page = rows.slice(0, limit);
    return c.json({ entries: page.map(entryView), next_before: rows.length > limit ? page[page.length - 1]!.id : null }, 200);
  });
}
