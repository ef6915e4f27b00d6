// The alerts API through the Worker: rules CRUD with its scope rules (and the attacks on them: a
// team operator making a relay-wide rule, reading, changing or deleting another team's rule,
// aiming a rule at another team's device; a viewer writing), PATCH re-checking the merged rule,
// channels never shown back, the audit entries, hubs told of a change; Tyto's GET /api/v1/alerts
// and POST /api/v1/alerts/config in the seed's shape; acknowledge (idempotent, another team's
// alert 404, a viewer 403) and one alert.
import { env, runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, joinTeam, TEST_TEAM, userWithKey } from './helpers.ts';
import { eventually, insertDevice } from './device-helpers.ts';
import { hub, insertRule } from './alerts-helpers.ts';
import { AlertRuleSchema, AlertSchema, TytoAlertsSchema } from '../../shared/api/alerts.ts';
import type { AlertsCapability } from '../../durable-objects/capabilities/alerts.ts';
import type { HubContext } from '../../durable-objects/capabilities/types.ts';

const OTHER = 'other-team';
let admin: { key: string; userId: string };
let operator: { key: string; userId: string };
let viewer: { key: string; userId: string };
let outsider: { key: string; userId: string };
let device: string;
let otherDevice: string;

beforeAll(async () => {
  await env.DB.prepare("INSERT OR IGNORE INTO teams (id, name, require_2fa, created_at, updated_at) VALUES (?1, 'Other', 0, 0, 0)").bind(OTHER).run();
  admin = await userWithKey(['admin']);
  operator = await userWithKey(['operator']);
  viewer = await userWithKey(['viewer']);
  outsider = await userWithKey(['operator'], undefined, OTHER);
  device = await insertDevice({ name: 'web-1' });
  otherDevice = await insertDevice({ name: 'theirs', team: OTHER });
});

async function body(res: Response | Promise<Response>, status: number): Promise<any> {
  const r = await res;
  const text = await r.text();
  expect(r.status, text).toBe(status);
  return text ? JSON.parse(text) : null;
}

const cpuRule = (over: Record<string, unknown> = {}) => ({ name: 'CPU busy', metric: 'cpu', warning: 80, critical: 95, hold_seconds: 120, team_id: TEST_TEAM, ...over });

async function auditActions(targetId: string): Promise<string[]> {
  const { results } = await env.DB.prepare('SELECT action FROM audit_log WHERE target_id = ?1 ORDER BY id').bind(targetId).all<{ action: string }>();
  return results.map((r) => r.action);
}

describe('alert rules', () => {
  it('a team operator creates, reads, changes and deletes a team rule; a viewer reads it; each change is audited', async () => {
    const created = await body(api('/api/v1/alert-rules', { key: operator.key, json: cpuRule({ channels: [{ type: 'webhook', url: 'https://hooks.example.com/secret-path?token=abc' }] }) }), 201);
    expect(AlertRuleSchema.parse(created)).toMatchObject({ metric: 'cpu', warning: 80, critical: 95, hold_seconds: 120, recovery_seconds: 120, team_id: TEST_TEAM, device_id: null, enabled: true, resend_cap: 5 });
    expect(created.channels).toEqual([{ type: 'webhook', host: 'hooks.example.com' }]);
    expect(JSON.stringify(created)).not.toContain('secret-path');
    expect((await body(api('/api/v1/alert-rules', { key: viewer.key }), 200)).rules.map((r: { id: string }) => r.id)).toContain(created.id);
    expect(await body(api(`/api/v1/alert-rules/${created.id}`, { key: viewer.key }), 200)).toEqual(created);

    const patched = await body(api(`/api/v1/alert-rules/${created.id}`, { key: operator.key, method: 'PATCH', json: { name: 'CPU very busy', recovery_seconds: 600 } }), 200);
    expect(patched).toMatchObject({ name: 'CPU very busy', warning: 80, critical: 95, hold_seconds: 120, recovery_seconds: 600, channels: created.channels });
    expect(patched.updated_at).not.toBeNull();
    // A new hold with recovery_seconds left out keeps an explicit recovery hold.
    expect(await body(api(`/api/v1/alert-rules/${created.id}`, { key: operator.key, method: 'PATCH', json: { hold_seconds: 60 } }), 200)).toMatchObject({ hold_seconds: 60, recovery_seconds: 600 });
    // null clears a threshold, when the rule keeps another.
    expect(await body(api(`/api/v1/alert-rules/${created.id}`, { key: operator.key, method: 'PATCH', json: { warning: null } }), 200)).toMatchObject({ warning: null, critical: 95 });

    await body(api(`/api/v1/alert-rules/${created.id}`, { key: operator.key, method: 'DELETE' }), 204);
    await body(api(`/api/v1/alert-rules/${created.id}`, { key: operator.key }), 404);
    expect(await auditActions(created.id)).toEqual(['alert_rule.create', 'alert_rule.update', 'alert_rule.update', 'alert_rule.update', 'alert_rule.delete']);
  });

  it('PATCH checks the merged rule as a new one', async () => {
    const r = await body(api('/api/v1/alert-rules', { key: operator.key, json: cpuRule() }), 201);
    const bad = async (json: unknown, path: string) => {
      const e = await body(api(`/api/v1/alert-rules/${r.id}`, { key: operator.key, method: 'PATCH', json }), 400);
      expect(e.code).toBe('VALIDATION_ERROR');
      expect(e.details.issues.map((i: { path: string }) => i.path)).toContain(path);
    };
    await bad({ critical: 50 }, 'critical'); // under the kept warning
    await bad({ metric: 'process' }, 'warning'); // a process rule with thresholds (and no target)
    await bad({ warning: null, critical: null }, 'warning'); // a threshold rule with neither
    await bad({ target: '/home' }, 'target'); // a cpu rule takes no target
    await bad({ hold_seconds: -1 }, 'hold_seconds');
    await bad({ bogus: 1 }, '');
    // Nothing of that was stored.
    expect(await body(api(`/api/v1/alert-rules/${r.id}`, { key: operator.key }), 200)).toMatchObject({ metric: 'cpu', warning: 80, critical: 95, hold_seconds: 120 });
    // Becoming a process rule is fine with the thresholds cleared and a target.
    expect(await body(api(`/api/v1/alert-rules/${r.id}`, { key: operator.key, method: 'PATCH', json: { metric: 'process', target: 'nginx', warning: null, critical: null, level: 'critical' } }), 200)).toMatchObject({
      metric: 'process',
      target: 'nginx',
      warning: null,
      critical: null,
      level: 'critical',
    });
  });

  it('a create with thresholds the wrong way round is a 400', async () => {
    const e = await body(api('/api/v1/alert-rules', { key: operator.key, json: cpuRule({ warning: 90, critical: 80 }) }), 400);
    expect(e.code).toBe('VALIDATION_ERROR');
  });

  it("a device's rule belongs to the device's team", async () => {
    const r = await body(api('/api/v1/alert-rules', { key: operator.key, json: { name: 'nginx up', metric: 'process', target: 'nginx', device_id: device } }), 201);
    expect(r).toMatchObject({ device_id: device, team_id: TEST_TEAM, level: null, hold_seconds: 300 });
    // Naming another team with it: one the caller is in is a mismatch, one they are not in is a 404.
    await env.DB.prepare("INSERT OR IGNORE INTO teams (id, name, require_2fa, created_at, updated_at) VALUES ('second-team', 'Second', 0, 0, 0)").run();
    const inTwo = await userWithKey(['operator']);
    await joinTeam(inTwo.userId, ['operator'], 'second-team');
    const e = await body(api('/api/v1/alert-rules', { key: inTwo.key, json: { name: 'x', metric: 'offline', device_id: device, team_id: 'second-team' } }), 422);
    expect(e.code).toBe('RULE_SCOPE_MISMATCH');
    await body(api('/api/v1/alert-rules', { key: operator.key, json: { name: 'x', metric: 'offline', device_id: device, team_id: OTHER } }), 404);
    // Moves: off the device to its team, and onto the device again.
    expect(await body(api(`/api/v1/alert-rules/${r.id}`, { key: operator.key, method: 'PATCH', json: { device_id: null } }), 200)).toMatchObject({ device_id: null, team_id: TEST_TEAM });
    expect(await body(api(`/api/v1/alert-rules/${r.id}`, { key: operator.key, method: 'PATCH', json: { device_id: device } }), 200)).toMatchObject({ device_id: device, team_id: TEST_TEAM });
    await body(api(`/api/v1/alert-rules/${r.id}`, { key: operator.key, method: 'PATCH', json: { team_id: OTHER } }), 404);
  });

  it('a team operator cannot make a relay-wide rule, nor move a rule to relay-wide', async () => {
    const e = await body(api('/api/v1/alert-rules', { key: operator.key, json: cpuRule({ team_id: undefined }) }), 403);
    expect(e.code).toBe('FORBIDDEN');
    await body(api('/api/v1/alert-rules', { key: operator.key, json: cpuRule({ team_id: null, device_id: null }) }), 403);
    const r = await body(api('/api/v1/alert-rules', { key: operator.key, json: cpuRule() }), 201);
    await body(api(`/api/v1/alert-rules/${r.id}`, { key: operator.key, method: 'PATCH', json: { team_id: null } }), 403);
    expect((await body(api(`/api/v1/alert-rules/${r.id}`, { key: operator.key }), 200)).team_id).toBe(TEST_TEAM);
  });

  it('an admin makes a relay-wide rule; everyone who reads alerts sees it; a team operator cannot change or delete it', async () => {
    const r = await body(api('/api/v1/alert-rules', { key: admin.key, json: cpuRule({ team_id: undefined, name: 'Relay temperature', metric: 'temperature' }) }), 201);
    expect(r).toMatchObject({ team_id: null, device_id: null });
    for (const who of [operator, viewer, outsider]) expect((await body(api('/api/v1/alert-rules', { key: who.key }), 200)).rules.map((x: { id: string }) => x.id)).toContain(r.id);
    await body(api(`/api/v1/alert-rules/${r.id}`, { key: outsider.key }), 200);
    await body(api(`/api/v1/alert-rules/${r.id}`, { key: operator.key, method: 'PATCH', json: { warning: 1 } }), 403);
    await body(api(`/api/v1/alert-rules/${r.id}`, { key: operator.key, method: 'DELETE' }), 403);
    expect((await body(api(`/api/v1/alert-rules/${r.id}`, { key: admin.key }), 200)).warning).toBe(80);
  });

  it("another team's rules and devices do not exist for an operator: 404 to read, change, delete, or aim a rule at", async () => {
    const theirs = await body(api('/api/v1/alert-rules', { key: outsider.key, json: cpuRule({ team_id: OTHER }) }), 201);
    const theirDevice = await body(api('/api/v1/alert-rules', { key: outsider.key, json: { name: 'up', metric: 'offline', device_id: otherDevice } }), 201);
    for (const id of [theirs.id, theirDevice.id]) {
      await body(api(`/api/v1/alert-rules/${id}`, { key: operator.key }), 404);
      await body(api(`/api/v1/alert-rules/${id}`, { key: operator.key, method: 'PATCH', json: { name: 'mine now' } }), 404);
      await body(api(`/api/v1/alert-rules/${id}`, { key: operator.key, method: 'DELETE' }), 404);
    }
    const listed = (await body(api('/api/v1/alert-rules', { key: operator.key }), 200)).rules.map((x: { id: string }) => x.id);
    expect(listed).not.toContain(theirs.id);
    expect(listed).not.toContain(theirDevice.id);
    await body(api('/api/v1/alert-rules', { key: operator.key, json: cpuRule({ team_id: OTHER }) }), 404);
    await body(api('/api/v1/alert-rules', { key: operator.key, json: { name: 'x', metric: 'offline', device_id: otherDevice } }), 404);
    // Nor may a rule of one's own be moved onto theirs.
    const mine = await body(api('/api/v1/alert-rules', { key: operator.key, json: cpuRule() }), 201);
    await body(api(`/api/v1/alert-rules/${mine.id}`, { key: operator.key, method: 'PATCH', json: { device_id: otherDevice } }), 404);
    await body(api(`/api/v1/alert-rules/${mine.id}`, { key: operator.key, method: 'PATCH', json: { team_id: OTHER } }), 404);
    expect((await body(api(`/api/v1/alert-rules/${theirs.id}`, { key: outsider.key }), 200)).name).toBe('CPU busy');
  });

  it('a viewer cannot write rules', async () => {
    const r = await body(api('/api/v1/alert-rules', { key: operator.key, json: cpuRule() }), 201);
    await body(api('/api/v1/alert-rules', { key: viewer.key, json: cpuRule() }), 403);
    await body(api(`/api/v1/alert-rules/${r.id}`, { key: viewer.key, method: 'PATCH', json: { name: 'no' } }), 403);
    await body(api(`/api/v1/alert-rules/${r.id}`, { key: viewer.key, method: 'DELETE' }), 403);
    await body(api('/api/v1/alerts/config', { key: viewer.key, json: { cpu: { warning: 1, critical: 2 } } }), 403);
  });

  it("tells the device's hub: it reads the new rule at once (here: the process its agent must watch)", async () => {
    const dev = await insertDevice({ name: 'watched' });
    const watched = () =>
      runInDurableObject(hub(dev), async (instance) => {
        const inner = instance as unknown as { caps: { alerts: AlertsCapability }; hub: HubContext };
        return inner.caps.alerts.watched(inner.hub);
      });
    expect((await watched()).processes).not.toContain('sshd'); // and now cached for 30 s
    await body(api('/api/v1/alert-rules', { key: operator.key, json: { name: 'sshd', metric: 'process', target: 'sshd', device_id: dev } }), 201);
    await eventually(async () => (await watched()).processes.includes('sshd'), 'the hub to see the new rule');
  });
});

describe("Tyto's alerts", () => {
  it('POST /api/v1/alerts/config sets the relay-wide thresholds (admins only), keeping the rules’ other settings; GET shows them', async () => {
    await body(api('/api/v1/alerts/config', { key: operator.key, json: { cpu: { warning: 80, critical: 95 } } }), 403);
    const seed = { cpu: { warning: 80, critical: 95 }, memory: { warning: 85, critical: 95 }, disk: { warning: 80, critical: 90 } };
    const first = await body(api('/api/v1/alerts/config', { key: admin.key, json: seed }), 200);
    expect(first.config).toMatchObject(seed);
    // The relay-wide cpu rule is a rule like any other: give it a longer hold, then set its thresholds again.
    const cpu = (await body(api('/api/v1/alert-rules', { key: admin.key }), 200)).rules.find((r: { name: string }) => r.name === 'Cpu (relay-wide)');
    expect(cpu).toMatchObject({ team_id: null, device_id: null, metric: 'cpu', hold_seconds: 300 });
    await body(api(`/api/v1/alert-rules/${cpu.id}`, { key: admin.key, method: 'PATCH', json: { hold_seconds: 900 } }), 200);
    await body(api('/api/v1/alerts/config', { key: admin.key, json: { cpu: { warning: 70, critical: 90 } } }), 200);
    expect(await body(api(`/api/v1/alert-rules/${cpu.id}`, { key: admin.key }), 200)).toMatchObject({ warning: 70, critical: 90, hold_seconds: 900 });
    const got = TytoAlertsSchema.parse(await body(api('/api/v1/alerts', { key: viewer.key }), 200));
    expect(got.config).toMatchObject({ cpu: { warning: 70, critical: 90 }, memory: { warning: 85, critical: 95 }, disk: { warning: 80, critical: 90 } });
    // Bad bodies: nothing named, critical under warning, an unknown metric.
    for (const bad of [{}, { cpu: { warning: 90, critical: 80 } }, { swap: { warning: 1, critical: 2 } }]) await body(api('/api/v1/alerts/config', { key: admin.key, json: bad }), 400);
  });

  describe('alerts and acknowledge', () => {
    let ruleId: string;
    let mine: string;
    let theirs: string;
    const insertAlert = async (deviceId: string, teamId: string, over: { level?: string; state?: string; createdAt?: number } = {}) => {
      const id = crypto.randomUUID();
      await env.DB.prepare(
        `INSERT INTO alerts (id, rule_id, device_id, team_id, metric, level, value, threshold, message, cause, state, created_at) VALUES (?1, ?2, ?3, ?4, 'cpu', ?5, 93.2, 90, 'CPU 93.2 %', '{"processes":[]}', ?6, ?7)`,
      )
        .bind(id, ruleId, deviceId, teamId, over.level ?? 'warning', over.state ?? 'firing', over.createdAt ?? Date.now())
        .run();
      return id;
    };
    beforeAll(async () => {
      ruleId = await insertRule({ metric: 'cpu', warning: 90, teamId: null });
      mine = await insertAlert(device, TEST_TEAM, { createdAt: Date.now() - 1000 });
      theirs = await insertAlert(otherDevice, OTHER);
    });

    it('GET /api/v1/alerts lists the firing alerts of your teams, newest first, in the seed’s shape, with its filters', async () => {
      const newer = await insertAlert(device, TEST_TEAM, { level: 'critical' });
      const resolved = await insertAlert(device, TEST_TEAM, { state: 'resolved' });
      const got = TytoAlertsSchema.parse(await body(api('/api/v1/alerts', { key: viewer.key }), 200));
      const ids = got.alerts.map((a) => a.id);
      expect(ids.indexOf(newer)).toBeLessThan(ids.indexOf(mine));
      expect(ids).not.toContain(theirs);
      expect(ids).not.toContain(resolved);
      expect(got.alerts.find((a) => a.id === mine)).toMatchObject({ type: 'cpu', level: 'warning', value: 93.2, threshold: 90, agent_id: device, acknowledged: false, state: 'firing' });
      const ids_ = async (q: string, key = viewer.key) => (await body(api(`/api/v1/alerts${q}`, { key }), 200)).alerts.map((a: { id: string }) => a.id);
      expect(await ids_('?level=critical')).toEqual([newer]);
      expect(await ids_('?state=resolved')).toEqual([resolved]);
      expect(await ids_(`?agent_id=${otherDevice}`)).toEqual([]);
      expect(await ids_(`?agent_id=${otherDevice}`, outsider.key)).toEqual([theirs]);
      await body(api('/api/v1/alerts?state=bogus', { key: viewer.key }), 400);
      await body(api('/api/v1/alerts?level=info', { key: viewer.key }), 400);
    });

    it('GET /api/v1/alerts/{id}: yours, not another team’s', async () => {
      expect(AlertSchema.parse(await body(api(`/api/v1/alerts/${mine}`, { key: viewer.key }), 200)).id).toBe(mine);
      await body(api(`/api/v1/alerts/${theirs}`, { key: viewer.key }), 404);
      await body(api(`/api/v1/alerts/${crypto.randomUUID()}`, { key: viewer.key }), 404);
    });

    it('acknowledge: once, idempotent, audited once; another team cannot; a viewer may not', async () => {
      await body(api(`/api/v1/alerts/${mine}/acknowledge`, { key: viewer.key, method: 'POST' }), 403);
      await body(api(`/api/v1/alerts/${mine}/acknowledge`, { key: outsider.key, method: 'POST' }), 404);
      await body(api(`/api/v1/alerts/${theirs}/acknowledge`, { key: operator.key, method: 'POST' }), 404);
      expect((await body(api(`/api/v1/alerts/${theirs}`, { key: outsider.key }), 200)).acknowledged).toBe(false);
      const a = AlertSchema.parse(await body(api(`/api/v1/alerts/${mine}/acknowledge`, { key: operator.key, method: 'POST' }), 200));
      expect(a).toMatchObject({ id: mine, acknowledged: true, acknowledged_by: operator.userId });
      expect(a.acknowledged_at).not.toBeNull();
      const again = await body(api(`/api/v1/alerts/${mine}/acknowledge`, { key: admin.key, method: 'POST' }), 200);
      expect(again).toMatchObject({ acknowledged_at: a.acknowledged_at, acknowledged_by: operator.userId });
      expect(await auditActions(mine)).toEqual(['alert.acknowledge']);
      expect((await body(api('/api/v1/alerts', { key: viewer.key }), 200)).alerts.find((x: { id: string }) => x.id === mine).acknowledged).toBe(true);
    });
  });
});
