// The metrics capability in a real DeviceHub with a fake agent: a sample stored, acknowledged,
// published to the hub's metrics watchers (with its device and team) and forwarded to the
// FleetHub at most once per refresh interval; a sample sent twice stored once; bad samples
// (out of range, missing a field, from the future, older than the longest retention) refused,
// counted, acknowledged and never stored while the agent stays connected; a backlog landing at
// its own timestamps in raw and in the rollups; metrics_config on hello, when a metrics watcher
// opens and closes, and when the refresh interval changes; a moved device's samples naming its
// new team; watchers of another team getting nothing.
import { env, runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, TEST_TEAM, userWithKey } from './helpers.ts';
import { eventually, waitFor } from './device-helpers.ts';
import { makeTeam } from './kvm-helpers.ts';
import { hub, inStore, metricsDevice, rawTimes, sample, watchMetrics } from './metrics-helpers.ts';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';
import { DEFAULT_RETENTION_MS } from '../../shared/api/series.ts';
import type { HistoryResponse } from '../../shared/api/metrics.ts';

let admin: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
});

const MIN = 60_000;
const second = (t: number) => Math.floor(t / 1000) * 1000;

describe('a sample from the agent', () => {
  it("is stored, acknowledged, published to the hub's metrics watchers with its device and team, and kept as the latest", async () => {
    const dev = await metricsDevice(admin);
    const w = await watchMetrics(dev.deviceId);
    const at = second(Date.now());
    await dev.send(sample(at, 33.3));
    await waitFor(() => w.events().length === 1, 'the metrics event');
    expect(w.events()[0]).toMatchObject({ agent_id: dev.deviceId, team_id: TEST_TEAM, timestamp: new Date(at).toISOString(), cpu: { totalUsage: 33.3 } });
    expect(await rawTimes(dev.deviceId)).toEqual([at]);
    expect((await hub(dev.deviceId).latestMetrics())?.sample.cpu.totalUsage).toBe(33.3);
    expect(await dev.counters()).toMatchObject({ metricsStored: 1, metricsRefused: 0, badFrames: 0 });
    // Its series, as a raw history point: the seed's shape, avg = min = max.
    const h = (await hub(dev.deviceId).metricsHistory({ resolution: 'raw', from: at - 1000, to: at + 1000, series: 'cpu,memory,cpu.1' })) as HistoryResponse;
    expect(h).toEqual({
      from: new Date(at - 1000).toISOString(),
      to: new Date(at + 1000).toISOString(),
      resolution: 'raw',
      agent_id: dev.deviceId,
      data: [{ timestamp: new Date(at).toISOString(), cpu: { avg: 33.3, min: 33.3, max: 33.3 }, 'cpu.1': { avg: 16.65, min: 16.65, max: 16.65 }, memory: { avg: 25, min: 25, max: 25 } }],
    });
    w.ws.close();
  });

  it('sent twice (its ack was lost) is acknowledged again, stored and published once', async () => {
    const dev = await metricsDevice(admin);
    const w = await watchMetrics(dev.deviceId);
    const at = second(Date.now());
    const seq = await dev.send(sample(at));
    await dev.sendRaw({ t: 'metrics', boot: dev.boot, seq, sample: sample(at) }, seq);
    await dev.send(sample(at + 1000));
    await waitFor(() => w.events().length === 2, 'two events');
    expect(w.events().map((e) => e.timestamp)).toEqual([at, at + 1000].map((t) => new Date(t).toISOString()));
    expect(await rawTimes(dev.deviceId)).toEqual([at, at + 1000]);
    expect((await dev.counters()).metricsStored).toBe(2);
    w.ws.close();
  });

  it('out of range, missing a field, from the future or older than the longest retention: refused, counted, acknowledged, never stored; the agent stays connected', async () => {
    const dev = await metricsDevice(admin);
    const w = await watchMetrics(dev.deviceId);
    const now = second(Date.now());
    const good = sample(now);
    const { memory: _memory, ...noMemory } = good;
    const bad = [
      { ...good, cpu: { ...good.cpu, totalUsage: 150 } },
      noMemory,
      { ...good, temperature: { sensors: [{ name: 'cpu', value: 9999 }] } },
      sample(now + 10 * MIN),
      sample(now - DEFAULT_RETENTION_MS['1h'] - MIN),
    ];
    for (const s of bad) {
      const seq = dev.nextSeq();
      await dev.sendRaw({ t: 'metrics', boot: dev.boot, seq, sample: s }, seq);
    }
    // One whose seq cannot be read is refused too, with no ack to send.
    dev.agent.ws.send(JSON.stringify({ t: 'metrics', boot: dev.boot, seq: 'one', sample: good }));
    await eventually(async () => (await dev.counters()).metricsRefused === bad.length + 1, 'every refusal counted');
    expect(await rawTimes(dev.deviceId)).toEqual([]);
    expect(await dev.counters()).toMatchObject({ metricsStored: 0, badFrames: 0 });
    expect(w.events()).toEqual([]);
    // Still connected: the next good sample is stored.
    expect(dev.agent.ws.readyState).toBe(WebSocket.OPEN);
    await dev.send(good);
    expect(await rawTimes(dev.deviceId)).toEqual([now]);
    await waitFor(() => w.events().length === 1, 'the good sample');
    // Not JSON at all, or another kind's, is still a bad frame.
    dev.agent.ws.send('{"t":"metrics"');
    await eventually(async () => (await dev.counters()).badFrames === 1, 'the bad frame');
    expect((await dev.counters()).metricsRefused).toBe(bad.length + 1);
    w.ws.close();
  });
});

describe("the hub's own watchers", () => {
  it('get every sample while someone watches and a replay window after (a reconnect resumes); after that samples write no watcher rows and a resume across them is a gap', async () => {
    const dev = await metricsDevice(admin);
    const metricsRows = () => runInDurableObject(hub(dev.deviceId), (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM watch_log WHERE topic = 'metrics'").one().n);
    const t = second(Date.now());
    // Nobody has watched this device: its sample is stored, not published.
    await dev.send(sample(t));
    expect(await rawTimes(dev.deviceId)).toEqual([t]);
    expect(await metricsRows()).toBe(0);
    const w = await watchMetrics(dev.deviceId);
    await dev.send(sample(t + 1000));
    await waitFor(() => w.events().length === 1, 'the live event');
    const seen = w.received.find((m) => m.t === 'event')!.id as string;
    w.ws.close();
    await eventually(() => runInDurableObject(hub(dev.deviceId), (_i, state) => state.getWebSockets('metrics').length === 0), 'the watcher gone');
    // Just left: still published, so its reconnect resumes with what it missed.
    await dev.send(sample(t + 2000));
    const back = await watchMetrics(dev.deviceId, { after: seen });
    await waitFor(() => back.events().length === 1, 'the replay');
    expect(back.events()[0]!.timestamp).toBe(new Date(t + 2000).toISOString());
    const resumeFrom = back.received.find((m) => m.t === 'event')!.id as string;
    back.ws.close();
    await eventually(() => runInDurableObject(hub(dev.deviceId), (_i, state) => state.getWebSockets('metrics').length === 0), 'the watcher gone');
    // A replay window later (the hub's memory of its last watcher set back), samples are skipped…
    await runInDurableObject(hub(dev.deviceId), (instance) => void ((instance as unknown as { caps: { metrics: { watchedAt: number } } }).caps.metrics.watchedAt = 0));
    const rows = await metricsRows();
    await dev.send(sample(t + 3000));
    await dev.send(sample(t + 4000));
    expect(await metricsRows()).toBe(rows);
    expect(await rawTimes(dev.deviceId)).toEqual([0, 1, 2, 3, 4].map((i) => t + i * 1000));
    // …and a resume across them is told it missed something.
    const late = await watchMetrics(dev.deviceId, { after: resumeFrom });
    await waitFor(() => late.received.length >= 1, 'the gap');
    expect(late.received[0]).toMatchObject({ t: 'gap' });
    late.ws.close();
  });
});

describe('a backlog', () => {
  it('lands at its own timestamps in raw and in the closed rollups, acknowledged with its last seq; its bad points are refused alone; nothing is published', async () => {
    const dev = await metricsDevice(admin);
    const w = await watchMetrics(dev.deviceId);
    const now = Date.now();
    await dev.send(sample(second(now)));
    // Ten points of an outage 2 h ago, one a minute (older than raw's hour by their time, received now).
    const start = Math.floor((now - 2 * 60 * MIN) / (60 * MIN)) * 60 * MIN + 10 * MIN;
    const points = Array.from({ length: 10 }, (_, i) => ({ timestamp: new Date(start + i * MIN).toISOString(), series: { cpu: 10 + i, memory: 50.25 } }));
    await dev.backlog(points, 3);
    const times = await rawTimes(dev.deviceId);
    expect(times.filter((t) => t < now - 60 * MIN)).toEqual(points.map((p) => Date.parse(p.timestamp)));
    const h = (await hub(dev.deviceId).metricsHistory({ resolution: '1m', from: start, to: start + 10 * MIN, series: 'cpu' })) as HistoryResponse;
    expect(h.data).toEqual(points.map((p, i) => ({ timestamp: p.timestamp, cpu: { avg: 10 + i, min: 10 + i, max: 10 + i } })));
    const hour = (await hub(dev.deviceId).metricsHistory({ resolution: '1h', from: start - 10 * MIN, to: start, series: 'cpu,memory' })) as HistoryResponse;
    expect(hour.data).toEqual([{ timestamp: new Date(start - 10 * MIN).toISOString(), cpu: { avg: 14.5, min: 10, max: 19 }, memory: { avg: 50.25, min: 50.25, max: 50.25 } }]);
    const rollup = await inStore(dev.deviceId, (s) => s.rollup('1h', start - 10 * MIN));
    expect(rollup).toEqual({ cpu: [14_500, 10, 1000, 1900], memory: [50_250, 10, 5025, 5025] });

    // A chunk with a bad point (a series name no series has, a timestamp that is no time): the good ones are stored.
    const seqs = [dev.nextSeq(), dev.nextSeq(), dev.nextSeq()];
    await dev.sendRaw(
      {
        t: 'metrics_backlog',
        boot: dev.boot,
        points: [
          { seq: seqs[0], timestamp: new Date(start + 30 * MIN).toISOString(), series: { cpu: 1 } },
          { seq: seqs[1], timestamp: new Date(start + 31 * MIN).toISOString(), series: { 'NOT A SERIES': 1 } },
          { seq: seqs[2], timestamp: 'yesterday', series: { cpu: 1 } },
        ],
      },
      seqs[2]!,
    );
    expect((await rawTimes(dev.deviceId)).filter((t) => t > start + 20 * MIN && t < now - 30 * MIN)).toEqual([start + 30 * MIN]);
    expect(await dev.counters()).toMatchObject({ metricsRefused: 2, metricsStored: 12, badFrames: 0 });
    // Only the live sample was published: a backlog is history.
    expect(w.events()).toHaveLength(1);
    w.ws.close();
  });
});

describe('metrics_config', () => {
  it('after hello: the refresh interval (D1 settings, else 5 s); 1 s while a metrics watcher is open; back when it closes; a new refresh interval at once', async () => {
    const dev = await metricsDevice(admin);
    await waitFor(() => dev.configs().length === 1, 'the config after hello');
    expect(dev.configs()[0]).toEqual({ t: 'metrics_config', interval_ms: 5000, watch: { processes: [], containers: [] } });
    const w = await watchMetrics(dev.deviceId);
    await waitFor(() => dev.configs().length === 2, 'the live config');
    expect(dev.configs()[1]!.interval_ms).toBe(1000);
    // A second watcher changes nothing; the first one leaving neither.
    const w2 = await watchMetrics(dev.deviceId);
    w2.ws.close();
    await new Promise((r) => setTimeout(r, 300));
    w.ws.close();
    await waitFor(() => dev.configs().length === 3, 'the config once nobody watches');
    expect(dev.configs().map((c) => c.interval_ms)).toEqual([5000, 1000, 5000]);
    await hub(dev.deviceId).refreshChanged(30);
    await waitFor(() => dev.configs().length === 4, 'the new refresh interval');
    expect(dev.configs()[3]!.interval_ms).toBe(30_000);
    // While watched, a new refresh interval does not slow the live device.
    const w3 = await watchMetrics(dev.deviceId);
    await waitFor(() => dev.configs().length === 5, 'live again');
    await hub(dev.deviceId).refreshChanged(60);
    await dev.send(sample(second(Date.now()))); // something that passes through the hub after the change
    expect(dev.configs().map((c) => c.interval_ms)).toEqual([5000, 1000, 5000, 30_000, 1000]);
    w3.ws.close();
    await waitFor(() => dev.configs().length === 6, 'the new interval once nobody watches');
    expect(dev.configs()[5]!.interval_ms).toBe(60_000);
  });

  it("reads the relay's refresh interval from D1's settings on hello", async () => {
    await env.DB.prepare("INSERT INTO settings (key, value, updated_at) VALUES ('metrics.refresh_seconds', '17', 0)").run();
    try {
      const dev = await metricsDevice(admin);
      await waitFor(() => dev.configs().length === 1, 'the config after hello');
      expect(dev.configs()[0]!.interval_ms).toBe(17_000);
    } finally {
      await env.DB.prepare("DELETE FROM settings WHERE key = 'metrics.refresh_seconds'").run();
    }
  });
});

describe('teams and the FleetHub', () => {
  it('forwards a sample to the FleetHub at most once per refresh interval, as the latest of the device in its team', async () => {
    const dev = await metricsDevice(admin);
    await hub(dev.deviceId).refreshChanged(3600);
    const t = second(Date.now());
    for (let i = 0; i < 3; i++) await dev.send(sample(t + i * 1000, 10 + i));
    const latestOf = async (teams: string[] | null) => (await fleetHubFor(env).latestMetrics(teams)).find((e) => e.agent_id === dev.deviceId);
    await eventually(async () => !!(await latestOf([TEST_TEAM])), 'the latest in the FleetHub');
    expect(await latestOf([TEST_TEAM])).toMatchObject({ agent_id: dev.deviceId, team_id: TEST_TEAM, cpu: { totalUsage: 10 } });
    expect(await latestOf(['another-team'])).toBeUndefined();
    // Deleted (DELETE /api/v1/devices/:id): the FleetHub forgets its latest sample.
    expect((await api(`/api/v1/devices/${dev.deviceId}`, { key: admin, method: 'DELETE' })).status).toBe(204);
    await eventually(async () => !(await latestOf(null)), 'the FleetHub to forget the device');
  });

  it("names a moved device's new team from its next sample (deviceMoved), and a watcher of another team never gets the device's samples", async () => {
    await makeTeam('metrics-b');
    const dev = await metricsDevice(admin);
    const mine = await watchMetrics(dev.deviceId, { teams: [TEST_TEAM], user_id: 'u-a', credential_id: 'key-u-a' });
    const theirs = await watchMetrics(dev.deviceId, { teams: ['metrics-b'], user_id: 'u-b', credential_id: 'key-u-b' });
    const t = second(Date.now());
    await dev.send(sample(t));
    await waitFor(() => mine.events().length === 1, 'the event in the own team');
    await env.DB.prepare('UPDATE devices SET team_id = ?1 WHERE id = ?2').bind('metrics-b', dev.deviceId).run();
    await hub(dev.deviceId).deviceMoved();
    await dev.send(sample(t + 1000));
    await waitFor(() => theirs.events().length === 1, 'the event in the new team');
    expect(theirs.events()[0]).toMatchObject({ team_id: 'metrics-b', timestamp: new Date(t + 1000).toISOString() });
    expect(mine.events().map((e) => e.team_id)).toEqual([TEST_TEAM]);
    mine.ws.close();
    theirs.ws.close();
  });
});
