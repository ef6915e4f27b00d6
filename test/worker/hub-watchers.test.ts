// One DeviceHub with its agent and several watchers at once, inside workerd: the agent stays
// connected through heartbeats and alarms, the watchers get status events and are never taken for
// the agent (no frame of theirs reaches the agent's handlers, no heartbeat check closes them), a
// second agent connection replaces the first while the watchers stay, and what a watcher sends
// that is not an ack is refused ({"t":"error"}) with a reason and counted, and a watcher is closed when
// its credential expires, on the same alarm as the heartbeat. HEARTBEAT_INTERVAL_MS is 1000 here.
import { env, runInDurableObject } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, TEST_TEAM, userWithKey } from './helpers.ts';
import { connectAgent, enrollDevice, eventually, waitFor } from './device-helpers.ts';
import { HEARTBEAT_PING } from '../../shared/protocol/envelope.ts';
import { INTERNAL } from '../../durable-objects/hub/contract.ts';
import type { Watchers } from '../../durable-objects/hub/watchers.ts';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';
import { STREAM_WINDOW as WATCHER_WINDOW } from '../../shared/api/stream.ts';
import { StreamCloseCode } from '../../shared/codes.ts';

let admin: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
});

const hub = (deviceId: string) => env.DEVICE_HUB.get(env.DEVICE_HUB.idFromName(deviceId));

/** A watcher on the hub, as the Worker would open one (the internal headers only it can set); an instance admin's unless `request` says. */
async function watch(deviceId: string, request: Record<string, unknown> = {}) {
  const res = await hub(deviceId).fetch('http://hub/watch', {
    headers: { upgrade: 'websocket', [INTERNAL.kind]: 'watch', [INTERNAL.watch]: JSON.stringify({ topics: ['status'], teams: null, user_id: 'admin', credential_id: 'key-admin', expires_at: null, ...request }) },
  });
  const ws = res.webSocket;
  if (res.status !== 101 || !ws) throw new Error(`watch failed: ${res.status} ${await res.text()}`);
  ws.accept();
  const received: Record<string, unknown>[] = [];
  let closed: { code: number; reason: string } | null = null;
  ws.addEventListener('message', (e) => {
    received.push(JSON.parse(String(e.data)) as Record<string, unknown>);
  });
  ws.addEventListener('close', (e) => {
    closed = { code: e.code, reason: e.reason };
  });
  return { ws, received, closed: () => closed, statuses: () => received.filter((m) => m.t === 'event').map((m) => (m.data as { status: string }).status) };
}

/** The hub's watchers, to publish many events at once (a device's own events are few and slow). */
const watchersOf = (instance: unknown) => (instance as { watchers: Watchers }).watchers;

const online = async (deviceId: string) => (await env.DB.prepare('SELECT online FROM devices WHERE id = ?1').bind(deviceId).first<{ online: number }>())?.online === 1;

describe('a DeviceHub with an agent and watchers', () => {
  it('keeps the agent through heartbeats and alarms, tells every watcher online and offline, and never closes a watcher for silence', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true, facts: { hostname: 'pi-watch' } });
    const w1 = await watch(dev.deviceId);
    const w2 = await watch(dev.deviceId);
    const agent = await connectAgent(dev.deviceId, dev.privateKey);
    await waitFor(() => w1.statuses().includes('online') && w2.statuses().includes('online'), 'online events');
    const event = w1.received.find((m) => m.t === 'event')!;
    expect(event).toMatchObject({ t: 'event', event: 'status', id: expect.stringMatching(/^\d+$/) });
    expect(event.data).toMatchObject({ agent_id: dev.deviceId, team_id: TEST_TEAM, status: 'online', name: expect.any(String) });
    expect(new Date((event.data as { timestamp: string }).timestamp).toISOString()).toBe((event.data as { timestamp: string }).timestamp);

    // Heartbeats for well past the heartbeat window (3 s): the alarm finds the agent alive each time.
    const beat = setInterval(() => agent.ws.send(HEARTBEAT_PING), 250);
    try {
      await new Promise((r) => setTimeout(r, 4500));
    } finally {
      clearInterval(beat);
    }
    expect(agent.isClosed()).toBe(false);
    expect(await online(dev.deviceId)).toBe(true);
    expect(w1.closed()).toBeNull();
    expect(w2.closed()).toBeNull();
    expect(w1.statuses()).toEqual(['online']);

    // Silence: the agent is closed for it (4008), the watchers hear offline and stay.
    expect((await agent.closed).code).toBe(4008);
    await waitFor(() => w1.statuses().includes('offline') && w2.statuses().includes('offline'), 'offline events', 5000);
    expect(w1.statuses()).toEqual(['online', 'offline']);
    await eventually(async () => !(await online(dev.deviceId)), 'D1 offline');
    expect(w1.closed()).toBeNull();
    expect(w2.closed()).toBeNull();
  }, 20_000);

  it('lets a second agent connection replace the first while the watchers stay (no offline: the device never left)', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const w = await watch(dev.deviceId);
    const first = await connectAgent(dev.deviceId, dev.privateKey);
    await waitFor(() => w.statuses().includes('online'), 'online');
    const second = await connectAgent(dev.deviceId, dev.privateKey);
    expect((await first.closed).code).toBe(4000);
    expect(second.isClosed()).toBe(false);
    // The new agent answers RPCs: the hub's agent is the second socket, not a watcher.
    const res = await hub(dev.deviceId).call('ping', {}, 1500);
    expect(res).toMatchObject({ ok: false, error: { code: 'DEVICE_TIMEOUT' } });
    const info = await hub(dev.deviceId).call('device_info', {}, 1500);
    expect(info.ok).toBe(true);
    expect(w.closed()).toBeNull();
    expect(w.statuses()).toEqual(['online']);
    second.ws.close(1000, 'done');
    await waitFor(() => w.statuses().includes('offline'), 'offline');
  });

  it("never takes a watcher's frames for the agent's: an RPC answer or a hello from a watcher is refused and counted", async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const agent = await connectAgent(dev.deviceId, dev.privateKey); // it does not answer ping
    const w = await watch(dev.deviceId);
    const pending = hub(dev.deviceId).call('ping', {}, 1500);
    await waitFor(() => agent.received.some((m) => m.t === 'req'), 'the request');
    const id = agent.received.find((m) => m.t === 'req')!.id;
    // The watcher answers the agent's RPC and says hello: neither reaches the agent's handlers.
    w.ws.send(JSON.stringify({ t: 'res', id, ok: true, result: { now: 1 } }));
    w.ws.send(JSON.stringify({ t: 'hello', protocol: 1, agent_version: 'x', capabilities: [] }));
    w.ws.send(new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0, 0]));
    const outcome = await pending;
    expect(outcome).toMatchObject({ ok: false, error: { code: 'DEVICE_TIMEOUT' } });
    await waitFor(() => w.received.filter((m) => m.t === 'error').length === 3, 'three refusals');
    expect(w.received.filter((m) => m.t === 'error').every((m) => typeof m.reason === 'string' && (m.reason as string).length > 0)).toBe(true);
    const counters = await hub(dev.deviceId).counters();
    expect(counters).toMatchObject({ refused: 3, watchers: 1, badFrames: 0 });
    expect(agent.isClosed()).toBe(false);
    expect(w.closed()).toBeNull();
  });

  it('refuses a malformed watcher message with a reason, counts it, and takes a proper ack', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const w = await watch(dev.deviceId);
    // One at a time: this harness may hand a socket's messages to the hub out of order (README).
    w.ws.send('not json');
    await waitFor(() => w.received.filter((m) => m.t === 'error').length === 1, 'the first refusal');
    w.ws.send(JSON.stringify({ t: 'ack', n: 5 }));
    await waitFor(() => w.received.filter((m) => m.t === 'error').length === 2, 'two refusals');
    expect(w.received.map((m) => m.reason)).toEqual(['not JSON', 'acknowledged 5 events with only 0 unacknowledged']);
    expect((await hub(dev.deviceId).counters()).refused).toBe(2);
  });

  it('drops a watcher that falls more than the window behind, and only that one', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const slow = await watch(dev.deviceId);
    const fast = await watch(dev.deviceId);
    fast.ws.addEventListener('message', () => fast.ws.send(JSON.stringify({ t: 'ack', n: 1 })));
    // In batches: the hub takes the fast watcher's acks between them.
    const batch = WATCHER_WINDOW / 2;
    for (let b = 1; b <= 3; b++) {
      await runInDurableObject(hub(dev.deviceId), async (instance) => {
        for (let i = 0; i < batch; i++) await watchersOf(instance).publish('status', { i });
      });
      await waitFor(() => fast.received.length === b * batch, `batch ${b} at the fast watcher`);
      await new Promise((r) => setTimeout(r, 200)); // its acks travel to the hub
    }
    await waitFor(() => slow.closed() !== null, 'the slow watcher closed');
    expect(slow.closed()!.code).toBe(1013);
    expect(slow.received.at(-1)).toMatchObject({ t: 'dropped', reason: expect.any(String) });
    expect(slow.received.filter((m) => m.t === 'event')).toHaveLength(WATCHER_WINDOW);
    expect(fast.closed()).toBeNull();
    expect((await hub(dev.deviceId).counters()).dropped).toBe(1);
  });

  it('replays what a watcher missed after the event id it names, and says gap when that id left the window', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const w = await watch(dev.deviceId);
    const agent = await connectAgent(dev.deviceId, dev.privateKey);
    await waitFor(() => w.statuses().includes('online'), 'online');
    const firstId = String(w.received[0]!.id);
    agent.ws.close(1000, 'bye');
    await waitFor(() => w.statuses().includes('offline'), 'offline');
    const resumed = await watch(dev.deviceId, { after: firstId });
    await waitFor(() => resumed.received.length >= 1, 'replay');
    expect(resumed.statuses()).toEqual(['offline']);
    expect(resumed.received.some((m) => m.t === 'gap')).toBe(false);
    await runInDurableObject(hub(dev.deviceId), async (instance) => {
      for (let i = 0; i < 300; i++) await watchersOf(instance).publish('status', { i });
    });
    const gapped = await watch(dev.deviceId, { after: firstId });
    await waitFor(() => gapped.received.length > 0, 'gap');
    expect(gapped.received[0]).toEqual({ t: 'gap', id: '302' });
  });

  it("closes a watcher when its credential expires (4001), on the hub's one alarm beside the agent's heartbeat deadline", async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const agent = await connectAgent(dev.deviceId, dev.privateKey);
    const beat = setInterval(() => agent.ws.send(HEARTBEAT_PING), 250);
    try {
      const expiring = await watch(dev.deviceId, { credential_id: 'key-expiring', expires_at: Date.now() + 1500 });
      const staying = await watch(dev.deviceId);
      await waitFor(() => expiring.closed() !== null, 'the expired watcher to be closed', 15_000);
      expect(expiring.closed()).toEqual({ code: StreamCloseCode.CREDENTIAL_EXPIRED, reason: 'credential expired' });
      expect([staying.closed(), agent.isClosed()]).toEqual([null, false]);
    } finally {
      clearInterval(beat);
    }
  }, 30_000);

  it('refuses a watch request the contract does not allow', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const ask = (watchHeader: string) =>
      hub(dev.deviceId).fetch('http://hub/watch', { headers: { upgrade: 'websocket', [INTERNAL.kind]: 'watch', [INTERNAL.watch]: watchHeader } });
    expect((await ask('{')).status).toBe(400);
    const who = { teams: null, user_id: 'admin', credential_id: 'key-admin', expires_at: null };
    expect((await ask(JSON.stringify({ topics: ['secrets'], ...who }))).status).toBe(400);
    expect((await ask(JSON.stringify({ topics: ['status'], agent_id: 'another-device', ...who }))).status).toBe(400);
    expect((await ask(JSON.stringify({ topics: ['status'] }))).status).toBe(400); // no teams, no user: not a watch the Worker sends
    const noKind = await hub(dev.deviceId).fetch('http://hub/', { headers: { upgrade: 'websocket' } });
    expect(noKind.status).toBe(400);
    expect(await noKind.json()).toMatchObject({ code: 'BAD_HUB_REQUEST' });
  });
});

/** A watcher on the relay's FleetHub for the callers of `teams`, collecting the status events of one device. */
async function fleetWatch(teams: string[] | null, agentId: string) {
  const res = await fleetHubFor(env).fetch('https://fleet-hub/watch', {
    headers: { upgrade: 'websocket', [INTERNAL.watch]: JSON.stringify({ topics: ['status'], agent_id: agentId, after: null, teams, user_id: 'u', credential_id: 'key-u', expires_at: null }) },
  });
  const ws = res.webSocket!;
  ws.accept();
  const events: { status: string; team_id: string }[] = [];
  ws.addEventListener('message', (e) => {
    const m = JSON.parse(String(e.data)) as { t: string; data: { status: string; team_id: string } };
    if (m.t === 'event') events.push(m.data);
  });
  return { ws, events, seen: () => events.map((d) => `${d.status}@${d.team_id}`) };
}

/**
 * Publishes a marker event of `team` and waits for `w` to get it: one socket's messages arrive in
 * order, so whatever the hub sent it before the marker is in by then (a check that something did
 * not arrive is then meaningful).
 */
async function settle(w: Awaited<ReturnType<typeof fleetWatch>>, agentId: string, team: string) {
  const before = w.events.length;
  await fleetHubFor(env).publish({ agent_id: agentId, team_id: team, status: 'online', timestamp: new Date().toISOString() });
  await waitFor(() => w.events.length > before, 'the marker');
  w.events.pop();
}

describe("a device's status events and its team", () => {
  const OTHER = 'other-team';
  beforeAll(async () => {
    await env.DB.prepare("INSERT OR IGNORE INTO teams (id, name, require_2fa, created_at, updated_at) VALUES (?1, 'Other team', 0, 0, 0)").bind(OTHER).run();
  });

  it('carry the team the device is in at the time: after a move the next event names the new team and reaches only its watchers', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const own = await watch(dev.deviceId);
    const testTeam = await fleetWatch([TEST_TEAM], dev.deviceId);
    const other = await fleetWatch([OTHER], dev.deviceId);
    const all = await fleetWatch(null, dev.deviceId);
    const agent = await connectAgent(dev.deviceId, dev.privateKey);
    await waitFor(() => all.events.length === 1, 'online at the FleetHub');
    await env.DB.prepare('UPDATE devices SET team_id = ?1 WHERE id = ?2').bind(OTHER, dev.deviceId).run();
    agent.ws.close(1000, 'bye');
    await waitFor(() => all.events.length === 2, 'offline at the FleetHub');
    expect(all.seen()).toEqual([`online@${TEST_TEAM}`, `offline@${OTHER}`]);
    expect(own.received.filter((m) => m.t === 'event').map((m) => (m.data as { team_id: string }).team_id)).toEqual([TEST_TEAM, OTHER]);
    await settle(testTeam, dev.deviceId, TEST_TEAM);
    await settle(other, dev.deviceId, OTHER);
    expect(testTeam.seen()).toEqual([`online@${TEST_TEAM}`]);
    expect(other.seen()).toEqual([`offline@${OTHER}`]);
    for (const w of [testTeam, other, all]) w.ws.close();
  });

  it('of a deleted device: its offline goes to the team it was last in, not to everyone', async () => {
    const dev = await enrollDevice(admin, { autoApprove: true });
    const testTeam = await fleetWatch([TEST_TEAM], dev.deviceId);
    const other = await fleetWatch([OTHER], dev.deviceId);
    const all = await fleetWatch(null, dev.deviceId);
    await connectAgent(dev.deviceId, dev.privateKey);
    await waitFor(() => testTeam.events.length === 1, 'online');
    const res = await api(`/api/v1/devices/${dev.deviceId}`, { key: admin, method: 'DELETE' });
    expect(res.status).toBe(204);
    await waitFor(() => testTeam.events.length === 2, 'offline after the delete');
    await waitFor(() => all.events.length === 2, 'offline at the admin');
    expect(testTeam.seen()).toEqual([`online@${TEST_TEAM}`, `offline@${TEST_TEAM}`]);
    await settle(other, dev.deviceId, OTHER);
    expect(other.events).toEqual([]);
    for (const w of [testTeam, other, all]) w.ws.close();
  });
});

describe('the hub’s name', () => {
  it('is the device id (ctx.id.name of an idFromName id)', async () => {
    const name = await runInDurableObject(hub('some-device-id'), (_instance, state) => state.id.name);
    expect(name).toBe('some-device-id');
  });
});
