// Alerts end to end through a real DeviceHub: a fake agent sends `metrics` samples (timestamps
// of its own, 5 s apart, so a 60 s hold takes no minutes), the metrics capability stores them and
// hands them to the alerts capability, which fires an alert naming the top process on the sample
// that completes the hold, resolves it after the recovery hold, and the API shows both; a rule
// created through the API reaches the agent as a watched process name in metrics_config; an
// offline rule fires once the agent has been gone for its hold and resolves when it is back.
// Needs the metrics capability (the hub-metrics branch).
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { api, userWithKey } from './helpers.ts';
import { eventually, waitFor } from './device-helpers.ts';
import { fakeKvmAgent, kvmDevice } from './kvm-helpers.ts';
import { sample, type SampleOver } from './alerts-helpers.ts';
import { TytoAlertsSchema } from '../../shared/api/alerts.ts';

async function body(res: Response | Promise<Response>, status: number): Promise<any> {
  const r = await res;
  const text = await r.text();
  expect(r.status, text).toBe(status);
  return text ? JSON.parse(text) : null;
}

async function metricsDevice(adminKey: string) {
  const dev = await kvmDevice(adminKey, { capabilities: ['metrics'] });
  const received: Record<string, any>[] = [];
  dev.agent.ws.addEventListener('message', (e) => {
    if (typeof e.data === 'string' && e.data.startsWith('{')) received.push(JSON.parse(e.data));
  });
  const boot = `boot-${crypto.randomUUID().slice(0, 8)}`;
  let seq = 0;
  /** Sends a sample taken at `at` and waits for its ack. */
  const send = async (at: number, o: SampleOver = {}) => {
    const n = ++seq;
    dev.agent.ws.send(JSON.stringify({ t: 'metrics', boot, seq: n, sample: sample({ ...o, at }) }));
    await waitFor(() => received.some((m) => m.t === 'metrics_ack' && m.boot === boot && m.seq >= n), `the ack of sample ${n}`);
  };
  return { ...dev, received, send };
}

const alertsOf = async (deviceId: string) =>
  (await env.DB.prepare('SELECT * FROM alerts WHERE device_id = ?1 ORDER BY created_at').bind(deviceId).all<{ id: string; state: string; level: string; created_at: number; resolved_at: number | null; message: string }>()).results;

describe('alerts through a real hub', () => {
  it('a cpu rule fires on the sample that completes the hold, names the top process, and resolves after the recovery hold', async () => {
    const admin = await userWithKey(['admin']);
    const dev = await metricsDevice(admin.key);
    await body(api('/api/v1/alert-rules', { key: admin.key, json: { name: 'CPU', metric: 'cpu', critical: 90, hold_seconds: 60, recovery_seconds: 60, device_id: dev.deviceId } }), 201);
    await body(api('/api/v1/alert-rules', { key: admin.key, json: { name: 'nginx', metric: 'process', target: 'nginx', hold_seconds: 0, device_id: dev.deviceId } }), 201);
    // The process rule reaches the agent: metrics_config names nginx.
    await waitFor(() => dev.received.some((m) => m.t === 'metrics_config' && m.watch.processes.includes('nginx')), 'metrics_config watching nginx');

    const t0 = Date.now() - 5 * 60_000;
    const ts = (s: number) => t0 + s * 1000;
    const busy = { cpu: 95, topByCpu: [{ pid: 812, name: 'stress-ng', cpu: 97, memory: 1_000_000 }], watched: { processes: { nginx: 1 }, containers: {} } };
    for (let s = 0; s <= 60; s += 5) await dev.send(ts(s), busy);
    await eventually(async () => (await alertsOf(dev.deviceId)).length > 0, 'the alert');
    const [fired] = await alertsOf(dev.deviceId);
    expect(fired).toMatchObject({ state: 'firing', level: 'critical', created_at: ts(60) });
    expect(fired!.message).toBe('CPU 95.0 % over 1 min ≥ 90 % (critical) on ' + (await env.DB.prepare('SELECT name FROM devices WHERE id = ?1').bind(dev.deviceId).first<{ name: string }>())!.name + '; top: stress-ng (pid 812) 97 %');
    const listed = TytoAlertsSchema.parse(await body(api(`/api/v1/alerts?agent_id=${dev.deviceId}`, { key: admin.key }), 200));
    expect(listed.alerts.map((a) => [a.id, a.type, a.cause.processes?.[0]?.name])).toEqual([[fired!.id, 'cpu', 'stress-ng']]);

    const calm = { cpu: 10, watched: { processes: { nginx: 1 }, containers: {} } };
    for (let s = 65; s <= 130; s += 5) await dev.send(ts(s), calm);
    await eventually(async () => (await alertsOf(dev.deviceId))[0]!.state === 'resolved', 'the alert to resolve');
    const rows = await alertsOf(dev.deviceId);
    expect(rows).toHaveLength(1); // fired once (nginx ran throughout), resolved once
    expect(rows[0]!.resolved_at).toBe(ts(120));
    expect((await body(api(`/api/v1/alerts?agent_id=${dev.deviceId}`, { key: admin.key }), 200)).alerts).toEqual([]);
  });

  it('an offline rule fires once the agent has been gone for its hold, and resolves when it says hello again', async () => {
    const admin = await userWithKey(['admin']);
    const dev = await metricsDevice(admin.key);
    await body(api('/api/v1/alert-rules', { key: admin.key, json: { name: 'gone', metric: 'offline', level: 'critical', hold_seconds: 1, device_id: dev.deviceId } }), 201);
    dev.agent.ws.close(1000, 'bye');
    await eventually(async () => (await alertsOf(dev.deviceId)).some((a) => a.state === 'firing'), 'the offline alert', 8000);
    const [a] = await alertsOf(dev.deviceId);
    expect(a!.message).toMatch(/offline for 1 s \(critical\)$/);
    await fakeKvmAgent(dev.deviceId, dev.privateKey);
    await eventually(async () => (await alertsOf(dev.deviceId))[0]!.state === 'resolved', 'the offline alert to resolve');
    expect(await alertsOf(dev.deviceId)).toHaveLength(1);
  });
});
