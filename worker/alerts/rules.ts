// The Worker's queries of alert rules and alerts (D1), and who each reaches. A rule's team is its
// device's when it names one (so a moved device's rules follow it), else its own team_id; a
// rule with neither is relay-wide: every device's, readable by whoever reads alerts, written by
// instance admins only. Lists take the teams the caller may see (null: every team) as one JSON
// parameter (json_each), so a member of many teams stays under D1's 100 bound parameters.
import { and, desc, eq, isNull, sql, type SQL } from 'drizzle-orm';
import { getDb, iso } from '../../shared/db/index.ts';
import { alertRules, alerts, devices, type AlertRow, type AlertRuleRow } from '../../shared/db/schema.ts';
import { THRESHOLD_METRICS, type AlertLevel, type AlertRule, type ThresholdMetric } from '../../shared/api/alerts.ts';
import { hubFor } from '../devices/hub.ts';

/** Alerts one list returns at most (newest first). */
export const MAX_ALERTS = 500;
/** Hubs told of a rule change at once. */
const HUB_BATCH = 50;

export interface RuleWithTeam {
  rule: AlertRuleRow;
  /** The team the rule belongs to (its device's, else its own); null for a relay-wide rule. */
  teamId: string | null;
}

export const isRelayWide = (r: Pick<AlertRuleRow, 'teamId' | 'deviceId'>) => r.teamId === null && r.deviceId === null;

/** `teams` as a condition on a team column: every team for null. */
function inTeams(column: SQL, teams: readonly string[] | null): SQL {
  return teams === null ? sql`1 = 1` : sql`${column} IN (SELECT value FROM json_each(${JSON.stringify(teams)}))`;
}

const ruleTeam = sql<string | null>`coalesce(${devices.teamId}, ${alertRules.teamId})`;

/** Relay-wide rules and the rules of `teams`, by name. */
export async function listRules(db: D1Database, teams: readonly string[] | null): Promise<RuleWithTeam[]> {
  return getDb(db)
    .select({ rule: alertRules, teamId: ruleTeam })
    .from(alertRules)
    .leftJoin(devices, eq(devices.id, alertRules.deviceId))
    .where(sql`((${alertRules.teamId} IS NULL AND ${alertRules.deviceId} IS NULL) OR ${inTeams(ruleTeam, teams)})`)
    .orderBy(alertRules.name, alertRules.id)
    .all();
}

export async function getRule(db: D1Database, id: string): Promise<RuleWithTeam | null> {
  return (await getDb(db).select({ rule: alertRules, teamId: ruleTeam }).from(alertRules).leftJoin(devices, eq(devices.id, alertRules.deviceId)).where(eq(alertRules.id, id)).get()) ?? null;
}

export async function insertRule(db: D1Database, row: AlertRuleRow): Promise<void> {
  await getDb(db).insert(alertRules).values(row).run();
}

export async function updateRule(db: D1Database, id: string, set: Partial<AlertRuleRow>): Promise<AlertRuleRow | null> {
  return (await getDb(db).update(alertRules).set(set).where(eq(alertRules.id, id)).returning().get()) ?? null;
}

/** Deletes the rule (its alerts and deliveries go with it); false when it was not there. */
export async function deleteRule(db: D1Database, id: string): Promise<boolean> {
  return !!(await getDb(db).delete(alertRules).where(eq(alertRules.id, id)).returning({ id: alertRules.id }).get());
}

/** A rule as the API shows it (its channels as their type and host only). */
export function ruleView(r: AlertRuleRow): AlertRule {
  return {
    id: r.id,
    name: r.name,
    metric: r.metric,
    target: r.target,
    warning: r.warning,
    critical: r.critical,
    level: r.level,
    hold_seconds: r.holdSeconds,
    recovery_seconds: r.recoverySeconds,
    team_id: r.teamId,
    device_id: r.deviceId,
    enabled: r.enabled,
    channels: r.channelViews,
    resend_minutes: r.resendMinutes,
    resend_cap: r.resendCap,
    quiet_hours: r.quietHours,
    created_at: iso(r.createdAt)!,
    updated_at: iso(r.updatedAt),
  };
}

/** Where a rule applies: one device, every device of a team, or every device. */
export type RuleScope = { deviceId: string } | { teamId: string } | 'relay';

export const scopeOf = (r: Pick<AlertRuleRow, 'teamId' | 'deviceId'>): RuleScope => (r.deviceId ? { deviceId: r.deviceId } : r.teamId ? { teamId: r.teamId } : 'relay');

/** Tells the hub of every approved device a rule scope reaches that its rules changed (errors are logged: the change is in D1, and hubs re-read it within 30 s anyway). */
export async function tellHubs(env: Env, scopes: RuleScope[]): Promise<void> {
  const ids = new Set<string>();
  for (const s of scopes) {
    if (s !== 'relay' && 'deviceId' in s) {
      ids.add(s.deviceId);
      continue;
    }
    const q = s === 'relay' ? env.DB.prepare("SELECT id FROM devices WHERE status = 'approved'") : env.DB.prepare("SELECT id FROM devices WHERE status = 'approved' AND team_id = ?1").bind(s.teamId);
    for (const r of (await q.all<{ id: string }>()).results) ids.add(r.id);
  }
  const all = [...ids];
  for (let i = 0; i < all.length; i += HUB_BATCH) {
    await Promise.all(
      all.slice(i, i + HUB_BATCH).map((id) =>
        hubFor(env, id)
          .alertRulesChanged()
          .catch((e: unknown) => console.error('DeviceHub.alertRulesChanged failed', id, e)),
      ),
    );
  }
}

// ---- Tyto's config: the relay-wide threshold rules ----

/** The relay-wide rule of each threshold metric that Tyto's config reads and writes: the oldest without a target. */
export async function relayThresholdRules(db: D1Database): Promise<Map<ThresholdMetric, AlertRuleRow>> {
  const rows = await getDb(db)
    .select()
    .from(alertRules)
    .where(and(isNull(alertRules.teamId), isNull(alertRules.deviceId), isNull(alertRules.target), sql`${alertRules.metric} IN (SELECT value FROM json_each(${JSON.stringify(THRESHOLD_METRICS)}))`))
    .orderBy(alertRules.createdAt, alertRules.id)
    .all();
  const out = new Map<ThresholdMetric, AlertRuleRow>();
  for (const r of rows) if (!out.has(r.metric as ThresholdMetric)) out.set(r.metric as ThresholdMetric, r);
  return out;
}

// ---- alerts ----

export interface AlertFilters {
  state: 'firing' | 'resolved';
  agentId?: string;
  level?: AlertLevel;
}

/** Alerts of `teams`, newest first. */
export async function listAlerts(db: D1Database, teams: readonly string[] | null, f: AlertFilters): Promise<AlertRow[]> {
  const where = [eq(alerts.state, f.state), inTeams(sql`${alerts.teamId}`, teams)];
  if (f.agentId) where.push(eq(alerts.deviceId, f.agentId));
  if (f.level) where.push(eq(alerts.level, f.level));
  return getDb(db)
    .select()
    .from(alerts)
    .where(and(...where))
    .orderBy(desc(alerts.createdAt), desc(alerts.id))
    .limit(MAX_ALERTS)
    .all();
}

export async function getAlert(db: D1Database, id: string): Promise<AlertRow | null> {
  return (await getDb(db).select().from(alerts).where(eq(alerts.id, id)).get()) ?? null;
}

/** Marks the alert acknowledged unless it is already; the row as it is now, and whether this call did it. */
export async function acknowledgeAlert(db: D1Database, id: string, userId: string, now: number): Promise<{ row: AlertRow | null; changed: boolean }> {
  const changed = await getDb(db)
    .update(alerts)
    .set({ acknowledgedAt: now, acknowledgedBy: userId })
    .where(and(eq(alerts.id, id), isNull(alerts.acknowledgedAt)))
    .returning()
    .get();
  return changed ? { row: changed, changed: true } : { row: await getAlert(db, id), changed: false };
}
