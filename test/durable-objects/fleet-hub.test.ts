// The FleetHub on its own, in workerd: event ids strictly increasing, the replay window bounded
// to the last 1,000 events (a resume from before it is a gap), the agent_id filter applied to a
// replay, the ack bound (a resume's replay on top of it), and the watch request the Worker sends
// schema-checked. Teams: a watcher gets and replays only the events of the teams it may see (an
// instance admin's, null, all of them), and revoke() closes exactly the watchers it names (4003).
// Credentials: revoke() by credential closes that credential's watchers only, and a watcher is
// closed (4001) when its credential expires, by the hub's alarm with no event flowing, and at
// fan-out when an event comes first.
// Each test uses its own hub (the name parameter), so ids start at 1.
import { env, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { fleetHubFor } from '../../durable-objects/fleet/publish.ts';
import { FLEET_REPLAY, type FleetHub } from '../../durable-objects/fleet-hub.ts';
import { INTERNAL } from '../../durable-objects/hub/contract.ts';
import { STREAM_WINDOW, type StatusEvent } from '../../shared/api/stream.ts';
import { StreamCloseCode } from '../../shared/codes.ts';

const event = (agent: string, status: StatusEvent['status'] = 'online', team = 'team-a'): StatusEvent => ({
  agent_id: agent,
  team_id: team,
  status,
  timestamp: new Date().toISOString(),
});

/** Who a watcher is: the teams it may see (null: all, an instance admin), its user, and its credential (`key-<user>` unless named; no expiry unless given). */
interface Caller {
  teams: string[] | null;
  user: string;
  credential?: string;
  expiresAt?: number | null;
}
const ADMIN: Caller = { teams: null, user: 'admin' };

/** Opens a watcher socket on the hub and collects what it sends. */
async function watch(name: string, agentId: string | null, after: string | null, caller: Caller = ADMIN) {
  const res = await fleetHubFor(env, name).fetch('https://fleet-hub/watch', {
    headers: { upgrade: 'websocket', [INTERNAL.watch]: JSON.stringify({
        topics: ['status'],
        agent_id: agentId,
        after,
        teams: caller.teams,
        user_id: caller.user,
        credential_id: caller.credential ?? `key-${caller.user}`,
        expires_at: caller.expiresAt ?? null,
      }) },
  });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const got: any[] = [];
  let closed: { code: number; reason: string } | null = null;
  ws.addEventListener('message', (e) => void got.push(JSON.parse(e.data as string)));
  ws.addEventListener('close', (e) => {
    closed = { code: e.code, reason: e.reason };
    ws.close(); // a client answers the close, as browsers do: only then is the hub's socket gone
  });
  ws.accept();
  return { ws, got, closed: () => closed };
}

/** Publishes `n` events in the hub itself, one after the other: a thousand calls through the stub take most of a test's time on a busy machine. */
const publishMany = (hub: ReturnType<typeof fleetHubFor>, n: number, make: (i: number) => StatusEvent) =>
  runInDurableObject(hub, async (instance: FleetHub) => {
    for (let i = 0; i < n; i++) await instance.publish(make(i));
  });

const until = async (check: () => boolean | Promise<boolean>) => {
  for (let i = 0; i < 200 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
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
    await publishMany(hub, total, (i) => event(i % 2 ? 'a' : 'b'));
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
    await publishMany(hub, FLEET_REPLAY.events, () => event('a'));
    const resumed = await watch('credit', null, '0');
    let closed: number | null = null;
    resumed.ws.addEventListener('close', (e) => void (closed = e.code));
    await publishMany(hub, STREAM_WINDOW + 1, () => event('a'));
    await until(() => closed !== null);
    expect(closed).toBe(1013);
    expect(resumed.got.filter((m) => m.t === 'event')).toHaveLength(FLEET_REPLAY.events + STREAM_WINDOW);
    expect(resumed.got.at(-1)).toMatchObject({ t: 'dropped', reason: expect.any(String) });
    expect(await hub.stats()).toMatchObject({ dropped: 1, refused: 0 });
  });

  it('refuses a watch request it cannot read, and a publish that is not a status event', async () => {
    const hub = fleetHubFor(env, 'bad');
    const valid = { topics: ['status'], agent_id: null, after: null, teams: ['team-a'], user_id: 'u', credential_id: 'key-u', expires_at: null };
    for (const header of [
      'not json',
      '{}',
      JSON.stringify({ ...valid, topics: ['log'] }),
      JSON.stringify({ ...valid, after: 'x' }),
      // Who the watcher is may not be left out: a Worker that forgot would otherwise hand out every team's events.
      JSON.stringify({ topics: ['status'], agent_id: null, after: null }),
      JSON.stringify({ ...valid, teams: undefined }),
      JSON.stringify({ ...valid, user_id: undefined }),
      JSON.stringify({ ...valid, teams: 'team-a' }),
      // Nor the credential: a stream without it could not be ended when it is revoked or expires.
      JSON.stringify({ ...valid, credential_id: undefined }),
      JSON.stringify({ ...valid, expires_at: undefined }),
      JSON.stringify({ ...valid, expires_at: '2030-01-01' }),
    ]) {
      const res = await hub.fetch('https://fleet-hub/watch', { headers: { upgrade: 'websocket', [INTERNAL.watch]: header } });
      expect([header, res.status]).toEqual([header, 400]);
    }
    expect((await hub.fetch('https://fleet-hub/watch')).status).toBe(426);
    expect(await hub.publish({ agent_id: 'a', team_id: 'team-a', status: 'sleeping', timestamp: 'now' } as unknown as StatusEvent)).toBeNull();
    // An event of no team would reach no one but instance admins: it is refused instead.
    expect(await hub.publish({ agent_id: 'a', status: 'online', timestamp: new Date().toISOString() } as unknown as StatusEvent)).toBeNull();
    expect((await hub.stats()).lastId).toBe('0');
  });
});

describe('FleetHub and teams', () => {
  const A: Caller = { teams: ['team-a'], user: 'alice' };
  const B: Caller = { teams: ['team-b'], user: 'bob' };

  it("never sends a team's watcher another team's events, live or replayed; an instance admin gets all of them", async () => {
    const hub = fleetHubFor(env, 'teams');
    // 1 a, 2 b, 3 a, 4 b: all before the watchers resume from 0.
    for (const t of ['team-a', 'team-b', 'team-a', 'team-b']) await hub.publish(event(`dev-${t}`, 'online', t));
    const a = await watch('teams', null, '0', A);
    const b = await watch('teams', null, '0', B);
    const both = await watch('teams', null, '0', { teams: ['team-a', 'team-b'], user: 'carol' });
    const none = await watch('teams', null, '0', { teams: [], user: 'dave' });
    const admin = await watch('teams', null, '0');
    // 5 b, 6 a, 7 c (a third team nobody here is in): live.
    await hub.publish(event('dev-team-b', 'offline', 'team-b'));
    await hub.publish(event('dev-team-a', 'offline', 'team-a'));
    await hub.publish(event('dev-team-c', 'online', 'team-c'));
    await until(() => admin.got.length >= 7);
    const ids = (w: { got: any[] }) => w.got.map((m) => m.id);
    expect(ids(admin)).toEqual(['1', '2', '3', '4', '5', '6', '7']);
    expect(ids(a)).toEqual(['1', '3', '6']);
    expect(ids(b)).toEqual(['2', '4', '5']);
    expect(ids(both)).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(none.got).toEqual([]);
    expect(a.got.every((m) => m.data.team_id === 'team-a')).toBe(true);
    expect(b.got.every((m) => m.data.team_id === 'team-b')).toBe(true);
    for (const w of [a, b, both, none, admin]) w.ws.close();
  });

  it("applies the team filter under agent_id too: a watcher naming another team's device gets none of its events", async () => {
    const hub = fleetHubFor(env, 'teams-agent');
    await hub.publish(event('dev-b', 'online', 'team-b'));
    const nosy = await watch('teams-agent', 'dev-b', '0', A);
    const admin = await watch('teams-agent', 'dev-b', '0');
    await hub.publish(event('dev-b', 'offline', 'team-b'));
    await until(() => admin.got.length >= 2);
    expect(admin.got.map((m) => m.id)).toEqual(['1', '2']);
    expect(nosy.got).toEqual([]);
    // The device moves to team A: its next event carries the new team and reaches A's watcher.
    await hub.publish(event('dev-b', 'online', 'team-a'));
    await until(() => nosy.got.length >= 1);
    expect(nosy.got.map((m) => [m.id, m.data.team_id])).toEqual([['3', 'team-a']]);
    nosy.ws.close();
    admin.ws.close();
  });

  it('revoke closes exactly the watchers it names, with ACCESS_CHANGED; the others keep receiving', async () => {
    const hub = fleetHubFor(env, 'revoke');
    const alice = await watch('revoke', null, null, A);
    const aliceToo = await watch('revoke', null, null, { teams: ['team-a', 'team-b'], user: 'alice' });
    const bob = await watch('revoke', null, null, B);
    const bobOnDevice = await watch('revoke', 'dev-b', null, B);
    const admin = await watch('revoke', null, null);
    const adminOnDevice = await watch('revoke', 'dev-b', null);

    // A team: its members' watchers (not bob's, not the admin's, who sees every team anyway).
    expect(await hub.revoke({ teamId: 'team-a' })).toBe(2);
    await until(() => alice.closed() !== null && aliceToo.closed() !== null);
    expect([alice.closed()!.code, aliceToo.closed()!.code]).toEqual([StreamCloseCode.ACCESS_CHANGED, StreamCloseCode.ACCESS_CHANGED]);
    expect(alice.closed()!.reason).toBe('access changed');

    // A device: the watchers following it that are filtered by team (not the admin's).
    expect(await hub.revoke({ deviceId: 'dev-b' })).toBe(1);
    await until(() => bobOnDevice.closed() !== null);
    expect(bobOnDevice.closed()!.code).toBe(StreamCloseCode.ACCESS_CHANGED);

    // A user: all of theirs, an instance admin's too (their role may be what changed).
    expect(await hub.revoke({ userId: 'admin' })).toBe(2);
    await until(() => admin.closed() !== null && adminOnDevice.closed() !== null);
    expect(admin.closed()!.code).toBe(StreamCloseCode.ACCESS_CHANGED);

    // Bob's whole-fleet watcher was named by none of them: still open, still receiving.
    expect(bob.closed()).toBeNull();
    await hub.publish(event('dev-b', 'online', 'team-b'));
    await until(() => bob.got.length >= 1);
    expect(bob.got.map((m) => m.data.agent_id)).toEqual(['dev-b']);
    await until(async () => (await hub.stats()).watchers === 1);
    expect((await hub.stats()).watchers).toBe(1);

    // Criteria combine: bob's watchers of team A (none).
    expect(await hub.revoke({ userId: 'bob', teamId: 'team-a' })).toBe(0);
    expect(bob.closed()).toBeNull();
    // A scope that names nobody is a bug in the caller, not "everyone".
    expect(await hub.revoke({})).toBeNull();
    expect(await hub.revoke({ teamId: '' })).toBeNull();
    expect(bob.closed()).toBeNull();
    bob.ws.close();
  });
});

describe('FleetHub and credentials', { timeout: 30_000 }, () => {
  /** Waits for `check`, failing after a generous while (an alarm's time is not asserted, only that it comes). */
  const eventually = async (check: () => boolean, what: string) => {
    for (const start = Date.now(); !check(); await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() - start > 15_000) throw new Error(`timed out waiting for ${what}`);
    }
  };

  it("revoke by credential closes that credential's watchers only, an instance admin's too", async () => {
    const hub = fleetHubFor(env, 'cred-revoke');
    const revoked = await watch('cred-revoke', null, null, { teams: ['team-a'], user: 'alice', credential: 'key-1' });
    const revokedToo = await watch('cred-revoke', 'dev-a', null, { teams: ['team-a'], user: 'alice', credential: 'key-1' });
    const otherKey = await watch('cred-revoke', null, null, { teams: ['team-a'], user: 'alice', credential: 'key-2' });
    const admin = await watch('cred-revoke', null, null, { teams: null, user: 'root', credential: 'session-1' });
    const adminOther = await watch('cred-revoke', null, null, { teams: null, user: 'root', credential: 'session-2' });
    expect(await hub.revoke({ credentialId: 'key-1' })).toBe(2);
    expect(await hub.revoke({ userId: 'root', credentialId: 'session-1' })).toBe(1);
    await until(() => revoked.closed() !== null && revokedToo.closed() !== null && admin.closed() !== null);
    for (const w of [revoked, revokedToo, admin]) expect(w.closed()).toEqual({ code: StreamCloseCode.ACCESS_CHANGED, reason: 'access changed' });
    // Both criteria must match: another user's credential of that id (none here) is not closed.
    expect(await hub.revoke({ userId: 'bob', credentialId: 'key-2' })).toBe(0);
    await hub.publish(event('dev-a'));
    await until(() => otherKey.got.length >= 1 && adminOther.got.length >= 1);
    expect([otherKey.got.length, adminOther.got.length, otherKey.closed(), adminOther.closed()]).toEqual([1, 1, null, null]);
    otherKey.ws.close();
    adminOther.ws.close();
  });

  it('closes a watcher when its credential expires, with no event flowing, and moves its alarm to the next expiry', async () => {
    const hub = fleetHubFor(env, 'cred-expiry');
    const later = Date.now() + 60 * 60_000;
    const soon = await watch('cred-expiry', null, null, { teams: ['team-a'], user: 'alice', expiresAt: Date.now() + 1500 });
    const notYet = await watch('cred-expiry', null, null, { teams: ['team-a'], user: 'bob', expiresAt: later });
    const never = await watch('cred-expiry', null, null, { teams: null, user: 'root' });
    await eventually(() => soon.closed() !== null, 'the expired watcher to be closed');
    expect(soon.closed()).toEqual({ code: StreamCloseCode.CREDENTIAL_EXPIRED, reason: 'credential expired' });
    expect(soon.got).toEqual([]);
    const alarm = await runInDurableObject(hub, (_i, state) => state.storage.getAlarm());
    expect(alarm).toBe(later);
    await hub.publish(event('dev-a'));
    await until(() => notYet.got.length >= 1 && never.got.length >= 1);
    expect([notYet.got.length, never.got.length, notYet.closed(), never.closed()]).toEqual([1, 1, null, null]);
    notYet.ws.close();
    never.ws.close();
  });

  it('sends no event to a watcher whose credential expired, even before the alarm closes it', async () => {
    const hub = fleetHubFor(env, 'cred-fanout');
    const expiresAt = Date.now() + 300;
    const expiring = await watch('cred-fanout', null, null, { teams: ['team-a'], user: 'alice', expiresAt });
    const other = await watch('cred-fanout', null, null, { teams: ['team-a'], user: 'bob' });
    // The alarm stays away, so only the check at fan-out can stop the event.
    await runInDurableObject(hub, (_i, state) => state.storage.deleteAlarm());
    while (Date.now() <= expiresAt + 50) await new Promise((r) => setTimeout(r, 20));
    await hub.publish(event('dev-a'));
    await until(() => other.got.length >= 1 && expiring.closed() !== null);
    expect(expiring.got).toEqual([]);
    expect(expiring.closed()).toEqual({ code: StreamCloseCode.CREDENTIAL_EXPIRED, reason: 'credential expired' });
    expect(other.got.map((m) => m.data.agent_id)).toEqual(['dev-a']);
    other.ws.close();
  });

  it('sends a watch whose credential expired on its way from the Worker nothing, not even its replay, and closes it', async () => {
    const hub = fleetHubFor(env, 'cred-late');
    await hub.publish(event('dev-a'));
    const late = await watch('cred-late', null, '0', { teams: ['team-a'], user: 'alice', expiresAt: Date.now() - 1 });
    const onTime = await watch('cred-late', null, '0', { teams: ['team-a'], user: 'bob', expiresAt: Date.now() + 60_000 });
    await until(() => late.closed() !== null && onTime.got.length >= 1);
    expect(late.closed()).toEqual({ code: StreamCloseCode.CREDENTIAL_EXPIRED, reason: 'credential expired' });
    expect(late.got).toEqual([]);
    expect(onTime.got.map((m) => m.id)).toEqual(['1']);
    onTime.ws.close();
  });
});
