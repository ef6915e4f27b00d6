// Device logs end to end: a real agent follows real files on this machine (--log-file PATH=NAME),
// ships their lines through its socket to the device's hub in workerd, and Tyto's
// GET /api/v1/logs and GET /api/v1/logs/stream find them. Lines are written with appendFile, as
// a program on the device would; the agent is stopped and restarted to show that the lines
// written meanwhile arrive once each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startDevEnv, waitFor, waitOnline, type DevEnv } from '../../scripts/dev-env.ts';
import { freePort, http, tempDir } from './harness.ts';
import { openSse, type SseReader } from './sse.ts';

let env: DevEnv;
let dir: string;
let url: string;
let key: string;
let deviceId: string;
let otherId: string;
let appLog: string;
let otherLog: string;
const streams: SseReader[] = [];

/** A word no other line has, so a search finds only the lines of one test. */
const word = () => `w${randomBytes(6).toString('hex')}`;
const logs = (query: Record<string, string | number>, k = key) => http(`${url}/api/v1/logs?${new URLSearchParams(Object.entries(query).map(([a, b]) => [a, String(b)]))}`, { key: k });
/** Polls a query until it has `total` entries (and no more show up within the poll). */
const found = (query: Record<string, string | number>, total: number, timeoutMs = 20_000) =>
  waitFor(`${total} entries for ${JSON.stringify(query)}`, async () => {
    const r = await logs(query);
    return r.status === 200 && r.body.total >= total ? r.body : null;
  }, timeoutMs, 100);
const write = (file: string, ...lines: string[]) => appendFile(file, lines.map((l) => `${l}\n`).join(''));

beforeAll(async () => {
  dir = await tempDir('logs');
  appLog = join(dir, 'app.log');
  otherLog = join(dir, 'other.log');
  await writeFile(appLog, 'a line from before the agent started\n');
  await writeFile(otherLog, '');
  env = await startDevEnv({
    dir,
    port: await freePort(),
    demoDevices: ['logs-pi', 'logs-other'],
    agentArgs: ['--no-journal', '--log-file', `${appLog}=app`, '--log-file', `${otherLog}=other`],
    vars: { HEARTBEAT_INTERVAL_MS: '500' },
  });
  await waitOnline(env, 30_000);
  url = env.state.url;
  key = env.state.apiKey;
  deviceId = env.state.devices.find((d) => d.name === 'logs-pi')!.id;
  otherId = env.state.devices.find((d) => d.name === 'logs-other')!.id;
}, 90_000);

afterAll(async () => {
  for (const s of streams) s.close();
  await env?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a line written on the device is searchable', () => {
  it('a line appended to a followed file is found by GET /api/v1/logs?q= within a short poll, in Tyto\'s shape', async () => {
    const w = word();
    const before = Date.now();
    await write(appLog, `ERROR ${w} disk /dev/sda1 is full`);
    const page = await found({ agent_id: deviceId, q: w }, 1);
    expect(page.total).toBe(1);
    const [entry] = page.entries;
    expect(entry).toMatchObject({ agent_id: deviceId, source: 'file', source_name: 'app', message: `ERROR ${w} disk /dev/sda1 is full`, level: 'error' });
    expect(entry.id).toMatch(new RegExp(`^${deviceId}:\\d+$`));
    expect(Date.parse(entry.timestamp)).toBeGreaterThanOrEqual(before - 2_000);
    expect(Date.parse(entry.timestamp)).toBeLessThanOrEqual(Date.now() + 2_000);
    // Both agents follow a file of the same path and name: only logs-pi wrote it, so logs-other's
    // device has it once too (each agent ships its own copy) — the query by agent_id tells them apart.
    const other = await found({ agent_id: otherId, q: w }, 1);
    expect(other.entries[0].agent_id).toBe(otherId);
  });

  it('every filter through the real stack: source, source_name, level (one and a list), q (words and a phrase), from/to, limit/offset, agent_id', async () => {
    const w = word();
    const t0 = new Date().toISOString();
    await write(appLog, `ERROR ${w} alpha disk full`, `WARNING ${w} beta disk almost full`, `${w} gamma all is well`);
    await write(otherLog, `ERROR ${w} delta network down`);
    const all = await found({ agent_id: deviceId, q: w }, 4);
    expect(all.total).toBe(4);
    // Newest first, ids increasing with time.
    const times = all.entries.map((e: any) => Date.parse(e.timestamp));
    expect([...times].sort((a, b) => b - a)).toEqual(times);

    const q = async (extra: Record<string, string | number>) => {
      const r = await logs({ agent_id: deviceId, q: w, ...extra });
      expect(r.status, JSON.stringify(extra)).toBe(200);
      return r.body as { entries: { message: string; level: string; source_name: string }[]; total: number };
    };
    expect((await q({ source_name: 'other' })).entries.map((e) => e.message)).toEqual([`ERROR ${w} delta network down`]);
    expect((await q({ source_name: 'app' })).total).toBe(3);
    expect((await q({ source: 'file' })).total).toBe(4);
    expect((await q({ source: 'journal' })).total).toBe(0);
    expect((await q({ level: 'error' })).entries.map((e) => e.message).sort()).toEqual([`ERROR ${w} alpha disk full`, `ERROR ${w} delta network down`]);
    expect((await q({ level: 'error,warning' })).total).toBe(3);
    expect((await q({ level: 'warning' })).entries.map((e) => e.level)).toEqual(['warning']);
    // Full text: words are ANDed, a quoted phrase is kept.
    const r1 = await logs({ agent_id: deviceId, q: `${w} disk` });
    expect(r1.body.total).toBe(2);
    const r2 = await logs({ agent_id: deviceId, q: `"${w} alpha disk"` });
    expect(r2.body.entries.map((e: any) => e.message)).toEqual([`ERROR ${w} alpha disk full`]);
    expect((await logs({ agent_id: deviceId, q: `${w} nowhere` })).body.total).toBe(0);
    // Time: from before the lines finds them all; to before them finds none.
    expect((await q({ from: t0 })).total).toBe(4);
    expect((await q({ to: new Date(Date.parse(t0) - 60_000).toISOString(), from: new Date(Date.parse(t0) - 120_000).toISOString() })).total).toBe(0);
    expect((await q({ from: new Date(Date.now() + 60_000).toISOString() })).total).toBe(0);
    // Pages: total stays, entries follow.
    const p1 = await q({ limit: 1 });
    const p2 = await q({ limit: 1, offset: 1 });
    expect(p1.total).toBe(4);
    expect(p2.total).toBe(4);
    expect(p1.entries).toHaveLength(1);
    expect(p2.entries[0]).not.toEqual(p1.entries[0]);
    expect([...p1.entries, ...p2.entries]).toEqual(all.entries.slice(0, 2));
    // Without agent_id: every device the caller sees (the other agent also follows these files).
    expect((await logs({ q: w })).body.total).toBe(8);
    // The native route, the same lines.
    const native = await http(`${url}/api/v1/devices/${deviceId}/logs?q=${w}`, { key });
    expect(native.status).toBe(200);
    expect(native.body.total).toBe(4);
  });

  it('a bad time, level or range is a 400 that names its parameter', async () => {
    for (const [query, param] of [
      [{ level: 'loud' }, 'level'],
      [{ level: 'error,,nope' }, 'level'],
      [{ from: 'yesterday' }, 'from'],
      [{ to: '2024-13-45T00:00:00Z' }, 'to'],
      [{ from: '2024-02-01T00:00:00Z', to: '2024-01-01T00:00:00Z' }, 'from'],
      [{ limit: 0 }, 'limit'],
      [{ limit: 5000 }, 'limit'],
      [{ offset: -1 }, 'offset'],
      [{ source: 'kernel' }, 'source'],
    ] as const) {
      const r = await logs({ agent_id: deviceId, ...query });
      expect(r.status, JSON.stringify(query)).toBe(400);
      expect(r.body).toMatchObject({ error: expect.any(String), code: expect.any(String) });
      expect(JSON.stringify(r.body), JSON.stringify(query)).toContain(param);
    }
    expect((await logs({ agent_id: 'no-such-device' })).status).toBe(404);
    expect((await http(`${url}/api/v1/logs`)).status).toBe(401);
  });

  it('a line over the size bound is stored cut, with the truncation marker', async () => {
    const w = word();
    await write(appLog, `${w} ${'x'.repeat(20_000)}`);
    const page = await found({ agent_id: deviceId, q: w }, 1);
    expect(page.entries[0].message).toMatch(/… \[truncated \d+ bytes\]$/);
    expect(Buffer.byteLength(page.entries[0].message)).toBeLessThan(9 * 1024);
  });
});

describe('the live stream', () => {
  it('GET /api/v1/logs/stream (SSE) receives a line written on the device, with the same filters', async () => {
    const all = await openSse(`${url}/api/v1/logs/stream?agent_id=${deviceId}`, { authorization: `Bearer ${key}` });
    const onlyOther = await openSse(`${url}/api/v1/logs/stream?agent_id=${deviceId}&source_name=other`, { authorization: `Bearer ${key}` });
    streams.push(all, onlyOther);
    expect(all.status).toBe(200);
    expect(String(all.headers['content-type'])).toMatch(/^text\/event-stream/);
    // Let the watchers be registered before the line is written.
    await new Promise((r) => setTimeout(r, 500));
    const w = word();
    await write(appLog, `WARNING ${w} live line`);
    const m = await waitFor('the line on the stream', async () => all.messages.find((x) => x.data.includes(w)), 20_000, 50);
    expect(m.event).toBe('log');
    expect(JSON.parse(m.data)).toMatchObject({ agent_id: deviceId, source: 'file', source_name: 'app', level: 'warning', message: `WARNING ${w} live line` });
    const w2 = word();
    await write(otherLog, `${w2} for the filtered stream`);
    await waitFor('the other line on the filtered stream', async () => onlyOther.messages.find((x) => x.data.includes(w2)), 20_000, 50);
    expect(onlyOther.messages.some((x) => x.data.includes(w))).toBe(false);
  });
});

describe('agent restart', () => {
  it('lines written while the agent was down arrive once each: none lost, none repeated', async () => {
    const w = word();
    // Some lines just before it stops (maybe in flight), some while it is down, some after.
    await write(appLog, ...Array.from({ length: 50 }, (_, i) => `${w} before ${i}`));
    await env.stopAgent(deviceId);
    await write(appLog, ...Array.from({ length: 50 }, (_, i) => `${w} down ${i}`));
    env.startAgent(deviceId);
    await waitOnline(env, 30_000);
    await write(appLog, ...Array.from({ length: 50 }, (_, i) => `${w} after ${i}`));
    await found({ agent_id: deviceId, q: w, limit: 1000 }, 150, 30_000);
    // Give a repeat the time to show up.
    await new Promise((r) => setTimeout(r, 2_000));
    const page = (await logs({ agent_id: deviceId, q: w, limit: 1000 })).body;
    expect(page.total).toBe(150);
    const messages = page.entries.map((e: any) => e.message);
    expect(new Set(messages).size).toBe(150);
    const expected = ['before', 'down', 'after'].flatMap((p) => Array.from({ length: 50 }, (_, i) => `${w} ${p} ${i}`));
    expect([...messages].sort()).toEqual([...expected].sort());
    expect(new Set(page.entries.map((e: any) => e.id)).size).toBe(150);
  });
});
