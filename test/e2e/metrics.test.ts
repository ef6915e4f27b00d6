// Metrics end to end, the "done when": a real agent samples this machine and sends its
// samples through its socket to the device's hub in workerd. A watcher of the device gets
// `event: metrics` in Tyto's structure; history answers at every resolution and export in JSON
// and CSV; the relay's refresh interval reaches the agent at once (its samples come at the new
// pace); samples taken while the relay was down land in history afterwards at their own
// timestamps; and an alert rule fires once while a CPU-burning child runs, names it among the top
// processes, notifies a webhook on a local node:http server, and resolves once after it stops.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { readFile, rm, symlink } from 'node:fs/promises';
import { cpus, hostname, totalmem } from 'node:os';
import { join } from 'node:path';
import { startDevEnv, waitFor, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { startRelay } from '../../scripts/relay.ts';
import { HistoryResponseSchema, MetricsEventSchema } from '../../shared/api/metrics.ts';
import { AlertNotificationSchema } from '../../shared/api/alerts.ts';
import { freePort, http, tempDir } from './harness.ts';
import { openSse, type SseReader } from './sse.ts';

const VARS = { HEARTBEAT_INTERVAL_MS: '500', ALERT_ALLOW_PRIVATE_TARGETS: 'true' };
/** The burner's command name, which the sample's top processes and the alert's cause carry. */
const BURNER = 'pirelay-burner';

let env: DevEnv;
let dir: string;
let port: number;
let url: string;
let key: string;
let deviceId: string;
let hook: Server;
let hookUrl: string;
const notifications: unknown[] = [];
const streams: SseReader[] = [];
let burner: ChildProcess | null = null;

const api = (path: string, init: Parameters<typeof http>[1] = {}) => http(`${url}${path}`, { key, ...init });
const iso = (ms: number) => new Date(ms).toISOString();
/** Raw points of the device between two times, oldest first. */
const raw = async (from: number, to: number) => {
  const r = await api(`/api/v1/history?agent_id=${deviceId}&resolution=raw&from=${iso(from)}&to=${iso(to)}`);
  expect(r.status).toBe(200);
  return HistoryResponseSchema.parse(r.body).data.map((p) => Date.parse(p.timestamp));
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const gaps = (ts: number[]) => ts.slice(1).map((t, i) => t - ts[i]!);
const refresh = async (interval: number) => {
  const r = await api('/api/v1/settings/refresh', { json: { interval } });
  expect(r.status).toBe(200);
};
const watch = async (path = `/api/v1/stream?agent_id=${deviceId}&events=metrics`) => {
  const s = await openSse(`${url}${path}`, { authorization: `Bearer ${key}` });
  expect(s.status).toBe(200);
  streams.push(s);
  return s;
};
const samplesOf = (s: SseReader) => s.messages.filter((m) => m.event === 'metrics').map((m) => JSON.parse(m.data) as Record<string, any>);

beforeAll(async () => {
  dir = await tempDir('metrics');
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      try {
        notifications.push(JSON.parse(body));
      } catch {
        notifications.push(body);
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
  port = await freePort();
  env = await startDevEnv({ dir, port, demoDevices: ['metrics-pi'], agentArgs: ['--no-journal'], vars: VARS });
  await waitOnline(env, 30_000);
  url = env.state.url;
  key = env.state.apiKey;
  deviceId = env.state.devices[0]!.id;
}, 90_000);

afterAll(async () => {
  burner?.kill('SIGKILL');
  for (const s of streams) s.close();
  await env?.stop();
  hook?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the live stream', () => {
  it('a watcher of the device gets event: metrics in Tyto\'s structure, about this machine, once a second', async () => {
    const s = await watch();
    await waitFor('three live samples', async () => samplesOf(s).length >= 3, 30_000);
    const [first, ...rest] = samplesOf(s);
    const event = MetricsEventSchema.parse(first);
    expect(event.agent_id).toBe(deviceId);
    expect(event.system.hostname).toBe(hostname());
    expect(event.cpu.cores).toHaveLength(cpus().length);
    expect(event.memory.total).toBe(totalmem());
    expect(event.processes.total).toBeGreaterThan(0);
    // Only metrics on events=metrics, each a new sample.
    expect(s.messages.every((m) => m.event === 'metrics')).toBe(true);
    const stamps = [first!, ...rest].map((e) => Date.parse(e.timestamp));
    expect(new Set(stamps).size).toBe(stamps.length);
    expect(stamps).toEqual([...stamps].sort((a, b) => a - b));
    s.close();
  }, 60_000);
});

describe('history and export', () => {
  it('history answers at raw, 1m, 5m and 1h; raw and 1m hold the device\'s points', async () => {
    const from = Date.now() - 2 * 3_600_000;
    // The first 1m bucket closes a little after the minute of the first sample ends.
    const oneMinute = await waitFor('a closed 1m bucket', async () => {
      const r = await api(`/api/v1/history?agent_id=${deviceId}&resolution=1m&from=${iso(from)}&to=${iso(Date.now())}`);
      return r.status === 200 && r.body.data.length > 0 ? r.body : null;
    }, 90_000, 1_000);
    const to = Date.now();
    for (const resolution of ['raw', '1m', '5m', '1h'] as const) {
      const r = await api(`/api/v1/history?agent_id=${deviceId}&resolution=${resolution}&from=${iso(from)}&to=${iso(to)}`);
      expect(r.status).toBe(200);
      const body = HistoryResponseSchema.parse(r.body);
      expect(body).toMatchObject({ resolution, agent_id: deviceId });
      for (const p of body.data) {
        expect(Date.parse(p.timestamp)).toBeGreaterThanOrEqual(from - 3_600_000);
        expect(Date.parse(p.timestamp)).toBeLessThanOrEqual(to);
      }
      if (resolution === 'raw' || resolution === '1m') {
        expect(body.data.length).toBeGreaterThan(0);
        const cpu = body.data[0]!.cpu as { avg: number; min: number; max: number };
        expect(cpu.min).toBeLessThanOrEqual(cpu.avg);
        expect(cpu.avg).toBeLessThanOrEqual(cpu.max);
      }
    }
    expect(oneMinute.data[0].cpu).toMatchObject({ avg: expect.any(Number), min: expect.any(Number), max: expect.any(Number) });
    // A bad resolution says what to change.
    const bad = await api(`/api/v1/history?agent_id=${deviceId}&resolution=2m`);
    expect(bad.status).toBe(400);
  }, 120_000);

  it('export gives the range as JSON and as CSV, the same points', async () => {
    const from = Date.now() - 3_600_000;
    const to = Date.now();
    const range = `agent_id=${deviceId}&resolution=raw&from=${iso(from)}&to=${iso(to)}`;
    const json = await api(`/api/v1/export/metrics?format=json&${range}`);
    expect(json.status).toBe(200);
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Array.isArray(json.body)).toBe(true);
    expect(json.body.length).toBeGreaterThan(0);
    expect(json.body[0]).toMatchObject({ agent_id: deviceId, timestamp: expect.any(String), cpu: { avg: expect.any(Number) } });
    const csv = await api(`/api/v1/export/metrics?format=csv&${range}`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = String(csv.body).split('\r\n').filter(Boolean);
    expect(lines[0]).toBe('timestamp,agent_id,series,avg,min,max');
    const cpuRows = lines.slice(1).filter((l) => l.split(',')[2] === 'cpu');
    // One cpu row per point of the JSON export that was there when the CSV was asked for.
    expect(cpuRows.length).toBeGreaterThanOrEqual(json.body.length);
    expect(cpuRows[0]!.split(',')[1]).toBe(deviceId);
  }, 60_000);
});

describe('the refresh interval', () => {
  it('POST /api/v1/settings/refresh reaches the agent at once: with nobody watching, samples come at the new pace', async () => {
    // Nobody watches live now (the stream above is closed), so the relay's interval rules.
    for (const interval of [2, 4]) {
      await refresh(interval);
      const since = Date.now() + interval * 1_000;
      const ts = await waitFor(`samples every ${interval} s`, async () => {
        const t = (await raw(since, Date.now())).filter((x) => x >= since);
        return t.length >= 5 ? t : null;
      }, 60_000, 1_000);
      expect(median(gaps(ts))).toBeGreaterThan(interval * 1_000 * 0.75);
      expect(median(gaps(ts))).toBeLessThan(interval * 1_000 * 1.25);
    }
  }, 150_000);
});

describe('an outage', () => {
  it('samples taken while the relay was down land in history afterwards, at their own timestamps, once each', async () => {
    await refresh(1);
    await waitFor('samples once a second', async () => {
      const t = await raw(Date.now() - 5_000, Date.now());
      return t.length >= 3 ? t : null;
    }, 30_000, 500);
    const secrets = JSON.parse(await readFile(join(dir, 'secrets.json'), 'utf8')) as Record<string, string>;
    await env.relay.stop();
    const down = Date.now();
    await new Promise((r) => setTimeout(r, 8_000));
    env.relay = await startRelay({ port, stateDir: join(dir, 'state'), vars: { ...secrets, ...VARS } });
    const up = Date.now();
    await waitOnline(env, 60_000);
    // The agent sampled on while it could not send: those points come as its backlog.
    const during = await waitFor('the backlog of the outage', async () => {
      const t = (await raw(down + 1_000, up - 1_000)).filter((x) => x > down + 1_000 && x < up - 1_000);
      return t.length >= 4 ? t : null;
    }, 60_000, 1_000);
    expect(new Set(during).size).toBe(during.length);
    // Once a second, as taken: no gap of the outage's length among them.
    expect(Math.max(...gaps(during))).toBeLessThan(3_000);
  }, 150_000);
});

describe('an alert', () => {
  it('fires once while a CPU burner runs, names it among the top processes, notifies the webhook, and resolves once after it stops', async () => {
    await refresh(1);
    // The machine's own load first: the threshold sits well above it.
    const recent = await waitFor('ten samples', async () => {
      const r = await api(`/api/v1/history?agent_id=${deviceId}&resolution=raw&from=${iso(Date.now() - 12_000)}&to=${iso(Date.now())}`);
      return r.status === 200 && r.body.data.length >= 10 ? (r.body.data as { cpu: { max: number } }[]) : null;
    }, 30_000, 1_000);
    const busiest = Math.max(...recent.map((p) => p.cpu.max));
    const threshold = Math.min(90, Math.max(40, Math.ceil(busiest) + 20));
    const rule = await api('/api/v1/alert-rules', {
      json: { name: 'e2e cpu', metric: 'cpu', warning: threshold, hold_seconds: 4, recovery_seconds: 4, device_id: deviceId, channels: [{ type: 'webhook', url: hookUrl }] },
    });
    expect(rule.status).toBe(201);
    const ruleId = rule.body.id as string;
    const ours = async (state: 'firing' | 'resolved') => {
      const r = await api(`/api/v1/alerts?agent_id=${deviceId}&state=${state}`);
      expect(r.status).toBe(200);
      return (r.body.alerts as { rule_id: string }[]).filter((a) => a.rule_id === ruleId) as any[];
    };
    const notified = (event: string) => notifications.filter((n: any) => n?.event === event && n?.rule?.id === ruleId) as any[];

    // Every core busy: the child takes both (a thread each), under a name of its own.
    const bin = join(dir, BURNER);
    await symlink(process.execPath, bin);
    const threads = cpus().length;
    burner = spawn(bin, ['-e', `const { Worker } = require('node:worker_threads'); for (let i = 1; i < ${threads}; i++) new Worker('for (;;);', { eval: true }); for (;;);`], { stdio: 'ignore' });
    const fired = await waitFor('the alert to fire', async () => (await ours('firing'))[0], 60_000, 500);
    expect(fired).toMatchObject({ type: 'cpu', level: 'warning', agent_id: deviceId, threshold, acknowledged: false, state: 'firing' });
    expect(fired.value).toBeGreaterThanOrEqual(threshold);
    expect(fired.cause.processes.map((p: { name: string }) => p.name)).toContain(BURNER);
    const sent = await waitFor('the fired notification', async () => notified('fired')[0], 30_000, 200);
    const body = AlertNotificationSchema.parse(sent);
    expect(body.alert?.id).toBe(fired.id);
    expect(body.device).toMatchObject({ id: deviceId, name: 'metrics-pi' });

    burner.kill('SIGKILL');
    burner = null;
    const resolved = await waitFor('the alert to resolve', async () => (await ours('resolved'))[0], 60_000, 500);
    expect(resolved.id).toBe(fired.id);
    expect(resolved.resolved_at).toEqual(expect.any(String));
    await waitFor('the resolved notification', async () => notified('resolved')[0], 30_000, 200);
    // A while later: still that one alert, one fired and one resolved notification, nothing firing.
    await new Promise((r) => setTimeout(r, 6_000));
    expect(await ours('firing')).toEqual([]);
    expect((await ours('resolved')).map((a) => a.id)).toEqual([fired.id]);
    expect(notified('fired')).toHaveLength(1);
    expect(notified('resolved')).toHaveLength(1);
    expect((await api(`/api/v1/alert-rules/${ruleId}`, { method: 'DELETE' })).status).toBeLessThan(300);
    await refresh(5);
  }, 180_000);
});
