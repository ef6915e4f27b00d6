// The FleetHub's metrics, in workerd: publishMetrics checks the event, keeps each device's latest
// (latestMetrics filtered by team, forgetDevice) and sends it to the fleet's metrics watchers of
// the device's team only. The metrics topic is compacted: no watcher row per sample (one row
// written per sample, the latest's upsert, and the id mark once a block), and a resume gets each
// device's latest sample newer than its id, once, in id order, then live, never another team's and
// never a gap; status replays as before. Each test uses its own hub (the name parameter).
import { env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';
import { FleetHub } from '../../durable-objects/fleet-hub.ts';
import { INTERNAL } from '../../durable-objects/hub/contract.ts';
import { ID_BLOCK } from '../../durable-objects/hub/watchers.ts';
import type { StatusEvent } from '../../shared/api/stream.ts';
import type { MetricsEvent } from '../../shared/api/metrics.ts';
import { sample } from '../worker/metrics-helpers.ts';

const status = (agent: string, team = 'team-a'): StatusEvent => ({ agent_id: agent, team_id: team, status: 'online', timestamp: new Date().toISOString() });
const metrics = (agent: string, team = 'team-a', cpu = 10): MetricsEvent => ({ ...sample(Date.now(), cpu), agent_id: agent, team_id: team });

async function watch(name: string, topics: string[], after: string | null, teams: string[] | null = null, agentId: string | null = null) {
  const res = await fleetHubFor(env, name).fetch('https://fleet-hub/watch', {
    headers: {
      upgrade: 'websocket',
      [INTERNAL.watch]: JSON.stringify({ topics, agent_id: agentId, after, teams, user_id: 'u', credential_id: 'key-u', expires_at: null }),
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

  it('stores no watcher row for a metrics event: a sample writes its latest row and, once a block, the id mark; status replays as before', async () => {
    const hub = fleetHubFor(env, 'topics');
    const ids: string[] = [];
    for (const agent of ['s1', 's2', 's3']) ids.push((await hub.publish(status(agent)))!);
    const flood = ID_BLOCK + 50;
    // In the hub itself: a thousand calls through the stub would take most of a test's time.
    const rows = await runInDurableObject(hub, async (instance: FleetHub) => {
      let written = 0;
      for (let i = 0; i < flood; i++) {
        await instance.publishMetrics(metrics(`m${i % 100}`));
        written += instance.rowsWritten;
      }
      return written;
    });
    // The upsert of the device's latest row each sample, and the id counter's mark once (the block reserved at id 1 runs out at ID_BLOCK).
    console.log(`FleetHub: ${rows / flood} rows written per metrics sample (${rows} for ${flood})`);
    expect(rows).toBeLessThanOrEqual(flood + Math.ceil((flood + ids.length) / ID_BLOCK));
    // A status watcher resuming from the first status event gets the two after it, not a gap.
    const st = await watch('topics', ['status'], ids[0]!);
    await until(() => st.got.length >= 2);
    expect(st.got.map((m) => [m.t, m.id, m.data?.agent_id])).toEqual([
      ['event', ids[1], 's2'],
      ['event', ids[2], 's3'],
    ]);
    // From before everything: status and metrics together are the three status events and each device's latest sample, in id order, no gap.
    const last = Number((await hub.stats()).lastId);
    expect(last).toBe(flood + ids.length);
    const both = await watch('topics', ['status', 'metrics'], '0');
    await until(() => both.got.length >= 103);
    expect(both.got).toHaveLength(103);
    expect(both.got.slice(0, 3).map((m) => m.data?.agent_id)).toEqual(['s1', 's2', 's3']);
    const latest = both.got.slice(3);
    expect(latest.every((m) => m.t === 'event' && m.event === 'metrics')).toBe(true);
    expect(new Set(latest.map((m) => m.data?.agent_id)).size).toBe(100);
    expect(latest.map((m) => Number(m.id))).toEqual(Array.from({ length: 100 }, (_, i) => last - 99 + i));
    // A status event published now still joins a status replay at once.
    const next = await hub.publish(status('s4'));
    await until(() => st.got.length >= 3);
    expect(st.got.at(-1)).toMatchObject({ id: next, data: { agent_id: 's4' } });
    for (const w of [st, both]) w.ws.close();
  });
});

describe('FleetHub metrics resume (compacted)', () => {
  it("gives a watcher resuming after N each device's latest sample newer than N, once, in id order, then live; never another team's", async () => {
    const hub = fleetHubFor(env, 'compacted');
    // 1 a (team-a), 2 b (team-b), 3 c (team-a), 4 a again, 5 a status event.
    await hub.publishMetrics(metrics('a', 'team-a', 1));
    await hub.publishMetrics(metrics('b', 'team-b', 2));
    await hub.publishMetrics(metrics('c', 'team-a', 3));
    await hub.publishMetrics(metrics('a', 'team-a', 4));
    await hub.publish(status('a'));
    const cpu = (w: { got: { t: string; id?: string; data?: Record<string, unknown> }[] }) =>
      w.got.map((m) => [m.t, m.id, m.data?.agent_id, (m.data?.cpu as { totalUsage?: number } | undefined)?.totalUsage]);
    // Team A after 2: c (3) and a's latest (4), not a's first sample (1), not b; the status event is not asked for.
    const a = await watch('compacted', ['metrics'], '2', ['team-a']);
    // After 3: a's latest only (c's latest is 3, not newer).
    const a3 = await watch('compacted', ['metrics'], '3', ['team-a']);
    // After 4: nothing, though the last id given (5) is newer: a status event.
    const a4 = await watch('compacted', ['metrics'], '4', ['team-a']);
    // An instance admin from the start: every device's latest, in id order.
    const admin = await watch('compacted', ['metrics'], '0', null);
    // Team B, from the start, following team A's device: nothing of it.
    const nosy = await watch('compacted', ['metrics'], '0', ['team-b'], 'a');
    const onlyC = await watch('compacted', ['metrics'], '0', ['team-a'], 'c');
    await until(() => a.got.length >= 2 && a3.got.length >= 1 && admin.got.length >= 3 && onlyC.got.length >= 1);
    expect(cpu(a)).toEqual([['event', '3', 'c', 3], ['event', '4', 'a', 4]]);
    expect(cpu(a3)).toEqual([['event', '4', 'a', 4]]);
    expect(cpu(admin)).toEqual([['event', '2', 'b', 2], ['event', '3', 'c', 3], ['event', '4', 'a', 4]]);
    expect(cpu(onlyC)).toEqual([['event', '3', 'c', 3]]);
    // Then live, once each: a sample of a (team A) and one of b (team B).
    await hub.publishMetrics(metrics('a', 'team-a', 6));
    await hub.publishMetrics(metrics('b', 'team-b', 7));
    await until(() => a.got.length >= 3 && a3.got.length >= 2 && a4.got.length >= 1 && admin.got.length >= 5);
    // The replay was no gap, and nothing came twice.
    expect(cpu(a)).toEqual([['event', '3', 'c', 3], ['event', '4', 'a', 4], ['event', '6', 'a', 6]]);
    expect(cpu(a3)).toEqual([['event', '4', 'a', 4], ['event', '6', 'a', 6]]);
    expect(cpu(a4)).toEqual([['event', '6', 'a', 6]]);
    expect(cpu(admin).map((m) => m[1])).toEqual(['2', '3', '4', '6', '7']);
    expect(nosy.got).toEqual([]);
    expect(cpu(onlyC)).toEqual([['event', '3', 'c', 3]]);
    // A device that moved to team B: its latest sample now replays to team B, not to team A.
    await hub.publishMetrics(metrics('c', 'team-b', 8));
    const b = await watch('compacted', ['metrics'], '0', ['team-b']);
    const a0 = await watch('compacted', ['metrics'], '0', ['team-a']);
    await until(() => b.got.length >= 2 && a0.got.length >= 1);
    expect(cpu(b)).toEqual([['event', '7', 'b', 7], ['event', '8', 'c', 8]]);
    expect(cpu(a0)).toEqual([['event', '6', 'a', 6]]);
    // A resume from an id this hub never gave is still a gap.
    const future = await watch('compacted', ['metrics'], '99', ['team-a']);
    await until(() => future.got.length >= 1);
    expect(future.got).toEqual([{ t: 'gap', id: '8' }]);
    for (const w of [a, a3, a4, admin, nosy, onlyC, b, a0, future]) w.ws.close();
  });

  it('takes a latest table from before event ids: its samples still paint, replay to no one, and the next sample replaces them', async () => {
    const hub = fleetHubFor(env, 'compacted-legacy');
    await runInDurableObject(hub, (instance: FleetHub, state) => {
      const sql = state.storage.sql;
      sql.exec('DROP TABLE fleet_latest');
      sql.exec('CREATE TABLE fleet_latest (agent_id TEXT PRIMARY KEY, team_id TEXT NOT NULL, data TEXT NOT NULL) WITHOUT ROWID');
      sql.exec('INSERT INTO fleet_latest VALUES (?, ?, ?)', 'old', 'team-a', JSON.stringify(metrics('old')));
      // The hub as it starts after the upgrade.
      const fresh = new FleetHub(state, env);
      Object.assign(instance, { watchers: (fresh as unknown as Record<string, unknown>).watchers });
    });
    expect((await hub.latestMetrics(null)).map((e) => e.agent_id)).toEqual(['old']);
    const before = await watch('compacted-legacy', ['metrics'], '0');
    const id = await hub.publishMetrics(metrics('old', 'team-a', 5));
    const after = await watch('compacted-legacy', ['metrics'], '0');
    await until(() => before.got.length >= 1 && after.got.length >= 1);
    expect(before.got.map((m) => m.id)).toEqual([id]);
    expect(after.got.map((m) => [m.id, m.data?.agent_id])).toEqual([[id, 'old']]);
    for (const w of [before, after]) w.ws.close();
  });

  it("forgets a deleted device's latest sample for a resume too", async () => {
    const hub = fleetHubFor(env, 'compacted-forget');
    await hub.publishMetrics(metrics('a'));
    await hub.publishMetrics(metrics('b'));
    await hub.forgetDevice('a');
    const w = await watch('compacted-forget', ['metrics'], '0', ['team-a']);
    await until(() => w.got.length >= 1);
    expect(w.got.map((m) => [m.id, m.data?.agent_id])).toEqual([['2', 'b']]);
    w.ws.close();
  });
});
