// Notifications through the API: the delivery record (GET /api/v1/alert-deliveries, each
// delivery the team's whose alert it was), a rule's test (POST /api/v1/alert-rules/{id}/test: one
// `test` notification to each of its channels, sent from the Worker once each and recorded) and a
// channel tried before it is saved (POST /api/v1/alerts/test-channel: sent once, recorded
// nowhere, the outcome is the answer). Channels are never shown beyond their type and host, and
// a target the relay does not send to (a local or private address, unless
// ALERT_ALLOW_PRIVATE_TARGETS) is refused before anything is sent: the test routes would
// otherwise let whoever may write rules make the relay fetch any URL they like.
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { App } from '../openapi.ts';
import type { AppEnv } from '../app-env.ts';
import { authErrors, errorResponse, notFoundError } from '../openapi.ts';
import { allows } from '../auth/access.ts';
import { principalOf } from '../auth/middleware.ts';
import { deviceTeam, isInstanceAdmin, mayActIn, visibleTeams } from '../auth/scope.ts';
import { forbidden, notFound } from '../errors.ts';
import { json, security } from '../devices/api-schemas.ts';
import { audit } from '../audit.ts';
import { iso } from '../../shared/db/index.ts';
import { assertTargets, openChannels } from '../alerts/channels.ts';
import { DeliverySchema, type ChannelView, type Delivery, type DeliveryEvent, type DeliveryStatus } from '../../shared/api/alerts.ts';
import { ChannelTestResultSchema, ChannelTestSchema, DeliveryListQuerySchema, DeliveryPageSchema, RuleTestResultSchema } from '../../shared/api/alert-deliveries.ts';
import { ATTEMPT_TIMEOUT_MS, allowsPrivateTargets, attempt, channelRequest, channelView, notification } from '../../durable-objects/capabilities/alert-notify.ts';

const tags = ['alerts'];
const Delivery = DeliverySchema.openapi('AlertDelivery');
const RuleIdParam = z.object({ id: z.string().min(1).max(64).openapi({ param: { name: 'id', in: 'path' } }) });

interface DeliveryDbRow {
  id: string;
  alert_id: string | null;
  rule_id: string | null;
  channel: string;
  event: DeliveryEvent;
  status: DeliveryStatus;
  attempts: number;
  response_status: number | null;
  error: string | null;
  created_at: number;
  updated_at: number | null;
  next_attempt_at: number | null;
}

function present(r: DeliveryDbRow): Delivery {
  return {
    id: r.id,
    alert_id: r.alert_id,
    rule_id: r.rule_id,
    channel: JSON.parse(r.channel) as ChannelView,
    event: r.event,
    status: r.status,
    attempts: r.attempts,
    response_status: r.response_status,
    error: r.error,
    created_at: iso(r.created_at)!,
    updated_at: iso(r.updated_at),
    // Only a pending delivery has a next attempt.
    next_attempt_at: r.status === 'pending' ? iso(r.next_attempt_at) : null,
  };
}

interface RuleDbRow {
  id: string;
  name: string;
  team_id: string | null;
  device_id: string | null;
  channels_sealed: string | null;
}

/**
 * The rule, if the caller may test it: a relay-wide rule is an instance admin's (403 for anyone
 * else, who may see it); a team's or a device's rule needs alerts:write in that team, and is a
 * 404 for whoever is not in it, so rule ids cannot be probed.
 */
async function testableRule(c: Context<AppEnv>, id: string): Promise<{ rule: RuleDbRow; teamId: string | null; device: { id: string; name: string } | null }> {
  const p = principalOf(c);
  const rule = await c.env.DB.prepare('SELECT id, name, team_id, device_id, channels_sealed FROM alert_rules WHERE id = ?1').bind(id).first<RuleDbRow>();
  if (!rule) throw notFound('Alert rule', { id });
  const teamId = rule.team_id ?? (rule.device_id ? await deviceTeam(c.env, rule.device_id) : null);
  if (teamId === null) {
    if (rule.device_id) throw notFound('Alert rule', { id });
    if (!isInstanceAdmin(p)) throw forbidden('Only an instance admin may test a relay-wide rule', { id });
  } else if (!mayActIn(p, teamId)) {
    throw notFound('Alert rule', { id });
  }
  const device = rule.device_id ? await c.env.DB.prepare('SELECT id, name FROM devices WHERE id = ?1').bind(rule.device_id).first<{ id: string; name: string }>() : null;
  return { rule, teamId, device };
}

export function registerAlertDeliveryRoutes(app: App) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/alert-deliveries',
      tags,
      summary: 'Notification deliveries, newest first: each attempt count, status, answer and error (a channel shows only its type and host)',
      security,
      ...allows('alerts:read'),
      request: { query: DeliveryListQuerySchema },
      responses: { 200: json(DeliveryPageSchema.openapi('AlertDeliveryPage'), 'One page of deliveries'), ...authErrors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const teams = visibleTeams(principalOf(c));
      const where: string[] = [];
      const binds: unknown[] = [];
      const bind = (v: unknown) => {
        binds.push(v);
        return `?${binds.length}`;
      };
      if (teams !== null) {
        if (!teams.length) return c.json({ deliveries: [], total: 0, limit: q.limit, offset: q.offset }, 200);
        // json_each: one bound value however many teams the caller is in.
        where.push(`team_id IN (SELECT value FROM json_each(${bind(JSON.stringify(teams))}))`);
      }
      if (q.alert_id) where.push(`alert_id = ${bind(q.alert_id)}`);
      if (q.rule_id) where.push(`rule_id = ${bind(q.rule_id)}`);
      if (q.status) where.push(`status = ${bind(q.status)}`);
      const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
      const [rows, count] = await c.env.DB.batch([
        c.env.DB.prepare(`SELECT * FROM alert_deliveries ${clause} ORDER BY created_at DESC, id DESC LIMIT ${q.limit} OFFSET ${q.offset}`).bind(...binds),
        c.env.DB.prepare(`SELECT count(*) AS total FROM alert_deliveries ${clause}`).bind(...binds),
      ]);
      return c.json({ deliveries: (rows!.results as unknown as DeliveryDbRow[]).map(present), total: (count!.results[0] as { total: number }).total, limit: q.limit, offset: q.offset }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/alert-rules/{id}/test',
      tags,
      summary: "Send a test notification to each of a rule's channels, once each, and record the deliveries",
      description: 'A relay-wide rule needs an instance admin. Each channel gets one attempt (no retries); the answer lists the deliveries with their outcome.',
      security,
      ...allows('alerts:write'),
      request: { params: RuleIdParam },
      responses: {
        200: json(RuleTestResultSchema.openapi('AlertRuleTestResult'), 'One delivery per channel'),
        ...authErrors,
        ...notFoundError,
        422: errorResponse('A channel points where this relay does not send (CHANNEL_TARGET_REFUSED)'),
        503: errorResponse("The rule's channels could not be opened (SECRETS_UNAVAILABLE)"),
      },
    }),
    async (c) => {
      const { rule, teamId, device } = await testableRule(c, c.req.valid('param').id);
      const channels = await openChannels(c.env, rule.id, rule.channels_sealed);
      assertTargets(c.env, channels);
      const now = Date.now();
      const n = notification({ event: 'test', alert: null, rule: { id: rule.id, name: rule.name }, device, now });
      const results = await Promise.all(channels.map((ch) => attempt(channelRequest(ch, n), ATTEMPT_TIMEOUT_MS, { allowPrivate: allowsPrivateTargets(c.env) })));
      const done = Date.now();
      const rows: DeliveryDbRow[] = channels.map((ch, i) => ({
        id: crypto.randomUUID(),
        alert_id: null,
        rule_id: rule.id,
        channel: JSON.stringify(channelView(ch)),
        event: 'test',
        status: results[i]!.ok ? 'delivered' : 'given_up',
        attempts: 1,
        response_status: results[i]!.status,
        error: results[i]!.error,
        created_at: now,
        updated_at: done,
        next_attempt_at: null,
      }));
      if (rows.length) {
        await c.env.DB.batch(
          rows.map((r, i) =>
            c.env.DB.prepare(
              `INSERT INTO alert_deliveries (id, alert_id, rule_id, team_id, channel_index, channel, event, status, attempts, response_status, error, created_at, updated_at, next_attempt_at)
               VALUES (?1, NULL, ?2, ?3, ?4, ?5, 'test', ?6, 1, ?7, ?8, ?9, ?10, NULL)`,
            ).bind(r.id, rule.id, teamId, i, r.channel, r.status, r.response_status, r.error, r.created_at, r.updated_at),
          ),
        );
      }
      audit(c, { action: 'alert_rule.test', targetType: 'alert_rule', targetId: rule.id, teamId, details: { channels: rows.length, delivered: rows.filter((r) => r.status === 'delivered').length } });
      return c.json({ deliveries: rows.map(present) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/alerts/test-channel',
      tags,
      summary: 'Try a channel before saving it: one test notification, one attempt, nothing recorded',
      security,
      ...allows('alerts:write'),
      request: { body: { required: true, content: { 'application/json': { schema: ChannelTestSchema.openapi('AlertChannelTest') } } } },
      responses: {
        200: json(ChannelTestResultSchema.openapi('AlertChannelTestResult'), 'The outcome (a failed send is still a 200: the answer says how it failed)'),
        ...authErrors,
        422: errorResponse('The channel points where this relay does not send (CHANNEL_TARGET_REFUSED)'),
      },
    }),
    async (c) => {
      const { channel } = c.req.valid('json');
      assertTargets(c.env, [channel]);
      const n = notification({ event: 'test', alert: null, rule: null, device: null, now: Date.now() });
      const r = await attempt(channelRequest(channel, n), ATTEMPT_TIMEOUT_MS, { allowPrivate: allowsPrivateTargets(c.env) });
      const view = channelView(channel);
      audit(c, { action: 'alert_channel.test', targetType: 'alert_channel', targetId: null, details: { type: view.type, host: view.host, delivered: r.ok, status: r.status } });
      return c.json({ channel: view, delivered: r.ok, response_status: r.status, error: r.error }, 200);
    },
  );
}
