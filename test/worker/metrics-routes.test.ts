// The metrics routes through the Worker in workerd, with samples a fake agent sent to the real
// DeviceHub: history (its defaults, Tyto's single-device mode, every bad input a 400 naming the
// parameter, the point bound saying which resolution fits), export (the current samples and a
// range, JSON and RFC 4180 CSV, a series name with commas and quotes round-tripping, a long range
// arriving page by page), the refresh interval (admins only, upserted, audited, the agent told),
// the latest samples, PiTunnel's /device_info from a fresh sample; and what another team's
// member, a viewer and a key without metrics:read get.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, userWithKey, TEST_TEAM } from './helpers.ts';
import { basicAuth, expectError } from './auth-helpers.ts';
import { eventually, insertDevice, waitFor } from './device-helpers.ts';
import { makeTeam, userWithPermissions } from './kvm-helpers.ts';
import { metricsDevice, mount, parseCsv, sample } from './metrics-routes-helpers.ts';
import { csvField } from '../../worker/devices/metrics.ts';
import { DEFAULT_REFRESH_SECONDS, MAX_HISTORY_POINTS, type HistoryResponse, type MetricsEvent } from '../../shared/api/metrics.ts';

const OTHER = 'metrics-other-team';
const SOLO = 'metrics-solo-team';
const ODD = '/my,"odd" mount';

let admin: string;
let viewer: string;
let operator: string;
let outsider: string;
let dev: Awaited<ReturnType<typeof metricsDevice>>;
/** When the three history samples were taken: 10, 20 and 30 % CPU a second apart. */
let t0: number;

const iso = (ms: number) => new Date(ms).toISOString();
const issues = async (res: Response) => {
  const body = await expectError(res, 400, 'VALIDATION_ERROR');
  return (body.details as { issues: { path: string; message: string }[] }).issues;
};

beforeAll(async () => {
  await makeTeam(OTHER);
  await makeTeam(SOLO);
  admin = (await userWithKey(['admin'])).key;
  viewer = (await userWithKey(['viewer'])).key;
  operator = (await userWithKey(['operator'])).key;
  outsider = (await userWithKey(['operator'], undefined, OTHER)).key;
  dev = await metricsDevice(admin);
  t0 = Math.floor((Date.now() - 20 * 60_000) / 1000) * 1000;
  for (const [i, cpu] of [10, 20, 30].entries()) {
    await dev.send(sample({ timestamp: t0 + i * 1000, cpu, mounts: [mount('/', 1000, 400, 600, '/dev/sda1'), mount(ODD, 100, 10, 90, '/dev/sdb1')] }));
  }
});

describe('GET /api/v1/history', () => {
  it("answers a device's raw points with avg/min/max of each series, as Tyto's seed shows", async () => {
    const res = await api(`/api/v1/history?agent_id=${dev.deviceId}&from=${iso(t0 - 1000)}&to=${iso(t0 + 3000)}&resolution=raw`, { key: viewer });
    expect(res.status).toBe(200);
    const body = (await res.json()) as HistoryResponse;
    expect(body).toMatchObject({ from: iso(t0 - 1000), to: iso(t0 + 3000), resolution: 'raw', agent_id: dev.deviceId });
    expect(body.data.map((p) => p.timestamp)).toEqual([iso(t0), iso(t0 + 1000), iso(t0 + 2000)]);
    expect(body.data.map((p) => p.cpu)).toEqual([10, 20, 30].map((v) => ({ avg: v, min: v, max: v })));
    expect(body.data[0]!['disk:/']).toEqual({ avg: 40, min: 40, max: 40 });
  });

  it('defaults to the last hour at 1m', async () => {
    const before = Date.now();
    const body = (await (await api(`/api/v1/history?agent_id=${dev.deviceId}`, { key: viewer })).json()) as HistoryResponse;
    expect(body.resolution).toBe('1m');
    const span = Date.parse(body.to) - Date.parse(body.from);
    expect(span).toBe(3_600_000);
    expect(Date.parse(body.to)).toBeGreaterThanOrEqual(before - 1000);
  });

  it("needs agent_id unless the caller sees exactly one device (Tyto's single-device mode)", async () => {
    const solo = await insertDevice({ team: SOLO });
    const soloUser = (await userWithKey(['viewer'], undefined, SOLO)).key;
    const one = await api('/api/v1/history', { key: soloUser });
    expect(one.status).toBe(200);
    expect(((await one.json()) as HistoryResponse).agent_id).toBe(solo);
    const many = await issues(await api('/api/v1/history', { key: admin }));
    expect(many).toEqual([expect.objectContaining({ path: 'agent_id', message: expect.stringContaining('agent_id is required') })]);
  });

  it('refuses bad input with a 400 that names the parameter and says what to change', async () => {
    const q = (rest: string) => api(`/api/v1/history?agent_id=${dev.deviceId}&${rest}`, { key: viewer });
    expect((await issues(await q('resolution=2m')))[0]).toMatchObject({ path: 'resolution', message: 'resolution is one of raw, 1m, 5m, 1h' });
    expect((await issues(await q('from=yesterday')))[0]!.path).toBe('from');
    expect((await issues(await q('to=2026-13-01T00:00:00Z')))[0]!.path).toBe('to');
    expect((await issues(await q(`from=${iso(t0)}&to=${iso(t0 - 1000)}`)))[0]).toMatchObject({ path: 'from', message: 'from must not be after to' });
    // A from in the future with to left out is after the default to (now).
    expect((await issues(await q(`from=${iso(Date.now() + 3_600_000)}`)))[0]!.path).toBe('from');
    // Ten days: too many raw or 1m points; 5m fits.
    const tooLong = await issues(await q(`from=${iso(t0 - 10 * 86_400_000)}&to=${iso(t0)}&resolution=raw`));
    expect(tooLong[0]).toMatchObject({ path: 'resolution', message: expect.stringContaining('use resolution 5m') });
    expect(tooLong[0]!.message).toContain(String(MAX_HISTORY_POINTS));
    const atFiveMinutes = await q(`from=${iso(t0 - 10 * 86_400_000)}&to=${iso(t0)}&resolution=5m`);
    expect(atFiveMinutes.status).toBe(200);
    // Past what even 1h holds: how long a range may be.
    const tooLongForAny = await issues(await q(`from=${iso(t0 - 400 * 86_400_000)}&to=${iso(t0)}&resolution=1h`));
    expect(tooLongForAny[0]).toMatchObject({ path: 'resolution', message: expect.stringContaining('at most 4999 hours') });
    expect((await issues(await api('/api/v1/history?agent_id=not a device id', { key: viewer })))[0]!.path).toBe('agent_id');
  });

  it("is a 404 for another team's device, as for one that does not exist", async () => {
    await expectError(await api(`/api/v1/history?agent_id=${dev.deviceId}`, { key: outsider }), 404, 'NOT_FOUND');
    await expectError(await api(`/api/v1/history?agent_id=${'f'.repeat(40)}`, { key: outsider }), 404, 'NOT_FOUND');
  });

  it('needs metrics:read: a key without it is a 403 for every metrics route', async () => {
    const narrow = (await userWithPermissions(['devices:read'])).key;
    for (const path of [`/api/v1/history?agent_id=${dev.deviceId}`, '/api/v1/export/metrics', '/api/v1/metrics/latest', `/api/v1/devices/${dev.deviceId}/metrics`, '/api/v1/settings']) {
      await expectError(await api(path, { key: narrow }), 403, 'FORBIDDEN');
    }
  });
});

describe('GET /api/v1/export/metrics', () => {
  it('exports a range as RFC 4180 CSV in long form: a series name with commas and quotes comes back as it was', async () => {
    const res = await api(`/api/v1/export/metrics?format=csv&agent_id=${dev.deviceId}&from=${iso(t0)}&to=${iso(t0 + 2000)}`, { key: viewer });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="metrics-[0-9a-f]{40}-\d{4}-\d\d-\d\dT\d{6}Z\.csv"$/);
    const text = await res.text();
    expect(text).toContain(`,"disk:/my,""odd"" mount",`);
    const rows = parseCsv(text);
    expect(rows[0]).toEqual(['timestamp', 'agent_id', 'series', 'avg', 'min', 'max']);
    const odd = rows.filter((r) => r[2] === `disk:${ODD}`);
    expect(odd).toEqual([0, 1, 2].map((i) => [iso(t0 + i * 1000), dev.deviceId, `disk:${ODD}`, '10', '10', '10']));
    expect(rows.filter((r) => r[2] === 'cpu').map((r) => r[3])).toEqual(['10', '20', '30']);
    expect(rows.every((r) => r.length === 6)).toBe(true);
  });

  it('exports a range as one JSON array of points; resolution and the point bound as for history', async () => {
    const res = await api(`/api/v1/export/metrics?agent_id=${dev.deviceId}&from=${iso(t0)}&to=${iso(t0 + 2000)}`, { key: viewer });
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename=".+\.json"$/);
    const points = (await res.json()) as { timestamp: string; agent_id: string; cpu: { avg: number } }[];
    expect(points.map((p) => [p.timestamp, p.agent_id, p.cpu.avg])).toEqual([0, 1, 2].map((i) => [iso(t0 + i * 1000), dev.deviceId, 10 * (i + 1)]));
    expect((await issues(await api(`/api/v1/export/metrics?agent_id=${dev.deviceId}&from=${iso(t0 - 86_400_000)}&to=${iso(t0)}`, { key: viewer })))[0]).toMatchObject({
      path: 'resolution',
      message: expect.stringContaining('use resolution 1m'),
    });
    expect((await issues(await api('/api/v1/export/metrics?format=xml', { key: viewer })))[0]).toMatchObject({ path: 'format', message: 'format is json or csv' });
    expect((await issues(await api(`/api/v1/export/metrics?from=${iso(t0)}&to=${iso(t0 - 1)}`, { key: viewer })))[0]!.path).toBe('from');
    await expectError(await api(`/api/v1/export/metrics?agent_id=${dev.deviceId}`, { key: outsider }), 404, 'NOT_FOUND');
  });

  it('without a range exports the current sample of each device the caller may see', async () => {
    const json = (await (await api(`/api/v1/export/metrics?agent_id=${dev.deviceId}`, { key: viewer })).json()) as MetricsEvent[];
    expect(json).toHaveLength(1);
    expect(json[0]).toMatchObject({ agent_id: dev.deviceId, team_id: TEST_TEAM, timestamp: iso(t0 + 2000), cpu: { totalUsage: 30 } });
    const rows = parseCsv(await (await api(`/api/v1/export/metrics?format=csv&agent_id=${dev.deviceId}`, { key: viewer })).text());
    expect(rows.find((r) => r[2] === 'cpu')).toEqual([iso(t0 + 2000), dev.deviceId, 'cpu', '30', '30', '30']);
    expect(rows.find((r) => r[2] === `disk:${ODD}`)?.slice(3)).toEqual(['10', '10', '10']);
    // Another team's member sees none of this team's samples in a fleet-wide export.
    const theirs = (await (await api('/api/v1/export/metrics', { key: outsider })).json()) as MetricsEvent[];
    expect(theirs.filter((e) => e.team_id !== OTHER)).toEqual([]);
  });

  it('streams a long range page by page rather than building it in memory', async () => {
    const long = await metricsDevice(admin);
    const start = Math.floor((Date.now() - 40 * 60_000) / 1000) * 1000;
    const n = 1200;
    await long.backlog(Array.from({ length: n }, (_, i) => ({ timestamp: start + i * 1000, series: { cpu: i % 100 } })));
    const res = await api(`/api/v1/export/metrics?format=csv&agent_id=${long.deviceId}&from=${iso(start)}&to=${iso(start + n * 1000)}`, { key: viewer });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const chunks: Uint8Array[] = [];
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      chunks.push(r.value);
    }
    const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    const rows = parseCsv(text).slice(1);
    expect(rows).toHaveLength(n);
    expect(rows.at(-1)).toEqual([iso(start + (n - 1) * 1000), long.deviceId, 'cpu', String((n - 1) % 100), String((n - 1) % 100), String((n - 1) % 100)]);
    // The header, then one chunk per page of 500 rows: three pages for 1,200 points.
    expect(chunks.length).toBeGreaterThanOrEqual(4);
  });
});

describe('the refresh interval', () => {
  it('is set by instance admins only (settings:write), upserted, audited, and told to the connected agents at once', async () => {
    for (const key of [viewer, operator]) await expectError(await api('/api/v1/settings/refresh', { key, json: { interval: 10 } }), 403, 'FORBIDDEN');
    for (const bad of [{ interval: 0 }, { interval: 3601 }, { interval: 2.5 }, { interval: '10' }, {}, { interval: 10, extra: 1 }]) {
      const body = await expectError(await api('/api/v1/settings/refresh', { key: admin, json: bad }), 400, 'VALIDATION_ERROR');
      expect(JSON.stringify(body.details)).toMatch(/interval|extra|Unrecognized/);
    }
    expect(await (await api('/api/v1/settings', { key: viewer })).json()).toEqual({ interval: DEFAULT_REFRESH_SECONDS });

    const told = dev.configs.length;
    for (const interval of [12, 7]) {
      const res = await api('/api/v1/settings/refresh', { key: admin, json: { interval } });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ interval });
    }
    expect(await (await api('/api/v1/settings', { key: viewer })).json()).toEqual({ interval: 7 });
    const rows = await env.DB.prepare("SELECT value FROM settings WHERE key = 'metrics.refresh_seconds'").all<{ value: string }>();
    expect(rows.results.map((r) => JSON.parse(r.value))).toEqual([7]);
    // The device's agent hears the new interval (nobody watches it live, so it samples at the interval).
    await waitFor(() => dev.configs.slice(told).some((c) => c.interval_ms === 7000), 'the agent to be told 7 s');
    const audit = await env.DB.prepare("SELECT details FROM audit_log WHERE action = 'settings.refresh' ORDER BY id").all<{ details: string }>();
    expect(audit.results.map((r) => JSON.parse(r.details))).toEqual([
      { from: DEFAULT_REFRESH_SECONDS, to: 12 },
      { from: 12, to: 7 },
    ]);
    await api('/api/v1/settings/refresh', { key: admin, json: { interval: DEFAULT_REFRESH_SECONDS } });
  });
});

describe('latest samples', () => {
  it("GET /api/v1/devices/{id}/metrics answers the device's latest sample, 404 NO_SAMPLE before its first", async () => {
    const fresh = await metricsDevice(admin);
    await expectError(await api(`/api/v1/devices/${fresh.deviceId}/metrics`, { key: viewer }), 404, 'NO_SAMPLE');
    await fresh.send(sample({ cpu: 42.5 }));
    const res = await api(`/api/v1/devices/${fresh.deviceId}/metrics`, { key: viewer });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ agent_id: fresh.deviceId, team_id: TEST_TEAM, cpu: { totalUsage: 42.5 }, system: { hostname: 'morpheus-prod' } });
    await expectError(await api(`/api/v1/devices/${fresh.deviceId}/metrics`, { key: outsider }), 404, 'NOT_FOUND');
  });

  it("GET /api/v1/metrics/latest answers each visible device's latest sample from the FleetHub, none of another team's", async () => {
    await eventually(async () => {
      const body = (await (await api('/api/v1/metrics/latest', { key: viewer })).json()) as { metrics: MetricsEvent[] };
      return body.metrics.some((m) => m.agent_id === dev.deviceId && m.team_id === TEST_TEAM);
    }, 'the device in the latest samples');
    const theirs = (await (await api('/api/v1/metrics/latest', { key: outsider })).json()) as { metrics: MetricsEvent[] };
    expect(theirs.metrics).toEqual([]);
  });
});

describe("PiTunnel's /device_info", () => {
  it("answers from the hub's fresh sample, without asking the device", async () => {
    const before = dev.agent.calls.length;
    await dev.send(sample({ cpu: 33.3 }));
    const info = await api(`/device_info?device_id=${dev.deviceId}`, { headers: basicAuth(admin) });
    expect(info.status).toBe(200);
    const body = (await info.json()) as { device_info: Record<string, unknown> };
    expect(body.device_info).toEqual({
      // The root mount: total, used, free, used ÷ (used + free) in %.
      disk_usage: [248_617_984 * 1024, 48_326_376 * 1024, 187_589_708 * 1024, 20.5],
      cpu_usage: 33.3,
      mem_used_percent: 62.3,
      mem_total: 16_023_304 * 1024,
      mem_available: 6_043_860 * 1024,
      cpu_temp: 54.8,
      gpu_temp: null,
      mac_address: 'B827EB2A7FC1',
      hostname: 'morpheus-prod',
    });
    expect(dev.agent.calls.slice(before).filter((c) => c.method === 'device_info')).toEqual([]);
  });
});

describe('CSV fields (RFC 4180)', () => {
  it('quotes a field holding a comma, a quote or a line break, doubling its quotes, and leaves the others alone', () => {
    expect(csvField('cpu')).toBe('cpu');
    expect(csvField(12.5)).toBe('12.5');
    expect(csvField(ODD)).toBe('"/my,""odd"" mount"');
    expect(csvField('two\r\nlines')).toBe('"two\r\nlines"');
    expect(csvField('"')).toBe('""""');
    expect(parseCsv(`${[ODD, 'a\nb', 'plain'].map(csvField).join(',')}\r\n`)).toEqual([[ODD, 'a\nb', 'plain']]);
  });
});
