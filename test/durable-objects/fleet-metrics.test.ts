// The FleetHub's metrics, in workerd: publishMetrics checks the event, keeps each device's latest
// (latestMetrics filtered by team, forgetDevice) and sends it to the fleet's metrics watchers of
// the device's team only; the replay window is per topic, so a flood of metrics events never
// pushes status events out of the status replay (nor a resume of status into a gap), and metrics
// keep a window of their own. Each test uses its own hub (the name parameter).
import { env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';
import { FLEET_METRICS_REPLAY, type FleetHub } from '../../durable-objects/fleet-hub.ts';
import { INTERNAL } from '../../durable-objects/hub/contract.ts';
import type { Watchers } from '../../durable-objects/hub/watchers.ts';
import type { StatusEvent } from '../../shared/api/stream.ts';
import type { MetricsEvent } from '../../shared/api/metrics.ts';
import { sample } from '../worker/metrics-helpers.ts';

const status = (agent: string, team = 'team-a'): StatusEvent => ({ agent_id: agent, team_id: team, status: 'online', timestamp: new Date().toISOString() });
const metrics = (agent: string, team = 'team-a', cpu = 10): MetricsEvent => ({ ...sample(Date.now(), cpu), agent_id: agent, team_id: team });

async function watch(name: string, topics: string[], after: string | null, teams: string[] | null = null) {
  const res = await fleetHubFor(env, name).fetch('https://fleet-hub/watch', {
    headers: {
      upgrade: 'websocket',
      [INTERNAL.watch]: JSON.stringify({ topics, agent_id: null, after, teams, user_id: 'u', credential_id: 'key-u', expires_at: null }),
    },
  });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const got: { t: string; id?: string; event?: string; data?: Record<string, unknown> }[] = [];
  ws.addEventListener('message', (e) => void got.push(JSON.parse(e.data as string)));
  ws.addEventListener('close', () => ws.close());
  ws.accept();
  return { ws, got };
}

const until = async (check: () => boolean | Promise<boolean>) => {
  for (let i = 0; i < 300 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('FleetHub metrics', () => {
  it("keeps each device's latest sample, filtered by team (null: all), forgotten when the device is deleted", async () => {
    const hub = fleetHubFor(env, 'latest');
    expect(await hub.publishMetrics(metrics('a', 'team-a', 1))).toBe('1');
    await hub.publishMetrics(metrics('b', 'team-b', 2));
    await hub.publishMetrics(metrics('a', 'team-a', 3));
    const cpuOf = (events: MetricsEvent[]) => events.map((e) => [e.agent_id, e.team_id, e.cpu.totalUsage]);
    expect(cpuOf(await hub.latestMetrics(['team-a']))).toEqual([['a', 'team-a', 3]]);
    expect(cpuOf(await hub.latestMetrics(['team-b', 'team-c']))).toEqual([['b', 'team-b', 2]]);
    expect(cpuOf(await hub.latestMetrics([]))).toEqual([]);
    expect(cpuOf(await hub.latestMetrics(null))).toEqual([['a', 'team-a', 3], ['b', 'team-b', 2]]);
    // A device that moved is listed under its new team only.
    await hub.publishMetrics(metrics('b', 'team-a', 4));
    expect(cpuOf(await hub.latestMetrics(['team-b']))).toEqual([]);
    await hub.forgetDevice('a');
    expect(cpuOf(await hub.latestMetrics(null))).toEqual([['b', 'team-a', 4]]);
  });

  it('refuses what is not a metrics event (no team, a bad sample), keeping and sending nothing', async () => {
    const hub = fleetHubFor(env, 'refuse');
    const w = await watch('refuse', ['metrics'], null);
    const good = metrics('a');
    const { team_id: _team, ...noTeam } = good;
    expect(await hub.publishMetrics(noTeam as MetricsEvent)).toBeNull();
    expect(await hub.publishMetrics({ ...good, cpu: { ...good.cpu, totalUsage: -1 } })).toBeNull();
    expect(await hub.latestMetrics(null)).toEqual([]);
    expect(await hub.publishMetrics(good)).toBe('1');
    await until(() => w.got.length === 1);
    expect(w.got).toHaveLength(1);
    w.ws.close();
  });

  it("sends a device's metrics event to watchers of its team and instance admins only, live and replayed", async () => {
    const hub = fleetHubFor(env, 'teams');
    const a = await watch('teams', ['metrics'], null, ['team-a']);
    const b = await watch('teams', ['metrics', 'status'], null, ['team-b']);
    const all = await watch('teams', ['metrics'], null, null);
    await hub.publishMetrics(metrics('dev-a', 'team-a'));
    await hub.publishMetrics(metrics('dev-b', 'team-b'));
    await until(() => all.got.length === 2 && a.got.length === 1 && b.got.length === 1);
    expect(a.got.map((m) => m.data?.agent_id)).toEqual(['dev-a']);
    expect(b.got.map((m) => m.data?.agent_id)).toEqual(['dev-b']);
    expect(all.got.map((m) => [m.event, m.data?.agent_id])).toEqual([['metrics', 'dev-a'], ['metrics', 'dev-b']]);
    const resumedB = await watch('teams', ['metrics'], '0', ['team-b']);
    await until(() => resumedB.got.length === 1);
    expect(resumedB.got.map((m) => m.data?.agent_id)).toEqual(['dev-b']);
    for (const w of [a, b, all, resumedB]) w.ws.close();
  });

  it('prunes each topic on its own: metrics events past their window never push status events out, and a status resume is no gap', async () => {
    const hub = fleetHubFor(env, 'topics');
    const ids: string[] = [];
    for (const agent of ['s1', 's2', 's3']) ids.push((await hub.publish(status(agent)))!);
    const flood = FLEET_METRICS_REPLAY.events + 50;
    // In the hub itself: two thousand calls through the stub would take most of a test's time.
    const rows = await runInDurableObject(hub, async (instance: FleetHub) => {
      const watchers = (instance as unknown as { watchers: Watchers }).watchers;
      let steady = 0;
      for (let i = 0; i < flood; i++) {
        await instance.publishMetrics(metrics(`m${i % 100}`));
        if (i >= FLEET_METRICS_REPLAY.events) steady += watchers.rowsWritten;
      }
      return steady / (flood - FLEET_METRICS_REPLAY.events);
    });
    // Past the window, a publish writes the id counter, its row (with its index entry), the pruned row's deletion and the pruned mark, as SQLite counts them.
    console.log(`FleetHub: ${rows} watcher rows written per metrics event past the window (plus one for the latest sample)`);
    expect(rows).toBe(5);
    // A status watcher resuming from the first status event gets the two after it, not a gap.
    const st = await watch('topics', ['status'], ids[0]!);
    await until(() => st.got.length >= 2);
    expect(st.got.map((m) => [m.t, m.id, m.data?.agent_id])).toEqual([
      ['event', ids[1], 's2'],
      ['event', ids[2], 's3'],
    ]);
    // From before everything: the status events are all there, so still no gap for status…
    const st0 = await watch('topics', ['status'], '0');
    await until(() => st0.got.length >= 3);
    expect(st0.got.map((m) => m.data?.agent_id)).toEqual(['s1', 's2', 's3']);
    // …but the oldest metrics events are gone: a metrics resume from there is a gap, one inside the window replays it whole.
    const m0 = await watch('topics', ['metrics'], '3');
    const last = Number((await hub.stats()).lastId);
    await until(() => m0.got.length >= 1);
    expect(m0.got).toEqual([{ t: 'gap', id: String(last) }]);
    const both = await watch('topics', ['status', 'metrics'], String(last - FLEET_METRICS_REPLAY.events));
    await until(() => both.got.length >= FLEET_METRICS_REPLAY.events);
    expect(both.got).toHaveLength(FLEET_METRICS_REPLAY.events);
    expect(both.got[0]!.id).toBe(String(last - FLEET_METRICS_REPLAY.events + 1));
    // A status event published now still joins a status replay at once.
    const next = await hub.publish(status('s4'));
    await until(() => st.got.length >= 3);
    expect(st.got.at(-1)).toMatchObject({ id: next, data: { agent_id: 's4' } });
    for (const w of [st, st0, m0, both]) w.ws.close();
  });
});
