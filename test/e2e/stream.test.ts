// GET /api/v1/stream end to end: the relay in workerd, real agents under Bun, SSE read off a raw
// HTTP connection. A second agent enrolled with the agent CLI goes online and offline (killed,
// and silenced with SIGSTOP so only the heartbeat alarm can notice); a reader that reconnects with
// Last-Event-ID gets exactly what it missed; agent_id= filters; a reader that stops reading is
// dropped once past its bound while another keeps up; the WebSocket form carries the same events,
// and a WebSocket client that never acknowledges them is dropped after the window.
// The flood of the slow-reader test goes straight to the FleetHub's publish (the call device hubs
// make), since toggling agents tens of thousands of times would take hours.
// Teams: a third agent enrolls into a second team (made straight in D1) with a token naming it; a
// member of that team sees only its device go online and offline, gets 404 for agent_id= of the
// other team's device (SSE and WebSocket), and once their teams change and their streams are
// closed for it, their reconnect with Last-Event-ID follows what they may see now.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { WebSocket } from 'undici';
import { AGENT_MAIN, runBun, startDevEnv, waitFor, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { agentCli, freePort, http, tempDir } from './harness.ts';
import { openSse, type SseMessage, type SseReader } from './sse.ts';
import { STREAM_WINDOW } from '../../shared/api/stream.ts';

/** What FleetHub.stats() answers (durable-objects/fleet-hub.ts, which only workerd's types compile). */
interface FleetStats {
  watchers: number;
  lastId: string;
  refused: number;
  dropped: number;
}

const HEARTBEAT_MS = 500;
const BUFFER_BYTES = 16_384;
/** Events per flood batch: well under the bound, so a reader that keeps up is never near it. */
const BATCH = 40;
let env: DevEnv;
let url: string;
let key: string;
let dir: string;
let first: string;
let second: string;
/** The team of the demo device and of every device the admin enrolls without naming one. */
let defaultTeam: string;
let agent: ChildProcess | null = null;
const readers: SseReader[] = [];

/** Status events only (events=status): these tests count and compare them; `event: metrics` has tests of its own. */
const statusOnly = (query: string) => `${query}${query.startsWith('?') ? '&' : '?'}events=status`;
const stream = async (query = '', headers: Record<string, string> = {}) => {
  const r = await openSse(`${url}/api/v1/stream${statusOnly(query)}`, { authorization: `Bearer ${key}`, ...headers });
  readers.push(r);
  return r;
};
const statusOf = (m: SseMessage) => JSON.parse(m.data) as { agent_id: string; team_id: string; status: string; timestamp: string; name?: string; hostname?: string };
const statuses = (r: SseReader, agentId?: string) => r.messages.filter((m) => m.event === 'status' && (!agentId || statusOf(m).agent_id === agentId));
/**
 * Runs `action` and waits until each reader has a new `status` event of `agentId` (one that came
 * after the call started), so a test never mistakes an earlier event for the one it caused.
 */
async function expectChange(on: SseReader[], agentId: string, status: string, action: () => unknown, timeoutMs = 15_000): Promise<SseMessage[]> {
  const marks = on.map((r) => statuses(r, agentId).length);
  await action();
  return Promise.all(
    on.map((r, i) =>
      waitFor(`${agentId} ${status} on the stream`, async () => statuses(r, agentId).slice(marks[i]).find((m) => statusOf(m).status === status), timeoutMs, 20),
    ),
  );
}
/** Readers this file holds open: each is one watcher socket on the FleetHub. */
const openReaders = () => readers.filter((r) => !r.closed && !r.ended).length;

const startSecond = () => {
  agent = runBun([AGENT_MAIN, 'run', '--simulate', '--config', join(dir, 'second.json'), '--max-backoff-ms', '1000'], { logs: 'ignore' });
  return agent;
};
const stopSecond = async (signal: NodeJS.Signals = 'SIGTERM') => {
  const a = agent!;
  const exited = new Promise((r) => a.once('exit', r));
  a.kill(signal);
  await exited;
  agent = null;
};

async function fleet() {
  const ns = await env.relay.mf!.getDurableObjectNamespace('FLEET_HUB');
  return ns.get(ns.idFromName('fleet')) as unknown as { publish(e: unknown): Promise<string>; stats(): Promise<FleetStats>; revoke(scope: unknown): Promise<number | null> };
}
const db = () => env.relay.mf!.getD1Database('DB');
const stats = async (): Promise<FleetStats> => JSON.parse(JSON.stringify(await (await fleet()).stats()));

beforeAll(async () => {
  dir = await tempDir('stream');
  env = await startDevEnv({
    dir,
    port: await freePort(),
    demoDevices: ['stream-first'],
    vars: { HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS), STREAM_HEARTBEAT_MS: '300', STREAM_BUFFER_BYTES: String(BUFFER_BYTES) },
  });
  await waitOnline(env);
  url = env.state.url;
  key = env.state.apiKey;
  first = env.state.devices[0]!.id;
  const tok = await http(`${url}/api/v1/enrollment-tokens`, { key, json: { name: 'stream', auto_approve: true } });
  expect(tok.status).toBe(201);
  const enrolled = await agentCli(['enroll', '--relay', url, '--token', tok.body.token, '--config', join(dir, 'second.json'), '--name', 'stream-second']);
  expect(enrolled.code).toBe(0);
  second = JSON.parse(enrolled.stdout.trim().split('\n').pop()!).device_id;
  defaultTeam = (await (await db()).prepare('SELECT team_id FROM devices WHERE id = ?1').bind(first).first<{ team_id: string }>())!.team_id;
}, 90_000);

afterAll(async () => {
  for (const r of readers) r.close();
  agent?.kill('SIGKILL');
  await env?.stop();
});

describe('GET /api/v1/stream', () => {
  let witness: SseReader;

  it('answers as an event stream with a retry delay and heartbeat comments', async () => {
    witness = await stream();
    expect(witness.status).toBe(200);
    expect(witness.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(witness.headers['cache-control']).toBe('no-cache, no-transform');
    await waitFor('two heartbeats', async () => witness.comments.filter((c) => c === 'heartbeat').length >= 2);
    expect(witness.retry).toBeGreaterThan(0);
  });

  it('sends online when a second agent says hello, offline when it is killed', async () => {
    const [m] = await expectChange([witness], second, 'online', startSecond);
    const online = statusOf(m!);
    expect(online).toEqual({ agent_id: second, team_id: defaultTeam, status: 'online', timestamp: expect.any(String), name: 'stream-second', hostname: expect.any(String) });
    expect(new Date(online.timestamp).toISOString()).toBe(online.timestamp);
    const [off] = await expectChange([witness], second, 'offline', () => stopSecond('SIGTERM'));
    expect(statusOf(off!)).toMatchObject({ agent_id: second, status: 'offline', name: 'stream-second' });
  });

  it('sends offline for an agent that falls silent (SIGSTOP), from the heartbeat alarm', async () => {
    await expectChange([witness], second, 'online', startSecond);
    const before = statuses(witness, second).length;
    try {
      // The socket stays open: only the alarm (3 missed heartbeats) can tell.
      await expectChange([witness], second, 'offline', () => agent!.kill('SIGSTOP'), HEARTBEAT_MS * 8 + 5_000);
      expect(statuses(witness, second).length).toBe(before + 1);
      // Resumed, the agent finds its socket gone and dials again.
      await expectChange([witness], second, 'online', () => agent!.kill('SIGCONT'));
    } finally {
      agent!.kill('SIGCONT');
    }
    await expectChange([witness], second, 'offline', () => stopSecond('SIGKILL'));
  });

  it('gives every event a strictly increasing id, and offline once per online', () => {
    const ids = witness.messages.map((m) => Number(m.id));
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
    const seq = statuses(witness, second).map((m) => statusOf(m).status);
    expect(seq).toEqual(['online', 'offline', 'online', 'offline', 'online', 'offline']);
  });

  it('resumes after Last-Event-ID with what was missed: no gap, no duplicates (header and query)', async () => {
    const gone = await stream();
    await waitFor('the reader connected', async () => gone.retry !== null);
    await expectChange([gone, witness], second, 'online', startSecond);
    const lastSeen = gone.messages.at(-1)!.id!;
    gone.close();
    await expectChange([witness], second, 'offline', () => stopSecond());
    await expectChange([witness], second, 'online', startSecond);
    await expectChange([witness], second, 'offline', () => stopSecond());
    const missed = witness.messages.filter((m) => Number(m.id) > Number(lastSeen));
    expect(missed.map((m) => statusOf(m).status)).toEqual(['offline', 'online', 'offline']);

    for (const resumed of [await stream('', { 'last-event-id': lastSeen }), await stream(`?last_event_id=${lastSeen}`)]) {
      await waitFor('the replay', async () => resumed.messages.length >= missed.length);
      expect(resumed.messages.map((m) => [m.id, m.event, m.data])).toEqual(missed.map((m) => [m.id, m.event, m.data]));
      resumed.close();
    }
    // The header wins over the query parameter.
    const both = await stream(`?last_event_id=${missed.at(-1)!.id}`, { 'last-event-id': lastSeen });
    await waitFor('the replay', async () => both.messages.length >= missed.length);
    expect(both.messages.map((m) => m.id)).toEqual(missed.map((m) => m.id));
    both.close();
  });

  it('with agent_id=, sends only that device', async () => {
    const only = await stream(`?agent_id=${second}`);
    await waitFor('the reader connected', async () => only.retry !== null);
    await expectChange([witness], first, 'offline', () => env.stopAgent(first));
    await expectChange([only, witness], second, 'online', startSecond);
    await expectChange([witness], first, 'online', () => env.startAgent(first));
    await expectChange([only, witness], second, 'offline', () => stopSecond());
    expect(only.messages.map((m) => statusOf(m).agent_id)).toEqual([second, second]);
    // The filter applies to a replay too.
    const from = witness.messages.at(-5)!.id!;
    const replay = await stream(`?agent_id=${second}&last_event_id=${from}`);
    const expected = witness.messages.filter((m) => Number(m.id) > Number(from) && statusOf(m).agent_id === second);
    await waitFor('the replay', async () => replay.messages.length >= expected.length);
    expect(replay.messages.map((m) => m.id)).toEqual(expected.map((m) => m.id));
    only.close();
    replay.close();
  });

  it('refuses bad input: 401 without a credential, 403 without devices:read, 400 for bad ids, 404 for an unknown device', async () => {
    expect((await http(`${url}/api/v1/stream`)).status).toBe(401);
    const narrow = await http(`${url}/api/v1/api-keys`, { key, json: { name: 'no-devices', permissions: ['tunnels:read'] } });
    expect(narrow.status).toBe(201);
    const forbidden = await http(`${url}/api/v1/stream`, { key: narrow.body.key });
    expect([forbidden.status, forbidden.body.code]).toEqual([403, 'FORBIDDEN']);
    for (const [query, headers] of [
      ['?last_event_id=abc', {}],
      ['?last_event_id=-1', {}],
      ['', { 'last-event-id': '1e3' }],
      ['?agent_id=not%20an%20id', {}],
    ] as const) {
      const r = await http(`${url}/api/v1/stream${query}`, { key, headers });
      expect([query, r.status, r.body.code]).toEqual([query, 400, 'VALIDATION_ERROR']);
    }
    const unknown = await http(`${url}/api/v1/stream?agent_id=${'e'.repeat(40)}`, { key });
    expect([unknown.status, unknown.body.code]).toEqual([404, 'NOT_FOUND']);
  });

  it('closes the hub socket of a reader that went away', async () => {
    await waitFor('the hub to hold one socket per open reader', async () => (await stats()).watchers === openReaders());
    const r = await stream();
    await waitFor('the reader connected', async () => r.retry !== null);
    expect((await stats()).watchers).toBe(openReaders());
    r.close();
    await waitFor('the hub socket closed', async () => (await stats()).watchers === openReaders());
  });

  it('drops a reader that stopped reading once it is past its bound, while another keeps up', async () => {
    const slow = await stream();
    const fast = await stream();
    await waitFor('both connected', async () => slow.retry !== null && fast.retry !== null);
    slow.pause();
    const hub = await fleet();
    await waitFor('the hub to hold one socket per open reader', async () => (await stats()).watchers === openReaders());
    const startId = Number(witness.messages.at(-1)!.id);
    // The ids the hub gave, in order: strictly increasing, not always consecutive (a hub that woke up gives ids past its reserved block).
    const ids: number[] = [];
    // Publish until the Worker gives up on the slow reader (its hub socket closes). After each
    // batch the fast reader (and the witness) must have it all before the next one goes out.
    while ((await stats()).watchers === openReaders()) {
      if (ids.length > 200_000) throw new Error('the slow reader was never dropped');
      const batch = await Promise.all(
        Array.from({ length: BATCH }, (_, i) =>
          hub.publish({ agent_id: first, team_id: defaultTeam, status: (ids.length + i) % 2 ? 'online' : 'offline', timestamp: new Date().toISOString(), name: 'x'.repeat(64) }),
        ),
      );
      ids.push(...batch.map(Number).sort((x, y) => x - y));
      const id = String(ids.at(-1));
      await waitFor(`the fast reader to get event ${id}`, async () => fast.messages.at(-1)?.id === id && witness.messages.at(-1)?.id === id, 30_000, 5);
    }
    const published = ids.length;
    // The fast reader got every event, in order, while the slow one was still paused.
    const fastIds = fast.messages.filter((m) => Number(m.id) > startId).map((m) => Number(m.id));
    expect(fastIds).toEqual(ids);
    expect(fast.ended).toBe(false);

    slow.resume();
    await waitFor('the slow reader to reach the end', async () => slow.ended, 60_000);
    const tail = slow.messages.at(-1)!;
    expect(tail.event).toBe('dropped');
    expect(JSON.parse(tail.data).reason).toContain(String(BUFFER_BYTES));
    const slowIds = slow.messages.filter((m) => m.event === 'status').map((m) => Number(m.id));
    expect(slowIds.length).toBeLessThan(published);
    // What it got before the drop is a run of the flood with nothing missing: each id the one the hub gave after the one before.
    const from = ids.indexOf(slowIds.find((id) => id > startId) ?? -1);
    const flood = slowIds.filter((id) => id > startId);
    expect(from).toBeGreaterThanOrEqual(0);
    expect(flood).toEqual(ids.slice(from, from + flood.length));
    expect(slowIds.every((id, i) => i === 0 || id > slowIds[i - 1]!)).toBe(true);
  }, 300_000);

  it('answers a resume from before the replay window with a gap and the id to resume from', async () => {
    const lastId = (await stats()).lastId;
    const r = await stream('?last_event_id=1');
    await waitFor('the gap', async () => r.messages.length >= 1);
    expect(r.messages[0]).toMatchObject({ event: 'gap', id: lastId });
  });

  it('the WebSocket form (?api_key=) carries the same events, and refuses what a client sends', async () => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v1/stream?api_key=${encodeURIComponent(key)}&events=status&agent_id=${second}`);
    const got: any[] = [];
    ws.addEventListener('message', (e) => got.push(JSON.parse(String(e.data))));
    await new Promise((resolve, reject) => {
      ws.addEventListener('open', resolve);
      ws.addEventListener('error', reject);
    });
    await expectChange([witness], second, 'online', startSecond);
    await expectChange([witness], second, 'offline', () => stopSecond());
    await waitFor('two events on the WebSocket', async () => got.length >= 2);
    const seen = statuses(witness, second).slice(-2);
    expect(got).toEqual(seen.map((m) => ({ t: 'event', id: m.id, event: 'status', data: statusOf(m) })));

    const refusedBefore = (await stats()).refused;
    ws.send('{"t":"hello","protocol":1}');
    await waitFor('the refusal', async () => got.length >= 3);
    expect(got[2]).toMatchObject({ t: 'error', code: 'UNEXPECTED_MESSAGE', reason: expect.any(String) });
    expect((await stats()).refused).toBe(refusedBefore + 1);
    // The socket stays a watcher: the next event still arrives.
    startSecond();
    await waitFor('the next event', async () => got.length >= 4);
    expect(got[3]).toMatchObject({ t: 'event', event: 'status', data: { agent_id: second, status: 'online' } });
    ws.close();
  });

  it('drops a WebSocket-form client that never acks once it holds a window of events, while one that acks keeps receiving', async () => {
    const open = async () => {
      const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v1/stream?api_key=${encodeURIComponent(key)}&events=status&agent_id=${first}`);
      const got: any[] = [];
      ws.addEventListener('message', (e) => got.push(JSON.parse(String(e.data))));
      await new Promise((resolve, reject) => {
        ws.addEventListener('open', resolve);
        ws.addEventListener('error', reject);
      });
      return { ws, got };
    };
    const lazy = await open();
    const acking = await open();
    acking.ws.addEventListener('message', (e) => {
      if (JSON.parse(String(e.data)).t === 'event') acking.ws.send(JSON.stringify({ t: 'ack', n: 1 }));
    });
    const hub = await fleet();
    const refusedBefore = (await stats()).refused;
    const droppedBefore = (await stats()).dropped;
    // Batches well inside the window, each taken in full by the acking client before the next.
    const batch = STREAM_WINDOW / 4;
    let published = 0;
    const given: number[] = [];
    while (!lazy.got.some((m) => m.t === 'dropped')) {
      if (published > STREAM_WINDOW * 4) throw new Error('the client that never acks was never dropped');
      const batchIds = await Promise.all(
        Array.from({ length: batch }, (_, i) =>
          hub.publish({ agent_id: first, team_id: defaultTeam, status: (published + i) % 2 ? 'online' : 'offline', timestamp: new Date().toISOString() }),
        ),
      );
      given.push(...batchIds.map(Number).sort((x, y) => x - y));
      published += batch;
      await waitFor(`the acking client to get ${published} events`, async () => acking.got.filter((m) => m.t === 'event').length === published, 30_000, 5);
    }
    // The hub closed it (its close frame arrived: the client is closing) and holds only the acking one.
    await waitFor('the lazy client closing', async () => lazy.ws.readyState >= WebSocket.CLOSING);
    await waitFor('the hub to let the lazy client go', async () => (await stats()).watchers === openReaders() + 1);
    expect(lazy.got.filter((m) => m.t === 'event')).toHaveLength(STREAM_WINDOW);
    expect(lazy.got.at(-1)).toMatchObject({ t: 'dropped', reason: expect.stringContaining(String(STREAM_WINDOW)) });
    expect(published).toBeGreaterThan(STREAM_WINDOW);
    // The acking client is still there, got every event in order, and its acks were all taken.
    expect(acking.ws.readyState).toBe(WebSocket.OPEN);
    // Every id the hub gave, in order (strictly increasing, not always consecutive: a hub that woke up gives ids past its reserved block).
    expect(acking.got.map((m) => Number(m.id))).toEqual(given);
    const after = await stats();
    expect([after.refused, after.dropped]).toEqual([refusedBefore, droppedBefore + 1]);
    await hub.publish({ agent_id: first, team_id: defaultTeam, status: 'online', timestamp: new Date().toISOString() });
    await waitFor('one more event at the acking client', async () => acking.got.length === published + 1);
    acking.ws.close();
  });

  describe('and teams', () => {
    const TEAM_B = 'stream-team-b';
    let third: string;
    let thirdAgent: ChildProcess | null = null;
    let bob: { id: string; key: string };
    let bobStream: SseReader;

    const startThird = () => {
      thirdAgent = runBun([AGENT_MAIN, 'run', '--simulate', '--config', join(dir, 'third.json'), '--max-backoff-ms', '1000'], { logs: 'ignore' });
    };
    const stopThird = async () => {
      const a = thirdAgent!;
      const exited = new Promise((r) => a.once('exit', r));
      a.kill('SIGTERM');
      await exited;
      thirdAgent = null;
    };
    const bobReader = async (query = '', headers: Record<string, string> = {}) => {
      const r = await openSse(`${url}/api/v1/stream${statusOnly(query)}`, { authorization: `Bearer ${bob.key}`, ...headers });
      readers.push(r);
      return r;
    };

    beforeAll(async () => {
      // Team B and its member bob, straight in D1 (the teams API is not what this file tests).
      const d1 = await db();
      await d1.prepare("INSERT INTO teams (id, name, require_2fa, created_at, updated_at) VALUES (?1, 'Stream team B', 0, ?2, ?2)").bind(TEAM_B, Date.now()).run();
      const created = await http(`${url}/api/v1/users`, { key, json: { username: 'stream-bob', password: 'stream-bob-password', roles: ['viewer'] } });
      expect(created.status).toBe(201);
      await d1.prepare("INSERT INTO team_members (team_id, user_id, role, created_at) VALUES (?1, ?2, 'member', ?3)").bind(TEAM_B, created.body.id, Date.now()).run();
      const login = await http(`${url}/api/v1/auth/login`, { json: { username: 'stream-bob', password: 'stream-bob-password' } });
      expect(login.status).toBe(200);
      bob = { id: created.body.id, key: login.body.token };
      // The third device enrolls into team B with a token that names it.
      const tok = await http(`${url}/api/v1/enrollment-tokens`, { key, json: { name: 'stream-b', auto_approve: true, team_id: TEAM_B } });
      expect(tok.status).toBe(201);
      const enrolled = await agentCli(['enroll', '--relay', url, '--token', tok.body.token, '--config', join(dir, 'third.json'), '--name', 'stream-third']);
      expect(enrolled.code).toBe(0);
      third = JSON.parse(enrolled.stdout.trim().split('\n').pop()!).device_id;
    }, 60_000);

    afterAll(() => {
      thirdAgent?.kill('SIGKILL');
    });

    it("shows a member of team B only team B's device going online and offline", async () => {
      bobStream = await bobReader();
      await waitFor('the reader connected', async () => bobStream.retry !== null);
      await expectChange([witness], first, 'offline', () => env.stopAgent(first));
      const [on] = await expectChange([bobStream, witness], third, 'online', startThird);
      expect(statusOf(on!)).toMatchObject({ agent_id: third, team_id: TEAM_B, name: 'stream-third' });
      await expectChange([witness], first, 'online', () => env.startAgent(first));
      await expectChange([bobStream, witness], third, 'offline', stopThird);
      // The witness (an instance admin) got all four; bob's stream ends with team B's offline, so it has seen all it will of them.
      expect(bobStream.messages.map((m) => [statusOf(m).agent_id, statusOf(m).status])).toEqual([
        [third, 'online'],
        [third, 'offline'],
      ]);
      // A resume from before them replays team B's events only.
      const from = String(Number(bobStream.messages[0]!.id) - 1);
      const replay = await bobReader('', { 'last-event-id': from });
      await waitFor('the replay', async () => replay.messages.length >= 2);
      expect(replay.messages.map((m) => m.id)).toEqual(bobStream.messages.map((m) => m.id));
      replay.close();
    }, 60_000);

    it("answers agent_id= of the other team's device with 404, as an SSE request and as a WebSocket upgrade", async () => {
      const sse = await http(`${url}/api/v1/stream?agent_id=${first}`, { key: bob.key });
      expect([sse.status, sse.body.code]).toEqual([404, 'NOT_FOUND']);
      const upgrade = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/v1/stream?api_key=${encodeURIComponent(bob.key)}&agent_id=${first}`);
        ws.addEventListener('open', () => resolve(101));
        ws.addEventListener('error', () => resolve(0));
      });
      expect(upgrade).toBe(0);
      // The same request for their own team's device is a stream.
      const own = await http(`${url}/api/v1/stream?agent_id=${third}`, { key: bob.key });
      expect(own.status).toBe(200);
    });

    it('ends the stream of a member whose teams changed; the reconnect with Last-Event-ID follows their new teams', async () => {
      // Bob moves from team B to the default team, then the FleetHub is told (what the teams routes do through revokeWatchers).
      const d1 = await db();
      await d1.prepare('DELETE FROM team_members WHERE team_id = ?1 AND user_id = ?2').bind(TEAM_B, bob.id).run();
      await d1.prepare("INSERT INTO team_members (team_id, user_id, role, created_at) VALUES (?1, ?2, 'member', ?3)").bind(defaultTeam, bob.id, Date.now()).run();
      expect(await (await fleet()).revoke({ userId: bob.id })).toBeGreaterThanOrEqual(1);
      await waitFor('the stream to end', async () => bobStream.ended);
      expect(bobStream.comments).toContain('access changed');
      const lastSeen = bobStream.messages.at(-1)!.id!;
      const again = await bobReader('', { 'last-event-id': lastSeen });
      await waitFor('the reader connected', async () => again.retry !== null);
      await expectChange([witness], third, 'online', startThird);
      await expectChange([witness], third, 'offline', stopThird);
      await expectChange([again, witness], first, 'offline', () => env.stopAgent(first));
      await expectChange([again, witness], first, 'online', () => env.startAgent(first));
      // What the default team did since lastSeen (the first device going offline and online), none of team B's.
      expect(again.messages.every((m) => statusOf(m).team_id === defaultTeam)).toBe(true);
      expect(statuses(again, third)).toEqual([]);
      const expected = witness.messages.filter((m) => m.event === 'status' && Number(m.id) > Number(lastSeen) && statusOf(m).team_id === defaultTeam);
      expect(again.messages.map((m) => m.id)).toEqual(expected.map((m) => m.id));
    }, 60_000);
  });
});
