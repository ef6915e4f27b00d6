// GET /api/v1/stream and teams, through the Worker in workerd: a caller's stream (SSE or the
// WebSocket form) carries only the events of devices in the teams they may see, live and
// replayed; agent_id= of a device in another team is 404 before any upgrade; revokeWatchers ends
// exactly the streams it names; and a reconnect is authorized from D1, not from the principal
// cache a removed member might still have an entry in. Events go straight to the relay's FleetHub
// (the call device hubs make), so the test controls each event's team.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, joinTeam, userWithKey } from './helpers.ts';
import { insertDevice, waitFor } from './device-helpers.ts';
import { devicesOf, publish, settle, socket, sse } from './stream-helpers.ts';
import { revokeWatchers } from '../../worker/stream/revoke.ts';
import { StreamCloseCode } from '../../shared/codes.ts';

const TEAM_A = 'stream-team-a';
const TEAM_B = 'stream-team-b';
const TEAM_2FA = 'stream-team-2fa';
const TEAM_R1 = 'stream-team-r1';
const TEAM_R2 = 'stream-team-r2';

let admin: string;
let alice: { userId: string; key: string }; // team A
let bob: { userId: string; key: string }; // team B
let devA: string;
let devB: string;

beforeAll(async () => {
  for (const [id, require2fa] of [
    [TEAM_A, 0],
    [TEAM_B, 0],
    [TEAM_2FA, 1],
  ] as const) {
    await env.DB.prepare('INSERT INTO teams (id, name, require_2fa, created_at, updated_at) VALUES (?1, ?1, ?2, 0, 0)').bind(id, require2fa).run();
  }
  admin = (await userWithKey(['admin'])).key;
  alice = await userWithKey(['viewer'], undefined, TEAM_A);
  bob = await userWithKey(['viewer'], undefined, TEAM_B);
  devA = await insertDevice({ team: TEAM_A, name: 'dev-a' });
  devB = await insertDevice({ team: TEAM_B, name: 'dev-b' });
});

describe('GET /api/v1/stream and teams', () => {
  it("shows a team's member only that team's devices, live and replayed; an instance admin sees every team", async () => {
    const first = await publish(devA, TEAM_A);
    await publish(devB, TEAM_B);
    const a = await sse(alice.key);
    const b = await sse(bob.key);
    const all = await sse(admin);
    await publish(devB, TEAM_B, 'offline');
    await publish(devA, TEAM_A, 'offline');
    await publish('dev-of-another-team', 'nobody-here');
    await settle(a, TEAM_A);
    await settle(b, TEAM_B);
    await waitFor(() => all.statuses().length === 5, 'the admin to get all of them');
    expect(devicesOf(a)).toEqual([devA]);
    expect(devicesOf(b)).toEqual([devB]);
    expect(all.statuses().map((s) => s.agent_id)).toEqual([devB, devA, 'dev-of-another-team', `marker-${TEAM_A}`, `marker-${TEAM_B}`]);
    expect(b.statuses().every((s) => s.team_id === TEAM_B)).toBe(true);

    // A resume from before all of it replays the caller's own team's events only.
    const resumed = await sse(bob.key, '', { 'last-event-id': String(Number(first) - 1) });
    await waitFor(() => resumed.statuses().length >= 3, 'the replay');
    expect(resumed.statuses().map((s) => s.agent_id)).toEqual([devB, devB, `marker-${TEAM_B}`]);
    for (const r of [a, b, all, resumed]) await r.cancel();
  });

  it('answers agent_id= of a device in another team with 404, as for one that does not exist, before any upgrade', async () => {
    for (const query of [`?agent_id=${devA}`, `?agent_id=${'f'.repeat(40)}`]) {
      const res = await api(`/api/v1/stream${query}`, { key: bob.key });
      expect([query, res.status, ((await res.json()) as { code: string }).code]).toEqual([query, 404, 'NOT_FOUND']);
      const upgrade = await api(`/api/v1/stream?api_key=${encodeURIComponent(bob.key)}&${query.slice(1)}`, { headers: { upgrade: 'websocket' } });
      expect([query, upgrade.status, upgrade.webSocket]).toEqual([query, 404, null]);
    }
    // Their own team's device, and any device for an instance admin.
    const own = await sse(bob.key, `?agent_id=${devB}`);
    const other = await sse(admin, `?agent_id=${devA}`);
    await own.cancel();
    await other.cancel();
  });

  it('leaves out a team that requires 2FA for a member without it: 403 for its device, none of its events', async () => {
    const carol = await userWithKey(['viewer'], undefined, TEAM_2FA);
    await joinTeam(carol.userId, ['viewer'], TEAM_A);
    const dev2fa = await insertDevice({ team: TEAM_2FA });
    const res = await api(`/api/v1/stream?agent_id=${dev2fa}`, { key: carol.key });
    expect([res.status, ((await res.json()) as { code: string }).code]).toEqual([403, 'TWO_FACTOR_REQUIRED']);
    const r = await sse(carol.key);
    await publish(dev2fa, TEAM_2FA);
    await publish(devA, TEAM_A);
    await publish(dev2fa, TEAM_2FA, 'offline');
    await settle(r, TEAM_A);
    expect(devicesOf(r)).toEqual([devA]);
    await r.cancel();
  });

  it('revokeWatchers ends exactly the streams it names; the others keep receiving', async () => {
    // Teams and users of this test alone, so the counts are of these streams only.
    for (const id of [TEAM_R1, TEAM_R2]) await env.DB.prepare('INSERT INTO teams (id, name, require_2fa, created_at, updated_at) VALUES (?1, ?1, 0, 0, 0)').bind(id).run();
    const erin = await userWithKey(['viewer'], undefined, TEAM_R1);
    const frank = await userWithKey(['viewer'], undefined, TEAM_R2);
    const root = await userWithKey(['admin'], undefined, null);
    const e = await sse(erin.key);
    const eWs = await socket(erin.key);
    const f = await sse(frank.key);
    const fWs = await socket(frank.key);
    const all = await sse(root.key);
    const allWs = await socket(root.key);
    expect(await revokeWatchers(env, { teamId: TEAM_R1 })).toBe(2);
    await waitFor(() => e.ended() && eWs.closed() !== null, "team R1's streams to end");
    expect(e.text().endsWith(': access changed\n\n')).toBe(true);
    expect(eWs.closed()).toEqual({ code: StreamCloseCode.ACCESS_CHANGED, reason: 'access changed' });
    // Team R2's and the admin's streams are open and still get their events.
    const id = await publish(`dev-${TEAM_R2}`, TEAM_R2);
    await waitFor(() => [f.events(), all.events(), fWs.got, allWs.got].every((got) => got.some((m) => m.id === id)), 'the others to get it');
    expect([f.ended(), all.ended(), fWs.closed(), allWs.closed()]).toEqual([false, false, null, null]);

    // An instance admin sees every team whatever changed; by user, their streams end too.
    expect(await revokeWatchers(env, { userId: root.userId })).toBe(2);
    await waitFor(() => all.ended() && allWs.closed() !== null, "the admin's streams to end");
    expect([f.ended(), fWs.closed()]).toEqual([false, null]);
    await f.cancel();
    fWs.ws.close();
  });

  it("reads a reconnecting caller from D1: a member just removed from a team gets 404 for its device and none of its events, whatever the principal cache holds", async () => {
    const dave = await userWithKey(['viewer'], undefined, TEAM_B);
    await joinTeam(dave.userId, ['viewer'], TEAM_A);
    // A request that puts dave's principal (a member of teams A and B) in this isolate's cache.
    expect((await api('/api/v1/devices', { key: dave.key })).status).toBe(200);
    // Removed from B straight in D1: no route ran, so nothing cleared the cache.
    await env.DB.prepare('DELETE FROM team_members WHERE user_id = ?1 AND team_id = ?2').bind(dave.userId, TEAM_B).run();
    const res = await api(`/api/v1/stream?agent_id=${devB}`, { key: dave.key });
    expect(res.status).toBe(404);
    const r = await sse(dave.key);
    await publish(devB, TEAM_B);
    await publish(devA, TEAM_A);
    await publish(devB, TEAM_B, 'offline');
    await settle(r, TEAM_A);
    expect(devicesOf(r)).toEqual([devA]);
    await r.cancel();
  });
});
