// Watcher storage and its cost, in workerd: ids are reserved in blocks (the mark written once per
// ID_BLOCK ids), a recreated hub instance (a restart, a wake from hibernation: its memory gone)
// gives ids above every id given before, answers a resume from the last id given before it with
// what was published since (no gap), and one from the ids it skipped (never given) with a gap, as
// an id from the future. The pruned mark comes from the oldest row's `prev`, so a topic interleaved
// with another is a gap exactly when one of its own events was pruned, before a restart and after,
// and on a table from before `prev`. And the rows written per event, as upper bounds: a regression
// in what a publish writes fails here (a count, not a timing).
import { env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';
import { FleetHub } from '../../durable-objects/fleet-hub.ts';
import { DEVICE_REPLAY } from '../../durable-objects/device-hub.ts';
import { METRICS_REPLAY } from '../../durable-objects/capabilities/metrics.ts';
import { INTERNAL } from '../../durable-objects/hub/contract.ts';
import { Scheduler } from '../../durable-objects/hub/scheduler.ts';
import { ID_BLOCK, Watchers, type WatchersOptions } from '../../durable-objects/hub/watchers.ts';
import type { StatusEvent } from '../../shared/api/stream.ts';
import type { MetricsEvent } from '../../shared/api/metrics.ts';
import { sample } from '../worker/metrics-helpers.ts';

const status = (agent: string): StatusEvent => ({ agent_id: agent, team_id: 'team-a', status: 'online', timestamp: new Date().toISOString() });
const metrics = (agent: string, cpu = 10): MetricsEvent => ({ ...sample(Date.now(), cpu), agent_id: agent, team_id: 'team-a' });

async function watch(name: string, topics: string[], after: string | null) {
  const res = await fleetHubFor(env, name).fetch('https://fleet-hub/watch', {
    headers: {
      upgrade: 'websocket',
      [INTERNAL.watch]: JSON.stringify({ topics, agent_id: null, after, teams: null, user_id: 'u', credential_id: 'key-u', expires_at: null }),
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

/** Recreates the FleetHub's memory over the same storage, as a restart does: its watchers (and their id counter) are built anew. */
const restart = (name: string) =>
  runInDurableObject(fleetHubFor(env, name), (instance: FleetHub, state) => {
    const fresh = new FleetHub(state, env);
    (instance as unknown as { watchers: Watchers }).watchers = (fresh as unknown as { watchers: Watchers }).watchers;
  });

const mark = (name: string) => runInDurableObject(fleetHubFor(env, name), (_i, state) => state.storage.kv.get<number>('watch:seq'));

/** A Watchers of its own over a hub's storage (a DeviceHub's windows, say), with topics of our choosing. */
const watchersIn = (state: DurableObjectState, opts: Partial<WatchersOptions>) =>
  new Watchers(state, { name: 'test', topics: ['status', 'metrics'], replay: DEVICE_REPLAY, scheduler: new Scheduler(state.storage, {}), ...opts });

describe('watcher ids reserved in blocks', () => {
  it('writes the mark once a block; a recreated hub gives ids above every id given before, and a resume from the last one is no gap', async () => {
    const name = 'ids-restart';
    const hub = fleetHubFor(env, name);
    const before = [];
    for (const a of ['a', 'b', 'c']) before.push(await hub.publish(status(a)));
    expect(before).toEqual(['1', '2', '3']);
    expect(await mark(name)).toBe(ID_BLOCK);
    const live = await watch(name, ['status'], '3');

    await restart(name);
    // The last id given is found in what is stored; the ids above it up to the mark were never given.
    expect((await hub.stats()).lastId).toBe('3');
    const fromLast = await watch(name, ['status'], '3');
    const fromFirst = await watch(name, ['status'], '1');
    const fromHole = await watch(name, ['status'], String(ID_BLOCK - 1));
    await until(() => fromFirst.got.length >= 2 && fromHole.got.length >= 1);
    expect(fromFirst.got.map((m) => m.id)).toEqual(['2', '3']);
    expect(fromHole.got).toEqual([{ t: 'gap', id: '3' }]);
    expect(fromLast.got).toEqual([]);

    // The next id is past the whole block reserved before: strictly above anything the old instance could have given.
    const after = await hub.publish(status('d'));
    expect(after).toBe(String(ID_BLOCK + 1));
    expect(await mark(name)).toBe(2 * ID_BLOCK);
    await until(() => fromLast.got.length >= 1 && live.got.length >= 1);
    expect(fromLast.got.map((m) => [m.t, m.id])).toEqual([['event', after]]);
    expect(live.got.map((m) => [m.t, m.id])).toEqual([['event', after]]);
    // Resumed anew: from the last id before the restart, what came after it and no gap; from inside the hole, still a gap (never given); from past the last id, a gap.
    const again = await watch(name, ['status'], '3');
    const hole = await watch(name, ['status'], '500');
    const future = await watch(name, ['status'], String(ID_BLOCK + 2));
    const current = await watch(name, ['status'], after);
    await until(() => again.got.length >= 1 && hole.got.length >= 1 && future.got.length >= 1);
    expect(again.got.map((m) => [m.t, m.id])).toEqual([['event', after]]);
    expect(hole.got).toEqual([{ t: 'gap', id: after }]);
    expect(future.got).toEqual([{ t: 'gap', id: after }]);
    expect(current.got).toEqual([]);
    for (const w of [live, fromLast, fromFirst, fromHole, again, hole, future, current]) w.ws.close();
  });

  it("finds the last id given in a compacted topic's rows too, and writes the mark once per block across a run", async () => {
    const name = 'ids-compacted';
    const hub = fleetHubFor(env, name);
    await hub.publish(status('s'));
    await hub.publishMetrics(metrics('a'));
    await hub.publishMetrics(metrics('b'));
    await restart(name);
    // Id 3 is a metrics sample, kept only in the latest table.
    expect((await hub.stats()).lastId).toBe('3');
    const m = await watch(name, ['metrics'], '2');
    await until(() => m.got.length >= 1);
    expect(m.got.map((e) => [e.id, e.data?.agent_id])).toEqual([['3', 'b']]);
    // Over two blocks and a half after the restart: the mark is written three times, at the first id of each block.
    const marks = await runInDurableObject(hub, async (instance: FleetHub) => {
      let written = 0;
      for (let i = 0; i < 2.5 * ID_BLOCK; i++) {
        await instance.publishMetrics(metrics(`d${i % 10}`));
        // The upsert is one row; anything above it is the mark.
        written += instance.rowsWritten - 1;
      }
      return written;
    });
    expect(marks).toBe(3);
    expect(await mark(name)).toBe(4 * ID_BLOCK);
    m.ws.close();
  });
});

describe('the pruned mark from prev', () => {
  it('makes a resume a gap exactly when one of its own topics lost an event, with topics interleaved, across a restart', async () => {
    await runInDurableObject(fleetHubFor(env, 'prev'), async (_i, state) => {
      // Both topics keep two events: ids 1 s, 2 m, 3 s, 4 m, 5 s, 6 m, 7 s leave status 5, 7 and metrics 4, 6.
      const opts = { replay: { events: 2, ms: 60 * 60_000 } };
      const w = watchersIn(state, opts);
      for (let i = 1; i <= 7; i++) w.publish(i % 2 ? 'status' : 'metrics', { agent_id: 'a', team_id: 'team-a', n: i });
      const replayed = (watchers: Watchers, from: number, topics: string[]) =>
        (watchers as unknown as { missed(from: number, topics: string[], att: unknown): string[] | null }).missed(from, topics, { agentId: null, teams: null })?.map((m) => JSON.parse(m).id) ?? 'gap';
      for (const watchers of [w, watchersIn(state, opts)]) {
        expect(replayed(watchers, 2, ['status'])).toBe('gap');
        // Status lost 1 and 3; from 3 on nothing of it is missing, though 4 (metrics) sits between.
        expect(replayed(watchers, 3, ['status'])).toEqual(['5', '7']);
        expect(replayed(watchers, 4, ['status'])).toEqual(['5', '7']);
        expect(replayed(watchers, 1, ['metrics'])).toBe('gap');
        expect(replayed(watchers, 2, ['metrics'])).toEqual(['4', '6']);
        expect(replayed(watchers, 2, ['status', 'metrics'])).toBe('gap');
        expect(replayed(watchers, 3, ['status', 'metrics'])).toEqual(['4', '5', '6', '7']);
      }
    });
  });

  it('prunes by age a prefix of the topic only, and the row left names what went', async () => {
    await runInDurableObject(fleetHubFor(env, 'prev-age'), async (_i, state) => {
      const w = watchersIn(state, { replay: { events: 100, ms: 50 } });
      const replayed = (from: number, topics: string[]) =>
        (w as unknown as { missed(from: number, topics: string[], att: unknown): string[] | null }).missed(from, topics, { agentId: null, teams: null })?.map((m) => JSON.parse(m).id) ?? 'gap';
      // 1 s, 2 m, 3 s; then, past the age check's second, 4 s: status 1 and 3 are too old.
      for (const topic of ['status', 'metrics', 'status']) w.publish(topic, { agent_id: 'a', team_id: 'team-a' });
      await new Promise((r) => setTimeout(r, 1_100));
      w.publish('status', { agent_id: 'a', team_id: 'team-a' });
      expect(w.rowsWritten).toBe(3);
      expect(replayed(2, ['status'])).toBe('gap');
      expect(replayed(3, ['status'])).toEqual(['4']);
      // The metrics topic is pruned by its own publishes, not by another topic's.
      expect(replayed(1, ['metrics'])).toEqual(['2']);
    });
  });

  it('moves a table from before watch_log over: its rows get their previous id, and the old pruned marks still count', async () => {
    await runInDurableObject(fleetHubFor(env, 'prev-legacy'), async (_i, state) => {
      const sql = state.storage.sql;
      // The table of a hub from before watch_log (and before prev).
      sql.exec('CREATE TABLE watch_events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, topic TEXT NOT NULL, agent_id TEXT, team_id TEXT, data TEXT NOT NULL, tseq INTEGER)');
      // What the old hub left: status 1 and 3 pruned (mark 3), rows 4 m, 5 s, 6 m, 7 s.
      for (const [id, topic, tseq] of [[4, 'metrics', 2], [5, 'status', 3], [6, 'metrics', 3], [7, 'status', 4]] as const) sql.exec('INSERT INTO watch_events VALUES (?, ?, ?, ?, ?, ?, ?)', id, Date.now(), topic, 'a', 'team-a', '{}', tseq);
      state.storage.kv.put('watch:seq', 7);
      state.storage.kv.put('watch:pruned:status', 3);
      state.storage.kv.put('watch:pruned:metrics', 2);
      const w = watchersIn(state, { replay: { events: 2, ms: 60 * 60_000 } });
      const replayed = (from: number, topics: string[]) =>
        (w as unknown as { missed(from: number, topics: string[], att: unknown): string[] | null }).missed(from, topics, { agentId: null, teams: null })?.map((m) => JSON.parse(m).id) ?? 'gap';
      expect(sql.exec("SELECT name FROM sqlite_master WHERE name = 'watch_events'").toArray()).toEqual([]);
      expect(w.lastId()).toBe(7);
      expect(replayed(2, ['status'])).toBe('gap');
      expect(replayed(3, ['status'])).toEqual(['5', '7']);
      // Id 8 (status) prunes 5: its successor 7 carries prev 5 from the migration.
      w.publish('status', { agent_id: 'a', team_id: 'team-a' });
      expect(replayed(4, ['status'])).toBe('gap');
      expect(replayed(5, ['status'])).toEqual(['7', '8']);
    });
  });
});

describe('rows written per event', () => {
  it('a stored topic past its window: the row and the pruned row (2), plus the mark once a block', async () => {
    const result = await runInDurableObject(fleetHubFor(env, 'rows-device'), async (_i, state) => {
      // A DeviceHub's watched metrics topic: its own window, a sample a second.
      const w = watchersIn(state, { topics: ['metrics', 'status'], topicReplay: { metrics: METRICS_REPLAY } });
      const n = METRICS_REPLAY.events + ID_BLOCK;
      let steady = 0;
      let max = 0;
      for (let i = 0; i < n; i++) {
        w.publish('metrics', { ...metrics('dev'), agent_id: 'dev' });
        if (i >= METRICS_REPLAY.events) {
          steady += w.rowsWritten;
          max = Math.max(max, w.rowsWritten);
        }
      }
      // Status on the same hub, past its window too.
      let status = 0;
      for (let i = 0; i < DEVICE_REPLAY.events + 100; i++) {
        w.publish('status', status_(i));
        if (i >= DEVICE_REPLAY.events) status += w.rowsWritten;
      }
      // Skips: the first after an event marks the topic (one row), the next ones write nothing.
      w.skip('metrics');
      const firstSkip = w.rowsWritten;
      w.skip('metrics');
      const nextSkip = w.rowsWritten;
      return { perSample: steady / ID_BLOCK, max, perStatus: status / 100, firstSkip, nextSkip };
    });
    console.log(`Watchers: ${result.perSample} rows per watched metrics event, ${result.perStatus} per status event past the window`);
    // Before: 5 (the counter, the row and its index entry, the pruned row, the pruned mark).
    expect(result.perSample).toBeLessThanOrEqual(2 + 1 / ID_BLOCK);
    expect(result.max).toBeLessThanOrEqual(3);
    expect(result.perStatus).toBeLessThanOrEqual(2 + 1 / 50);
    expect(result.firstSkip).toBeLessThanOrEqual(2);
    expect(result.nextSkip).toBe(0);
  });

  it('a FleetHub metrics sample: at most 2 rows (the latest upsert, the mark once a block), about 1 on average', async () => {
    const hub = fleetHubFor(env, 'rows-fleet');
    const result = await runInDurableObject(hub, async (instance: FleetHub) => {
      let sum = 0;
      let max = 0;
      for (let i = 0; i < ID_BLOCK; i++) {
        await instance.publishMetrics(metrics(`m${i % 50}`));
        sum += instance.rowsWritten;
        max = Math.max(max, instance.rowsWritten);
      }
      return { avg: sum / ID_BLOCK, max };
    });
    console.log(`FleetHub: ${result.avg} rows per metrics sample`);
    expect(result.max).toBeLessThanOrEqual(2);
    expect(result.avg).toBeLessThanOrEqual(1 + 1 / ID_BLOCK);
  });
});

function status_(i: number): StatusEvent {
  return status(`s${i % 5}`);
}
