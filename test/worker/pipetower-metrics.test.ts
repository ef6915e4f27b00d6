// Pipetower's "Retrieve a server's metrics" (GET /api/servers/:id/metrics) through the Worker in
// workerd, from the latest sample a fake agent sent to the real DeviceHub: the seed's rows
// exactly (types, metric names, KiB units, string values, its date format, in its order), its
// pagination (limit, page, meta; a page past the end empty with the true meta; bad paging
// Laravel's 422), a server without a sample, and another team's server a 404 as for none.
import { beforeAll, describe, expect, it } from 'vitest';
import { api, userWithKey } from './helpers.ts';
import { insertDevice } from './device-helpers.ts';
import { makeTeam } from './kvm-helpers.ts';
import { metricsDevice, sample } from './metrics-routes-helpers.ts';
import { PipetowerErrorSchema, pipetowerList, PipetowerMetricSchema } from '../../shared/api/pipetower.ts';

const OTHER = 'pipetower-metrics-other';
const List = pipetowerList(PipetowerMetricSchema);

let admin: string;
let viewer: string;
let outsider: string;
let dev: Awaited<ReturnType<typeof metricsDevice>>;
const taken = Date.parse('2026-12-01T10:27:00Z');
const AT = '2026-12-01T10:27:00+00:00';

const call = async (path: string, key: string) => {
  const res = await api(path, { key, headers: { accept: 'application/json' } });
  return { status: res.status, body: (await res.json()) as any };
};

beforeAll(async () => {
  await makeTeam(OTHER);
  admin = (await userWithKey(['admin'])).key;
  viewer = (await userWithKey(['viewer'])).key;
  outsider = (await userWithKey(['viewer'], undefined, OTHER)).key;
  dev = await metricsDevice(admin);
  // The seed's numbers: its disks (KiB), memory (KiB), load and CPU, at a time of its own.
  await dev.send(sample({ timestamp: taken, cpu: 10.8, cores: 8 }));
});

/** The rows the seed's example shows for these numbers, in its order (each mount's three, then the sums). */
const EXPECTED: [string, string, string][] = [
  ['CpuModel', 'name', 'Intel(R) Core(TM) i7-10510U CPU @ 1.80GHz'],
  ['CpuModel', 'cpus', '8'],
  ['HostInfo', 'hostname', 'morpheus-prod'],
  ['HostInfo', 'operating_system', 'debian 11.2'],
  ['HostInfo', 'kernel', 'Linux 5.15.0-84-generic'],
  ['HostInfo', 'architecture', 'x86-64'],
  ['DiskUsage', '/|total', '248617984'],
  ['DiskUsage', '/|used', '48326376'],
  ['DiskUsage', '/|available', '187589708'],
  ['DiskUsage', '/home|total', '239198852'],
  ['DiskUsage', '/home|used', '123423528'],
  ['DiskUsage', '/home|available', '103551888'],
  ['DiskUsage', 'sum|total', '487816836'],
  ['DiskUsage', 'sum|used', '171749904'],
  ['DiskUsage', 'sum|used_percent', '35.21'],
  ['CpuUsage', 'idle', '89.2'],
  ['CpuUsage', 'load', '10.8'],
  ['LoadAverage', 'average_1', '1.23'],
  ['LoadAverage', 'average_5', '1.45'],
  ['LoadAverage', 'average_15', '1.18'],
  ['MemoryUsage', 'mem_total', '16023304'],
  ['MemoryUsage', 'mem_available', '6043860'],
  ['MemoryUsage', 'mem_used', '9979444'],
  ['MemoryUsage', 'mem_used_percent', '62.28'],
];

describe('GET /api/servers/:id/metrics', () => {
  it("answers the seed's rows from the latest sample, with Pipetower's date format", async () => {
    const res = await call(`/api/servers/${dev.deviceId}/metrics?limit=100`, viewer);
    expect(res.status).toBe(200);
    expect(List.safeParse(res.body).success).toBe(true);
    expect(res.body.data.map((r: { type: string; metric: string; value: string }) => [r.type, r.metric, r.value])).toEqual(EXPECTED);
    expect(new Set(res.body.data.map((r: { timestamp: string }) => r.timestamp))).toEqual(new Set([AT]));
    expect(res.body.meta).toEqual({ current_page: 1, from: 1, last_page: 1, per_page: 100, to: EXPECTED.length, total: EXPECTED.length });
  });

  it('pages with limit and page (default 15), a page past the end empty with the true meta', async () => {
    const first = await call(`/api/servers/${dev.deviceId}/metrics`, viewer);
    expect(first.body.data).toHaveLength(15);
    expect(first.body.meta).toEqual({ current_page: 1, from: 1, last_page: 2, per_page: 15, to: 15, total: EXPECTED.length });
    const page = await call(`/api/servers/${dev.deviceId}/metrics?limit=5&page=2`, viewer);
    expect(page.body.data.map((r: { metric: string }) => r.metric)).toEqual(EXPECTED.slice(5, 10).map((r) => r[1]));
    expect(page.body.meta).toEqual({ current_page: 2, from: 6, last_page: 5, per_page: 5, to: 10, total: EXPECTED.length });
    const all: string[] = [];
    for (let p = 1; p <= page.body.meta.last_page; p++) all.push(...(await call(`/api/servers/${dev.deviceId}/metrics?limit=5&page=${p}`, viewer)).body.data.map((r: { metric: string }) => r.metric));
    expect(all).toEqual(EXPECTED.map((r) => r[1]));
    const past = await call(`/api/servers/${dev.deviceId}/metrics?limit=5&page=9`, viewer);
    expect(past.body).toEqual({ data: [], meta: { current_page: 9, from: null, last_page: 5, per_page: 5, to: null, total: EXPECTED.length } });
    const bad = await call(`/api/servers/${dev.deviceId}/metrics?limit=101`, viewer);
    expect(bad).toEqual({ status: 422, body: { message: 'The limit field must be between 1 and 100.', errors: { limit: ['The limit field must be between 1 and 100.'] } } });
    expect(PipetowerErrorSchema.safeParse(bad.body).success).toBe(true);
  });

  it('answers a server that sent no sample with the host facts its row holds', async () => {
    const quiet = await insertDevice({ hostname: 'quiet-pi' });
    const res = await call(`/api/servers/${quiet}/metrics`, viewer);
    expect(res.status).toBe(200);
    expect(res.body.data.map((r: { type: string; metric: string; value: string }) => [r.type, r.metric, r.value])).toEqual([
      ['HostInfo', 'hostname', 'quiet-pi'],
      ['HostInfo', 'operating_system', 'Ubuntu 18.04 bionic'],
      ['HostInfo', 'architecture', 'x86-64'],
    ]);
  });

  it("is a 404 in Pipetower's form for another team's server, as for one that does not exist", async () => {
    const theirs = await call(`/api/servers/${dev.deviceId}/metrics`, outsider);
    const none = await call('/api/servers/no-such-server/metrics', outsider);
    expect(theirs).toEqual({ status: 404, body: { message: 'Not found.' } });
    expect(none).toEqual(theirs);
  });
});
