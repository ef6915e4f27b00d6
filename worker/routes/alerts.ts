// The alerts API: the native rules (GET/POST /api/v1/alert-rules, GET/PATCH/DELETE
// /api/v1/alert-rules/{id}), the alerts they raised (GET /api/v1/alerts/{id}), and Tyto's
// GET /api/v1/alerts, POST /api/v1/alerts/config (the relay-wide thresholds) and
// POST /api/v1/alerts/{id}/acknowledge. Permissions alerts:read, alerts:write,
// alerts:acknowledge. A rule is relay-wide (instance admins write it; everyone who reads alerts
// sees it), a team's (members of the team with alerts:write) or a device's (its team's members);
// a rule, device or alert of another team is a 404. After a change the hubs the rule reaches are
// told (waitUntil), so they drop their cached rules. Deliveries and test notifications are
// worker/routes/alert-deliveries.ts.
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { authErrors, errorResponse, invalidRequest, notFoundError } from '../openapi.ts';
import { allows } from '../auth/access.ts';
import { principalOf } from '../auth/middleware.ts';
import { assertInTeam, assertTeamExists, authorizeDevice, authorizeTeam, isInstanceAdmin, mayActIn, visibleTeams } from '../auth/scope.ts';
import { ApiError, forbidden, notFound } from '../errors.ts';
import { json, security } from '../devices/api-schemas.ts';
import { audit } from '../audit.ts';
import { randomId } from '../auth/crypto.ts';
import { hubFor } from '../devices/hub.ts';
import { sealChannels } from '../alerts/channels.ts';
import {
  acknowledgeAlert,
  deleteRule,
  getAlert,
  getRule,
  insertRule,
  listAlerts,
  listRules,
  MAX_ALERTS,
  relayThresholdRules,
  ruleView,
  scopeOf,
  tellHubs,
  updateRule,
  type RuleScope,
  type RuleWithTeam,
} from '../alerts/rules.ts';
import { alertOf } from '../../durable-objects/capabilities/alert-rules.ts';
import * as S from '../../shared/api/alerts.ts';
import { DeviceIdSchema } from '../../shared/api/devices.ts';
import type { AlertRuleRow } from '../../shared/db/schema.ts';

const tags = ['alerts'];
const read = allows('alerts:read');
const write = allows('alerts:write');

const AlertRule = S.AlertRuleSchema.openapi('AlertRule');
const AlertRuleList = z.object({ rules: z.array(AlertRule) }).openapi('AlertRuleList');
const AlertRuleInput = S.AlertRuleInputSchema.openapi('AlertRuleInput');
const AlertRulePatch = S.AlertRulePatchSchema.openapi('AlertRulePatch');
const Alert = S.AlertSchema.openapi('Alert');
const TytoAlerts = S.TytoAlertsSchema.extend({ alerts: z.array(Alert) }).openapi('TytoAlerts');
const AlertConfig = S.AlertConfigSchema.openapi('AlertConfig');
const AlertConfigView = z.object({ config: S.TytoAlertsSchema.shape.config }).openapi('AlertConfigView');

const IdParam = z.object({ id: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'an id').openapi({ param: { name: 'id', in: 'path' } }) });
const AlertsQuery = z.object({
  state: z.enum(S.ALERT_STATES).default('firing').openapi({ description: 'firing (default) or resolved' }),
  agent_id: DeviceIdSchema.optional().openapi({ description: 'Only alerts of this device' }),
  level: S.AlertLevelSchema.optional().openapi({ description: 'Only alerts of this level' }),
});

const ruleNotFound = (id: string) => notFound('Alert rule', { rule_id: id });
const alertNotFound = (id: string) => notFound('Alert', { alert_id: id });
const relayWideOnly = () => forbidden('A relay-wide rule (no team_id and no device_id) is for instance admins; name a team_id or a device_id', { required: '*' });

/** Where a new (or moved) rule goes, checked against the caller: a device's rule is its team's. */
async function authorizeScope(c: Context<AppEnv>, teamId: string | null | undefined, deviceId: string | null | undefined): Promise<{ teamId: string | null; deviceId: string | null }> {
  if (deviceId) {
    const team = await authorizeDevice(c, deviceId, 'member');
    if (teamId && teamId !== team) {
      // Another team named with the device: a team the caller cannot act in is a 404 like anywhere else.
      authorizeTeam(c, teamId, 'member');
      await assertTeamExists(c.env, teamId);
      throw new ApiError(422, 'RULE_SCOPE_MISMATCH', "A device's rule belongs to the device's team: leave team_id out or give the device's", { device_id: deviceId, team_id: teamId });
    }
    return { teamId: team, deviceId };
  }
  if (teamId) {
    authorizeTeam(c, teamId, 'member');
    await assertTeamExists(c.env, teamId);
    return { teamId, deviceId: null };
  }
  if (!isInstanceAdmin(principalOf(c))) throw relayWideOnly();
  return { teamId: null, deviceId: null };
}

/** The rule, if the caller may see it: a relay-wide one is everyone's who reads alerts; another team's is a 404. */
async function visibleRule(c: Context<AppEnv>, id: string): Promise<RuleWithTeam> {
  const found = await getRule(c.env.DB, id);
  if (!found || (found.teamId !== null && !mayActIn(principalOf(c), found.teamId))) throw ruleNotFound(id);
  return found;
}

/** The rule, if the caller may change it (a relay-wide one only an instance admin; a team's, a member with the route's permission). */
async function writableRule(c: Context<AppEnv>, id: string): Promise<RuleWithTeam> {
  const found = await visibleRule(c, id);
  if (found.teamId === null) {
    if (!isInstanceAdmin(principalOf(c))) throw relayWideOnly();
  } else assertInTeam(principalOf(c), found.teamId, 'member', () => ruleNotFound(id));
  return found;
}

/** A stored rule as AlertRuleInputSchema reads one (channels aside: they are sealed, and no cross-field check reads them). */
function inputOf(r: AlertRuleRow): Record<string, unknown> {
  const input: Record<string, unknown> = {
    name: r.name,
    metric: r.metric,
    target: r.target ?? undefined,
    warning: r.warning ?? undefined,
    critical: r.critical ?? undefined,
    level: r.level ?? undefined,
    hold_seconds: r.holdSeconds,
    recovery_seconds: r.recoverySeconds,
    team_id: r.teamId,
    device_id: r.deviceId,
    enabled: r.enabled,
    channels: [],
    resend_minutes: r.resendMinutes ?? undefined,
    resend_cap: r.resendCap,
    quiet_hours: r.quietHours,
  };
  return input;
}

const scopeDetails = (r: Pick<AlertRuleRow, 'teamId' | 'deviceId'>) => (r.deviceId ? { device_id: r.deviceId } : r.teamId ? { team_id: r.teamId } : { scope: 'relay' });

function tellLater(c: Context<AppEnv>, scopes: RuleScope[]): void {
  c.executionCtx.waitUntil(tellHubs(c.env, scopes));
}

export function registerAlertRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/alert-rules',
      tags,
      summary: 'Alert rules: the relay-wide ones and those of the teams you are in',
      security,
      ...read,
      responses: { 200: json(AlertRuleList, 'The rules, by name'), ...authErrors },
    }),
    async (c) => c.json({ rules: (await listRules(c.env.DB, visibleTeams(principalOf(c)))).map((r) => ruleView(r.rule)) }, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/alert-rules',
      tags,
      summary: 'Create an alert rule',
      description:
        'A rule with neither team_id nor device_id is relay-wide (every device; instance admins only); with team_id, every device of that team; with device_id, that device (and its team). ' +
        'A threshold rule (cpu, memory, disk, temperature, load) fires when the average over hold_seconds reaches warning or critical and resolves when the average over recovery_seconds (default: the hold) is back under the threshold it fired at. ' +
        'offline, process and container rules fire at `level` once the device has been away, or the process (container) missing, for hold_seconds. Channels are sealed and never shown again: only their type and host.',
      security,
      ...write,
      request: { body: { required: true, content: { 'application/json': { schema: AlertRuleInput } } } },
      responses: { 201: json(AlertRule, 'Created'), ...authErrors, ...notFoundError, 422: errorResponse("team_id is not the device's team (RULE_SCOPE_MISMATCH)") },
    }),
    async (c) => {
      const input = c.req.valid('json');
      const scope = await authorizeScope(c, input.team_id, input.device_id);
      const id = randomId(10);
      const { sealed, views } = await sealChannels(c.env, id, input.channels);
      const row: AlertRuleRow = {
        id,
        name: input.name,
        metric: input.metric,
        target: input.target ?? null,
        warning: input.warning ?? null,
        critical: input.critical ?? null,
        level: input.level ?? null,
        holdSeconds: input.hold_seconds,
        recoverySeconds: input.recovery_seconds ?? input.hold_seconds,
        teamId: scope.teamId,
        deviceId: scope.deviceId,
        enabled: input.enabled,
        channelsSealed: sealed,
        channelViews: views,
        resendMinutes: input.resend_minutes ?? null,
        resendCap: input.resend_cap,
        quietHours: input.quiet_hours ?? null,
        createdBy: principalOf(c).userId,
        createdAt: Date.now(),
        updatedAt: null,
      };
      await insertRule(c.env.DB, row);
      audit(c, { action: 'alert_rule.create', targetType: 'alert_rule', targetId: id, teamId: row.teamId, details: { name: row.name, metric: row.metric, ...scopeDetails(row), channels: views.map((v) => v.type) } });
      tellLater(c, [scopeOf(row)]);
      return c.json(ruleView(row), 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/alert-rules/{id}',
      tags,
      summary: 'One alert rule',
      security,
      ...read,
      request: { params: IdParam },
      responses: { 200: json(AlertRule, 'The rule'), ...authErrors, ...notFoundError },
    }),
    async (c) => c.json(ruleView((await visibleRule(c, c.req.valid('param').id)).rule), 200),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/api/v1/alert-rules/{id}',
      tags,
      summary: 'Change an alert rule',
      description:
        'Any of the fields; what is left out is kept, and the rule as merged is checked as a new one would be. `null` clears target, warning, critical, level, resend_minutes, quiet_hours, and recovery_seconds (back to the hold). ' +
        'Naming team_id or device_id moves the rule (what is left out is kept): a device_id makes it that device\'s (in the device\'s team), device_id null makes a device\'s rule its team\'s, team_id null on a team\'s rule makes it relay-wide (instance admins only). ' +
        'The rule must be yours to change where it is and where it goes. channels, when given, replace the old ones.',
      security,
      ...write,
      request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: AlertRulePatch } } } },
      responses: { 200: json(AlertRule, 'Changed'), ...authErrors, ...notFoundError, 422: errorResponse("team_id is not the device's team (RULE_SCOPE_MISMATCH)") },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const patch = c.req.valid('json');
      const { rule: old } = await writableRule(c, id);
      const merged = { ...inputOf(old) };
      for (const [k, v] of Object.entries(patch)) merged[k] = v === null && k !== 'quiet_hours' && k !== 'team_id' && k !== 'device_id' ? undefined : v;
      // A recovery hold equal to the hold was (as far as anyone can tell) the default: it follows a new hold.
      if (patch.hold_seconds !== undefined && patch.recovery_seconds === undefined && old.recoverySeconds === old.holdSeconds) merged.recovery_seconds = undefined;
      const checked = S.AlertRuleInputSchema.safeParse(merged);
      if (!checked.success) throw invalidRequest('json', checked.error);
      const next = checked.data;
      // A move names device_id, team_id or both; what it leaves out is kept, except that a rule moved onto a device takes the device's team.
      const moved = patch.team_id !== undefined || patch.device_id !== undefined;
      const deviceId = patch.device_id !== undefined ? patch.device_id : old.deviceId;
      const teamId = patch.team_id !== undefined ? patch.team_id : deviceId ? undefined : old.teamId;
      const scope = moved ? await authorizeScope(c, teamId, deviceId) : { teamId: old.teamId, deviceId: old.deviceId };
      const set: Partial<AlertRuleRow> = {
        name: next.name,
        metric: next.metric,
        target: next.target ?? null,
        warning: next.warning ?? null,
        critical: next.critical ?? null,
        level: next.level ?? null,
        holdSeconds: next.hold_seconds,
        recoverySeconds: next.recovery_seconds ?? next.hold_seconds,
        teamId: scope.teamId,
        deviceId: scope.deviceId,
        enabled: next.enabled,
        resendMinutes: next.resend_minutes ?? null,
        resendCap: next.resend_cap,
        quietHours: next.quiet_hours ?? null,
        updatedAt: Date.now(),
      };
      if (patch.channels !== undefined) {
        const { sealed, views } = await sealChannels(c.env, id, patch.channels);
        set.channelsSealed = sealed;
        set.channelViews = views;
      }
      const row = await updateRule(c.env.DB, id, set);
      if (!row) throw ruleNotFound(id);
      audit(c, { action: 'alert_rule.update', targetType: 'alert_rule', targetId: id, teamId: row.teamId ?? old.teamId, details: { name: row.name, fields: Object.keys(patch).sort(), ...scopeDetails(row) } });
      tellLater(c, moved ? [scopeOf(old), scopeOf(row)] : [scopeOf(row)]);
      return c.json(ruleView(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/v1/alert-rules/{id}',
      tags,
      summary: 'Delete an alert rule, with its alerts and their deliveries',
      security,
      ...write,
      request: { params: IdParam },
      responses: { 204: { description: 'Deleted' }, ...authErrors, ...notFoundError },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { rule } = await writableRule(c, id);
      if (!(await deleteRule(c.env.DB, id))) throw ruleNotFound(id);
      audit(c, { action: 'alert_rule.delete', targetType: 'alert_rule', targetId: id, teamId: rule.teamId, details: { name: rule.name, metric: rule.metric, ...scopeDetails(rule) } });
      tellLater(c, [scopeOf(rule)]);
      return c.body(null, 204);
    },
  );

  // ---- alerts (Tyto's three routes, and one alert) ----

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/alerts',
      tags,
      summary: 'Current alerts and the relay-wide thresholds (Tyto)',
      description: `Alerts of the teams you are in, newest first (at most ${MAX_ALERTS}): firing ones unless state=resolved; \`config\` holds the relay-wide rule's warning and critical per metric.`,
      security,
      ...read,
      request: { query: AlertsQuery },
      responses: { 200: json(TytoAlerts, 'Alerts and config'), ...authErrors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const rows = await listAlerts(c.env.DB, visibleTeams(principalOf(c)), { state: q.state, agentId: q.agent_id, level: q.level });
      return c.json({ alerts: rows.map(alertOf), config: await configOf(c.env.DB) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/alerts/config',
      tags,
      summary: 'Set the relay-wide thresholds (Tyto)',
      description:
        "For each metric named, the relay-wide rule of that metric gets these warning and critical thresholds (its hold, channels and the rest are kept); a metric without one gets a new rule (hold 5 min). Instance admins only. Answers with the config as GET /api/v1/alerts shows it.",
      security,
      ...write,
      request: { body: { required: true, content: { 'application/json': { schema: AlertConfig } } } },
      responses: { 200: json(AlertConfigView, 'The thresholds now'), ...authErrors },
    }),
    async (c) => {
      const p = principalOf(c);
      if (!isInstanceAdmin(p)) throw forbidden('The relay-wide thresholds are for instance admins', { required: '*' });
      const config = c.req.valid('json');
      const existing = await relayThresholdRules(c.env.DB);
      const now = Date.now();
      for (const metric of S.THRESHOLD_METRICS) {
        const t = config[metric];
        if (!t) continue;
        const old = existing.get(metric);
        if (old) {
          await updateRule(c.env.DB, old.id, { warning: t.warning, critical: t.critical, updatedAt: now });
          audit(c, { action: 'alert_rule.update', targetType: 'alert_rule', targetId: old.id, teamId: null, details: { name: old.name, fields: ['critical', 'warning'], scope: 'relay' } });
          continue;
        }
        const id = randomId(10);
        const name = `${metric[0]!.toUpperCase()}${metric.slice(1)} (relay-wide)`;
        await insertRule(c.env.DB, {
          id,
          name,
          metric,
          target: null,
          warning: t.warning,
          critical: t.critical,
          level: null,
          holdSeconds: 300,
          recoverySeconds: 300,
          teamId: null,
          deviceId: null,
          enabled: true,
          channelsSealed: null,
          channelViews: [],
          resendMinutes: null,
          resendCap: 5,
          quietHours: null,
          createdBy: p.userId,
          createdAt: now,
          updatedAt: null,
        });
        audit(c, { action: 'alert_rule.create', targetType: 'alert_rule', targetId: id, teamId: null, details: { name, metric, scope: 'relay', channels: [] } });
      }
      tellLater(c, ['relay']);
      return c.json({ config: await configOf(c.env.DB) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/alerts/{id}',
      tags,
      summary: 'One alert',
      security,
      ...read,
      request: { params: IdParam },
      responses: { 200: json(Alert, 'The alert'), ...authErrors, ...notFoundError },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const row = await getAlert(c.env.DB, id);
      if (!row || !mayActIn(principalOf(c), row.teamId)) throw alertNotFound(id);
      return c.json(alertOf(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/alerts/{id}/acknowledge',
      tags,
      summary: 'Acknowledge an alert (Tyto): its notifications are not resent',
      description: 'Idempotent: acknowledging an acknowledged alert answers with it unchanged (who acknowledged it first, and when).',
      security,
      ...allows('alerts:acknowledge'),
      request: { params: IdParam },
      responses: { 200: json(Alert, 'The alert, acknowledged'), ...authErrors, ...notFoundError },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const p = principalOf(c);
      const found = await getAlert(c.env.DB, id);
      if (!found) throw alertNotFound(id);
      assertInTeam(p, found.teamId, 'member', () => alertNotFound(id));
      const { row, changed } = await acknowledgeAlert(c.env.DB, id, p.userId, Date.now());
      if (!row) throw alertNotFound(id);
      if (changed) {
        audit(c, { action: 'alert.acknowledge', targetType: 'alert', targetId: id, teamId: row.teamId, details: { rule_id: row.ruleId, device_id: row.deviceId, metric: row.metric, level: row.level } });
        c.executionCtx.waitUntil(hubFor(c.env, row.deviceId).alertAcknowledged(id).catch((e: unknown) => console.error('DeviceHub.alertAcknowledged failed', row.deviceId, e)));
      }
      return c.json(alertOf(row), 200);
    },
  );
}

/** Tyto's config: each threshold metric's relay-wide warning and critical. */
async function configOf(db: D1Database): Promise<Record<string, { warning: number | null; critical: number | null }>> {
  const out: Record<string, { warning: number | null; critical: number | null }> = {};
  for (const [metric, r] of await relayThresholdRules(db)) out[metric] = { warning: r.warning, critical: r.critical };
  return out;
}
