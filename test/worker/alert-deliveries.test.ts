// The hub's deliveries with a clock this test controls: a real DeviceHub's SQLite and the real
// D1, the rule's channels sealed as the rules routes seal them, and a sender that answers as
// told and records what it was asked to send (the real HTTP sending is test/e2e/alert-webhooks).
// Retries follow the backoff and stop at DELIVERY_ATTEMPTS; quiet hours hold notifications and
// drop them when nothing is left to say; resends stop at the cap and at an acknowledgement; the
// deliveries route shows what happened, to the alert's team only, without a secret.
import { env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { DELIVERY_ATTEMPTS, type Alert, type Channel, type QuietHours } from '../../shared/api/alerts.ts';
import type { AlertRuleRow } from '../../shared/db/schema.ts';
import { AlertDeliveries, BACKOFF_MS, quietUntil, type Sender } from '../../durable-objects/capabilities/alert-deliveries.ts';
import type { AttemptResult, ChannelRequest } from '../../durable-objects/capabilities/alert-notify.ts';
import { ALERT_NOTIFY } from '../../durable-objects/capabilities/alerts.ts';
import type { HubContext } from '../../durable-objects/capabilities/types.ts';
import { sealChannels } from '../../worker/alerts/channels.ts';
import { randomId } from '../../worker/auth/crypto.ts';
import { TEST_TEAM, api, userWithKey } from './helpers.ts';
import { insertDevice } from './device-helpers.ts';

const SECRET_PATH = '/services/T000/B000/sekritWebhookPath';
const NTFY_TOKEN = 'tk_verysecrettoken42';
const SLACK_URL = `https://hooks.slack.example${SECRET_PATH}`;
const NTFY_URL = 'https://ntfy.example/pirelay-topic-secret';
const CHANNELS: Channel[] = [
  { type: 'slack', url: SLACK_URL },
  { type: 'ntfy', url: NTFY_URL, token: NTFY_TOKEN },
];

/** A sender that answers each request with the next of `script` (the last one repeats) and records it. */
function scripted(script: AttemptResult[]) {
  const calls: { req: ChannelRequest; timeoutMs: number }[] = [];
  const send: Sender = async (req, timeoutMs) => {
    calls.push({ req, timeoutMs });
    return script[Math.min(calls.length - 1, script.length - 1)]!;
  };
  return { calls, send };
}
const OK: AttemptResult = { ok: true, status: 200, error: null, retry: false };
const DOWN: AttemptResult = { ok: false, status: 503, error: 'hooks.slack.example answered 503: busy', retry: true };
const GONE: AttemptResult = { ok: false, status: 404, error: 'hooks.slack.example answered 404: no_service', retry: false };

interface Setup {
  deviceId: string;
  rule: AlertRuleRow;
  alert: (over?: Partial<Alert>) => Promise<Alert>;
}

async function setup(over: Partial<AlertRuleRow> = {}, channels: Channel[] = CHANNELS.slice(0, 1), team = TEST_TEAM): Promise<Setup> {
  const deviceId = await insertDevice({ team });
  const id = `rule_${randomId(6)}`;
  const { sealed, views } = await sealChannels(env, id, channels);
  const rule: AlertRuleRow = {
    id, name: 'High CPU', metric: 'cpu', target: null, warning: 80, critical: 90, level: null, holdSeconds: 60, recoverySeconds: 60,
    teamId: team, deviceId: null, enabled: true, channelsSealed: sealed, channelViews: views, resendMinutes: null, resendCap: 5,
    quietHours: null, createdBy: null, createdAt: Date.now(), updatedAt: null, ...over,
  };
  await env.DB.prepare(
    `INSERT INTO alert_rules (id, name, metric, warning, critical, hold_seconds, recovery_seconds, team_id, enabled, channels_sealed, channel_views, resend_minutes, resend_cap, quiet_hours, created_at)
     VALUES (?1, ?2, 'cpu', 80, 90, 60, 60, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9)`,
  ).bind(rule.id, rule.name, team, sealed, JSON.stringify(views), rule.resendMinutes, rule.resendCap, rule.quietHours ? JSON.stringify(rule.quietHours) : null, rule.createdAt).run();
  const alert = async (o: Partial<Alert> = {}): Promise<Alert> => {
    const a: Alert = {
      id: `al_${randomId(6)}`, type: 'cpu', level: 'critical', value: 97, threshold: 90, agent_id: deviceId, created_at: new Date().toISOString(), acknowledged: false,
      rule_id: rule.id, team_id: team, state: 'firing', resolved_at: null, acknowledged_at: null, acknowledged_by: null, message: 'cpu 97 % ≥ 90 %',
      cause: { processes: [{ pid: 7, name: 'stress-ng', cpu: 95, memory: 1 << 20 }] }, ...o,
    };
    await env.DB.prepare(`INSERT INTO alerts (id, rule_id, device_id, team_id, metric, level, value, threshold, message, cause, state, created_at) VALUES (?1, ?2, ?3, ?4, 'cpu', 'critical', 97, 90, 'm', '{}', 'firing', ?5)`)
      .bind(a.id, rule.id, deviceId, team, Date.now()).run();
    return a;
  };
  return { deviceId, rule, alert };
}

/** Runs `fn` inside the device's real hub, with a HubContext whose deadlines this test reads. */
async function inHub(deviceId: string, fn: (hub: HubContext, deadlines: Map<string, number>) => Promise<void>) {
  const stub = env.DEVICE_HUB.get(env.DEVICE_HUB.idFromName(deviceId));
  await runInDurableObject(stub, async (_instance, state) => {
    const deadlines = new Map<string, number>();
    const hub = { env, state, deviceId, at: async (n: string, w: number) => void deadlines.set(n, w), when: async (n: string) => deadlines.get(n) ?? null } as unknown as HubContext;
    await fn(hub, deadlines);
  });
}

interface Row { id: string; status: string; attempts: number; response_status: number | null; error: string | null; next_attempt_at: number | null; event: string; channel: string; team_id: string | null }
const rowsOf = async (alertId: string) => (await env.DB.prepare('SELECT * FROM alert_deliveries WHERE alert_id = ? ORDER BY created_at, channel_index').bind(alertId).all<Row>()).results;

describe('delivery with retries', () => {
  it('one row per channel, pending and due now; the ALERT_NOTIFY deadline moves to it', async () => {
    const s = await setup({}, CHANNELS);
    const a = await s.alert();
    const { calls, send } = scripted([OK]);
    const t0 = Date.parse('2026-12-01T12:00:00Z');
    await inHub(s.deviceId, async (hub, deadlines) => {
      const d = new AlertDeliveries(send);
      deadlines.set(ALERT_NOTIFY, t0 + 3_600_000);
      await d.enqueue(hub, { event: 'fired', alert: a, rule: s.rule, deviceName: 'pi-kitchen' }, t0);
      expect(deadlines.get(ALERT_NOTIFY)).toBe(t0);
      const rows = await rowsOf(a.id);
      expect(rows.map((r) => [r.status, r.attempts, r.next_attempt_at, r.event, r.team_id])).toEqual([['pending', 0, t0, 'fired', TEST_TEAM], ['pending', 0, t0, 'fired', TEST_TEAM]]);
      expect(rows.map((r) => JSON.parse(r.channel))).toEqual([{ type: 'slack', host: 'hooks.slack.example' }, { type: 'ntfy', host: 'ntfy.example' }]);
      await d.run(hub, t0);
      expect(calls.map((c) => c.req.url)).toEqual([SLACK_URL, NTFY_URL]);
      expect(calls.every((c) => c.timeoutMs === 10_000)).toBe(true);
      expect(calls[1]!.req.init.headers.authorization).toBe(`Bearer ${NTFY_TOKEN}`);
      expect((await rowsOf(a.id)).map((r) => [r.status, r.attempts, r.response_status, r.next_attempt_at])).toEqual([['delivered', 1, 200, null], ['delivered', 1, 200, null]]);
    });
  });

  it('a target failing twice then answering: 3 attempts, 10 s then 30 s apart, delivered', async () => {
    const s = await setup();
    const a = await s.alert();
    const { calls, send } = scripted([DOWN, DOWN, OK]);
    const t0 = Date.parse('2026-12-01T12:00:00Z');
    await inHub(s.deviceId, async (hub, deadlines) => {
      const d = new AlertDeliveries(send);
      await d.enqueue(hub, { event: 'fired', alert: a, rule: s.rule, deviceName: 'pi' }, t0);
      await d.run(hub, t0);
      let [row] = await rowsOf(a.id);
      expect([row!.status, row!.attempts, row!.response_status, row!.error, row!.next_attempt_at]).toEqual(['pending', 1, 503, DOWN.error, t0 + BACKOFF_MS[0]]);
      expect(deadlines.get(ALERT_NOTIFY)).toBe(t0 + 10_000);
      await d.run(hub, t0 + 5_000);
      expect(calls).toHaveLength(1);
      await d.run(hub, t0 + 10_000);
      [row] = await rowsOf(a.id);
      expect([row!.status, row!.attempts, row!.next_attempt_at]).toEqual(['pending', 2, t0 + 10_000 + 30_000]);
      expect(deadlines.get(ALERT_NOTIFY)).toBe(t0 + 40_000);
      await d.run(hub, t0 + 40_000);
      [row] = await rowsOf(a.id);
      expect([row!.status, row!.attempts, row!.response_status, row!.error, row!.next_attempt_at]).toEqual(['delivered', 3, 200, null, null]);
      expect(calls).toHaveLength(3);
    });
  });

  it('given up after DELIVERY_ATTEMPTS, recorded, and shown by GET /api/v1/alert-deliveries to the team without a secret', async () => {
    const s = await setup({}, CHANNELS);
    const a = await s.alert();
    const { calls, send } = scripted([DOWN]);
    let t = Date.parse('2026-12-01T12:00:00Z');
    await inHub(s.deviceId, async (hub) => {
      const d = new AlertDeliveries(send);
      await d.enqueue(hub, { event: 'fired', alert: a, rule: s.rule, deviceName: 'pi' }, t);
      await d.run(hub, t);
      for (const wait of BACKOFF_MS) await d.run(hub, (t += wait));
      await d.run(hub, t + 3_600_000);
    });
    expect(calls).toHaveLength(2 * DELIVERY_ATTEMPTS);
    expect((await rowsOf(a.id)).map((r) => [r.status, r.attempts, r.next_attempt_at])).toEqual([['given_up', DELIVERY_ATTEMPTS, null], ['given_up', DELIVERY_ATTEMPTS, null]]);

    const viewer = await userWithKey(['viewer']);
    const res = await api(`/api/v1/alert-deliveries?alert_id=${a.id}&status=given_up`, { key: viewer.key });
    const text = await res.text();
    expect(res.status).toBe(200);
    const page = JSON.parse(text);
    expect(page.total).toBe(2);
    expect(page.deliveries[0]).toMatchObject({ alert_id: a.id, rule_id: s.rule.id, status: 'given_up', attempts: 5, response_status: 503, event: 'fired', next_attempt_at: null });
    expect(page.deliveries.map((d: { channel: unknown }) => d.channel)).toEqual(expect.arrayContaining([{ type: 'slack', host: 'hooks.slack.example' }, { type: 'ntfy', host: 'ntfy.example' }]));
    for (const secret of [SECRET_PATH, 'sekritWebhookPath', NTFY_TOKEN, 'pirelay-topic-secret']) expect(text).not.toContain(secret);

    // Another team's member sees none of it, even asking for it by id; paging works.
    await env.DB.prepare("INSERT OR IGNORE INTO teams (id, name, require_2fa, created_at, updated_at) VALUES ('other-team', 'Other', 0, 0, 0)").run();
    const outsider = await userWithKey(['operator'], undefined, 'other-team');
    const theirs = await (await api(`/api/v1/alert-deliveries?alert_id=${a.id}`, { key: outsider.key })).json<{ total: number; deliveries: unknown[] }>();
    expect(theirs).toMatchObject({ total: 0, deliveries: [] });
    const paged = await (await api(`/api/v1/alert-deliveries?alert_id=${a.id}&limit=1&offset=1`, { key: viewer.key })).json<{ total: number; deliveries: unknown[]; limit: number; offset: number }>();
    expect(paged).toMatchObject({ total: 2, limit: 1, offset: 1 });
    expect(paged.deliveries).toHaveLength(1);
    expect((await api('/api/v1/alert-deliveries?status=lost', { key: viewer.key })).status).toBe(400);
  });

  it("an answer that will not change (Slack's 404 for a dead webhook) is given up at once", async () => {
    const s = await setup();
    const a = await s.alert();
    const { calls, send } = scripted([GONE]);
    const t0 = Date.parse('2026-12-01T12:00:00Z');
    await inHub(s.deviceId, async (hub) => {
      const d = new AlertDeliveries(send);
      await d.enqueue(hub, { event: 'fired', alert: a, rule: s.rule, deviceName: 'pi' }, t0);
      await d.run(hub, t0);
      await d.run(hub, t0 + 600_000);
    });
    expect(calls).toHaveLength(1);
    expect((await rowsOf(a.id)).map((r) => [r.status, r.attempts, r.response_status, r.error])).toEqual([['given_up', 1, 404, GONE.error]]);
  });
});

describe('runs that overlap', () => {
  it('two runs at once attempt each delivery once', async () => {
    const s = await setup({}, CHANNELS);
    const a = await s.alert();
    const calls: string[] = [];
    const slow: Sender = async (req) => {
      calls.push(req.url);
      await new Promise((r) => setTimeout(r, 50));
      return OK;
    };
    const t0 = Date.parse('2026-12-01T12:00:00Z');
    await inHub(s.deviceId, async (hub) => {
      const d = new AlertDeliveries(slow);
      await d.enqueue(hub, { event: 'fired', alert: a, rule: s.rule, deviceName: 'pi' }, t0);
      await Promise.all([d.run(hub, t0), d.run(hub, t0)]);
    });
    expect(calls.sort()).toEqual([NTFY_URL, SLACK_URL].sort());
    expect((await rowsOf(a.id)).map((r) => [r.status, r.attempts])).toEqual([['delivered', 1], ['delivered', 1]]);
  });
});

describe('quiet hours', () => {
  const PARIS_NIGHT: QuietHours = { start: '22:00', end: '07:00', timezone: 'Europe/Paris' };

  it('hold across midnight in the rule\'s time zone; start = end means none', () => {
    // 1 December: Paris is UTC+1.
    expect(quietUntil(PARIS_NIGHT, Date.parse('2026-12-01T22:30:00Z'))).toBe(Date.parse('2026-12-02T06:00:00Z'));
    expect(quietUntil(PARIS_NIGHT, Date.parse('2026-12-02T05:59:30Z'))).toBe(Date.parse('2026-12-02T06:00:00Z'));
    expect(quietUntil(PARIS_NIGHT, Date.parse('2026-12-02T06:00:00Z'))).toBeNull();
    expect(quietUntil(PARIS_NIGHT, Date.parse('2026-12-01T20:59:00Z'))).toBeNull();
    expect(quietUntil(PARIS_NIGHT, Date.parse('2026-12-01T21:00:00Z'))).toBe(Date.parse('2026-12-02T06:00:00Z'));
    const lunch: QuietHours = { start: '12:00', end: '13:30', timezone: 'UTC' };
    expect(quietUntil(lunch, Date.parse('2026-12-01T12:10:00Z'))).toBe(Date.parse('2026-12-01T13:30:00Z'));
    expect(quietUntil(lunch, Date.parse('2026-12-01T13:30:00Z'))).toBeNull();
    expect(quietUntil({ start: '08:00', end: '08:00', timezone: 'UTC' }, Date.parse('2026-12-01T08:00:00Z'))).toBeNull();
    expect(quietUntil(null, Date.now())).toBeNull();
  });

  it('a notification during quiet hours goes out when they end, if the alert still fires; one that resolved meanwhile is suppressed, and so is its resolved', async () => {
    const s = await setup({ quietHours: PARIS_NIGHT });
    const still = await s.alert();
    const over = await s.alert();
    const { calls, send } = scripted([OK]);
    const night = Date.parse('2026-12-01T22:30:00Z');
    const morning = Date.parse('2026-12-02T06:00:00Z');
    await inHub(s.deviceId, async (hub, deadlines) => {
      const d = new AlertDeliveries(send);
      await d.enqueue(hub, { event: 'fired', alert: still, rule: s.rule, deviceName: 'pi' }, night);
      await d.enqueue(hub, { event: 'fired', alert: over, rule: s.rule, deviceName: 'pi' }, night);
      const [held] = await rowsOf(still.id);
      expect([held!.status, held!.next_attempt_at]).toEqual(['pending', morning]);
      expect(held!.error).toContain('quiet hours');
      expect(deadlines.get(ALERT_NOTIFY)).toBe(morning);
      await d.run(hub, night + 60_000);
      expect(calls).toHaveLength(0);
      await d.enqueue(hub, { event: 'resolved', alert: { ...over, state: 'resolved' }, rule: s.rule, deviceName: 'pi' }, night + 3_600_000);
      await d.run(hub, morning);
    });
    expect(calls).toHaveLength(1);
    expect(JSON.parse(calls[0]!.req.init.body).text).toContain('CRITICAL');
    expect((await rowsOf(still.id)).map((r) => [r.event, r.status, r.attempts])).toEqual([['fired', 'delivered', 1]]);
    expect((await rowsOf(over.id)).map((r) => [r.event, r.status, r.attempts])).toEqual([['fired', 'suppressed', 0], ['resolved', 'suppressed', 0]]);
  });
});

describe('resend interval and cap', () => {
  it('a firing, unacknowledged alert is notified again every resend_minutes, up to resend_cap notifications in all', async () => {
    const s = await setup({ resendMinutes: 10, resendCap: 3 });
    const a = await s.alert();
    const { calls, send } = scripted([OK]);
    const t0 = Date.parse('2026-12-01T12:00:00Z');
    const MIN = 60_000;
    await inHub(s.deviceId, async (hub, deadlines) => {
      const d = new AlertDeliveries(send);
      await d.enqueue(hub, { event: 'fired', alert: a, rule: s.rule, deviceName: 'pi' }, t0);
      await d.run(hub, t0);
      expect(deadlines.get(ALERT_NOTIFY)).toBe(t0 + 10 * MIN);
      await d.run(hub, t0 + 5 * MIN);
      expect(calls).toHaveLength(1);
      await d.run(hub, t0 + 10 * MIN);
      expect(calls).toHaveLength(2);
      await d.run(hub, t0 + 20 * MIN);
      await d.run(hub, t0 + 30 * MIN);
      await d.run(hub, t0 + 90 * MIN);
      // The cap holds for an escalation too.
      await d.enqueue(hub, { event: 'escalated', alert: a, rule: s.rule, deviceName: 'pi' }, t0 + 91 * MIN);
      await d.run(hub, t0 + 91 * MIN);
    });
    expect(calls).toHaveLength(3);
    expect(calls.map((c) => JSON.parse(c.req.init.body).text.includes('still firing'))).toEqual([false, true, true]);
    expect((await rowsOf(a.id)).map((r) => [r.event, r.status])).toEqual([['fired', 'delivered'], ['resent', 'delivered'], ['resent', 'delivered']]);
  });

  it('an acknowledged alert is not resent; a resolved one neither, but its resolved goes out even past the cap', async () => {
    const s = await setup({ resendMinutes: 10, resendCap: 1 });
    const acked = await s.alert();
    const resolved = await s.alert();
    const { calls, send } = scripted([OK]);
    const t0 = Date.parse('2026-12-01T12:00:00Z');
    await inHub(s.deviceId, async (hub) => {
      const d = new AlertDeliveries(send);
      await d.enqueue(hub, { event: 'fired', alert: acked, rule: { ...s.rule, resendCap: 5 }, deviceName: 'pi' }, t0);
      await d.enqueue(hub, { event: 'fired', alert: resolved, rule: s.rule, deviceName: 'pi' }, t0);
      await d.run(hub, t0);
      await d.acknowledged(hub, acked.id);
      await d.enqueue(hub, { event: 'resolved', alert: { ...resolved, state: 'resolved' }, rule: s.rule, deviceName: 'pi' }, t0 + 60_000);
      await d.run(hub, t0 + 60_000);
      await d.run(hub, t0 + 3_600_000);
    });
    expect((await rowsOf(acked.id)).map((r) => r.event)).toEqual(['fired']);
    expect((await rowsOf(resolved.id)).map((r) => [r.event, r.status])).toEqual([['fired', 'delivered'], ['resolved', 'delivered']]);
    expect(calls).toHaveLength(3);
  });
});
