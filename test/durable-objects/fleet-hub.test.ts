// The FleetHub on its own, in workerd: event ids strictly increasing, the replay window bounded
// to the last 1,000 events (a resume from before it is a gap), the agent_id filter applied to a
// replay, the ack bound (a resume's replay on top of it), and the watch request the Worker sends
// schema-checked. Each test uses its own hub (the scope parameter), so ids start at 1.
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';
import { FLEET_REPLAY } from '../../durable-objects/fleet-hub.ts';
import { INTERNAL } from '../../durable-objects/hub/contract.ts';
import { STREAM_WINDOW, type StatusEvent } from '../../shared/api/stream.ts';

const event = (agent: string, status: StatusEvent['status'] = 'online'): StatusEvent => ({ agent_id: agent, status, timestamp: new Date().toISOString() });

/** Opens a watcher socket on the hub and collects what it sends. */
async function watch(scope: string, agentId: string | null, after: string | null) {
  const res = await fleetHubFor(env, scope).fetch('https://fleet-hub/watch', {
    headers: { upgrade: 'websocket', [INTERNAL.watch]: JSON.stringify({ topics: ['status'], agent_id: agentId, after }) },
  });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const got: any[] = [];
  ws.addEventListener('message', (e) => got.push(JSON.parse(e.data as string)));
  ws.accept();
  return { ws, got };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('FleetHub', () => {
  it('gives events strictly increasing ids and sends them to its watchers live', async () => {
    const hub = fleetHubFor(env, 'ids');
    const live = await watch('ids', null, null);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await hub.publish(event('a', i % 2 ? 'offline' : 'online')));
    expect(ids).toEqual(['1', '2', '3', '4', '5']);
    await until(() => live.got.length >= 5);
    expect(live.got.map((m) => [m.t, m.id, m.event, m.data.status])).toEqual(ids.map((id, i) => ['event', id, 'status', i % 2 ? 'offline' : 'online']));
    live.ws.close();
  });

  it('keeps the last 1,000 events: a resume inside the window replays, one before it is a gap', async () => {
    const hub = fleetHubFor(env, 'window');
    const total = FLEET_REPLAY.events + 5;
    for (let i = 0; i < total; i++) await hub.publish(event(i % 2 ? 'a' : 'b'));
    const inside = await watch('window', null, '5');
    await until(() => inside.got.length >= FLEET_REPLAY.events);
    expect(inside.got.length).toBe(FLEET_REPLAY.events);
    expect(inside.got[0].id).toBe('6');
    expect(inside.got.at(-1).id).toBe(String(total));
    const before = await watch('window', null, '4');
    const future = await watch('window', null, String(total + 10));
    const current = await watch('window', null, String(total));
    await until(() => before.got.length >= 1 && future.got.length >= 1);
    expect(before.got).toEqual([{ t: 'gap', id: String(total) }]);
    expect(future.got).toEqual([{ t: 'gap', id: String(total) }]);
    // Nothing was missed: nothing is replayed, and the next event is live.
    await hub.publish(event('a'));
    await until(() => current.got.length >= 1);
    expect(current.got.map((m) => m.id)).toEqual([String(total + 1)]);
    for (const w of [inside, before, future, current]) w.ws.close();
  });

  it('applies the agent_id filter to the replay and to live events', async () => {
    const hub = fleetHubFor(env, 'filter');
    for (const a of ['a', 'b', 'a', 'b']) await hub.publish(event(a));
    const onlyB = await watch('filter', 'b', '0');
    await hub.publish(event('a'));
    await hub.publish(event('b', 'offline'));
    await until(() => onlyB.got.length >= 3);
    expect(onlyB.got.map((m) => [m.id, m.data.agent_id])).toEqual([['2', 'b'], ['4', 'b'], ['6', 'b']]);
    onlyB.ws.close();
  });

  it('gives a resume its replay on top of the window: a watcher that never acks gets the replay, then a window of live events, then dropped', async () => {
    const hub = fleetHubFor(env, 'credit');
    for (let i = 0; i < FLEET_REPLAY.events; i++) await hub.publish(event('a'));
    const resumed = await watch('credit', null, '0');
    let closed: number | null = null;
    resumed.ws.addEventListener('close', (e) => void (closed = e.code));
    for (let i = 0; i <= STREAM_WINDOW; i++) await hub.publish(event('a'));
    await until(() => closed !== null);
    expect(closed).toBe(1013);
    expect(resumed.got.filter((m) => m.t === 'event')).toHaveLength(FLEET_REPLAY.events + STREAM_WINDOW);
    expect(resumed.got.at(-1)).toMatchObject({ t: 'dropped', reason: expect.any(String) });
    expect(await hub.stats()).toMatchObject({ dropped: 1, refused: 0 });
  });

  it('refuses a watch request it cannot read, and a publish that is not a status event', async () => {
    const hub = fleetHubFor(env, 'bad');
    for (const header of ['not json', '{}', JSON.stringify({ topics: ['metrics'], agent_id: null, after: null }), JSON.stringify({ topics: ['status'], agent_id: null, after: 'x' })]) {
      const res = await hub.fetch('https://fleet-hub/watch', { headers: { upgrade: 'websocket', [INTERNAL.watch]: header } });
      expect([header, res.status]).toEqual([header, 400]);
    }
    expect((await hub.fetch('https://fleet-hub/watch')).status).toBe(426);
    expect(await hub.publish({ agent_id: 'a', status: 'sleeping', timestamp: 'now' } as unknown as StatusEvent)).toBeNull();
    expect((await hub.stats()).lastId).toBe('0');
  });
});
