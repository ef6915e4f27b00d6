// The WebSocket form of one device's metrics stream (GET /api/v1/stream?agent_id=…&events=metrics,
// the dashboard's Metrics tab) through the Worker in workerd, with samples a fake agent sent to the
// real DeviceHub: the socket is bridged to the device hub beside a FleetHub watcher of the device
// (worker/stream/socket-bridge.ts), so it ends with 4003 when its API key is revoked, its session
// logged out, its user removed from the device's team or the device moved to another team (each
// through the route that does it), and with 4001 when its credential expires, while a socket of
// another credential keeps receiving; it carries the device hub's samples, ids, acks and resumes
// as before; the FleetHub's status events never reach it, and that watcher, acked by the bridge,
// is not dropped however many come.
import { beforeAll, describe, expect, it } from 'vitest';
import { api, TEST_TEAM, userWithKey } from './helpers.ts';
import { login, sessionUser } from './auth-helpers.ts';
import { waitFor } from './device-helpers.ts';
import { makeTeam } from './kvm-helpers.ts';
import { metricsDevice, sample } from './metrics-routes-helpers.ts';
import { publish, socket, type SocketReader } from './stream-helpers.ts';
import { STREAM_WINDOW } from '../../shared/api/stream.ts';
import { StreamCloseCode } from '../../shared/codes.ts';
import type { MetricsEvent } from '../../shared/api/metrics.ts';

/** Generous: how fast a socket closes is not what is checked, only that it does. */
const END_TIMEOUT_MS = 15_000;
const OTHER = 'stream-metrics-socket-other';

let admin: string;
let dev: Awaited<ReturnType<typeof metricsDevice>>;
/** A distinct CPU total per sample sent, so each one is told apart on every socket. */
let cpu = 0;

beforeAll(async () => {
  await makeTeam(OTHER);
  admin = (await userWithKey(['admin'])).key;
  dev = await metricsDevice(admin);
});

type Message = { t: string; id?: string; event?: string; code?: string; data?: MetricsEvent };
const messages = (s: SocketReader) => s.got as unknown as Message[];
const samplesOf = (s: SocketReader) => messages(s).filter((m) => m.t === 'event' && m.event === 'metrics');
const cpusOf = (s: SocketReader) => samplesOf(s).map((m) => m.data!.cpu.totalUsage);

/** The device's metrics socket for `credential`. */
const metricsSocket = (credential: string, device = dev, query = '') => socket(credential, `&agent_id=${device.deviceId}&events=metrics${query}`);

/** Sends one sample of `device` and waits for every socket given to get it: they are open and receiving. */
async function expectReceiving(sockets: SocketReader[], device = dev) {
  const value = ++cpu;
  await device.send(sample({ cpu: value }));
  await waitFor(() => sockets.every((s) => cpusOf(s).includes(value)), `sample ${value} on every open socket`);
  expect(sockets.map((s) => s.closed())).toEqual(sockets.map(() => null));
}

async function expectClosed(s: SocketReader, code: number, reason: string) {
  await waitFor(() => s.closed() !== null, 'the socket to close', END_TIMEOUT_MS);
  expect(s.closed()).toEqual({ code, reason });
}

const ACCESS_CHANGED = [StreamCloseCode.ACCESS_CHANGED, 'access changed'] as const;

/** A new API key of the user holding `key` (POST /api/v1/api-keys), with its id. */
async function newKey(key: string, body: Record<string, unknown> = {}) {
  const res = await api('/api/v1/api-keys', { key, json: { name: 'metrics socket', ...body } });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; key: string };
}

describe("one device's metrics socket ends when its caller's access does", { timeout: 4 * END_TIMEOUT_MS }, () => {
  it('closes 4003 when its API key is revoked; another key of the same user keeps receiving', async () => {
    const owner = await userWithKey(['viewer']);
    const revoked = await newKey(owner.key);
    const r = await metricsSocket(revoked.key);
    const kept = await metricsSocket(owner.key);
    await expectReceiving([r, kept]);
    expect((await api(`/api/v1/api-keys/${revoked.id}`, { key: owner.key, method: 'DELETE' })).status).toBe(204);
    await expectClosed(r, ...ACCESS_CHANGED);
    await expectReceiving([kept]);
    kept.ws.close();
  });

  it("closes 4003 at its session's logout; the user's other session keeps receiving", async () => {
    const user = await sessionUser(['viewer']);
    const second = ((await (await login(user.username, user.password)).json()) as { token: string }).token;
    const out = await metricsSocket(user.token);
    const kept = await metricsSocket(second);
    await expectReceiving([out, kept]);
    expect((await api('/api/v1/auth/logout', { key: user.token, method: 'POST' })).status).toBe(204);
    await expectClosed(out, ...ACCESS_CHANGED);
    await expectReceiving([kept]);
    kept.ws.close();
  });

  it("closes 4003 when its user is removed from the device's team; another member keeps receiving", async () => {
    const removed = await userWithKey(['viewer']);
    const other = await userWithKey(['viewer']);
    const r = await metricsSocket(removed.key);
    const o = await metricsSocket(other.key);
    await expectReceiving([r, o]);
    expect((await api(`/api/v1/teams/${TEST_TEAM}/members/${removed.userId}`, { key: admin, method: 'DELETE' })).status).toBe(204);
    await expectClosed(r, ...ACCESS_CHANGED);
    await expectReceiving([o]);
    // Its reconnect is as unknown a device as another team's.
    expect((await api(`/api/v1/stream?agent_id=${dev.deviceId}&events=metrics`, { key: removed.key })).status).toBe(404);
    o.ws.close();
  });

  it('closes 4003 when the device moves to another team; a socket of another device keeps receiving', async () => {
    const moving = await metricsDevice(admin);
    const viewer = (await userWithKey(['viewer'])).key;
    const m = await metricsSocket(viewer, moving);
    const kept = await metricsSocket(viewer);
    await expectReceiving([m], moving);
    await expectReceiving([kept]);
    const res = await api(`/api/v1/devices/${moving.deviceId}/move`, { key: admin, json: { team_id: OTHER } });
    expect(res.status).toBe(200);
    await expectClosed(m, ...ACCESS_CHANGED);
    await expectReceiving([kept]);
    kept.ws.close();
  });

  it('closes 4001 when its API key expires, with no sample flowing meanwhile; a key that does not expire keeps receiving', async () => {
    const owner = await userWithKey(['viewer']);
    const expiring = await newKey(owner.key, { expires_at: new Date(Date.now() + 4000).toISOString() });
    const e = await metricsSocket(expiring.key);
    const kept = await metricsSocket(owner.key);
    await expectReceiving([e, kept]);
    await expectClosed(e, StreamCloseCode.CREDENTIAL_EXPIRED, 'credential expired');
    await expectReceiving([kept]);
    kept.ws.close();
  });
});

describe("one device's metrics socket speaks the device hub's protocol", () => {
  it("passes the client's acks to the device hub and its answers back", async () => {
    const viewer = (await userWithKey(['viewer'])).key;
    const s = await metricsSocket(viewer);
    await expectReceiving([s]);
    await expectReceiving([s]);
    s.ws.send(JSON.stringify({ t: 'ack', n: 2 }));
    // Had the ack of both not reached the hub, this one would be within what is unacknowledged.
    s.ws.send(JSON.stringify({ t: 'ack', n: 1 }));
    await waitFor(() => messages(s).some((m) => m.t === 'error'), "the hub's answer to the second ack");
    expect(messages(s).filter((m) => m.t === 'error').map((m) => m.code)).toEqual(['BAD_ACK']);
    await expectReceiving([s]);
    s.ws.close();
  });

  it('resumes after last_event_id with the samples missed, and only those, under the same ids', async () => {
    const viewer = (await userWithKey(['viewer'])).key;
    const first = await metricsSocket(viewer);
    await expectReceiving([first]);
    const last = samplesOf(first).at(-1)!.id!;
    expect(last).toMatch(/^\d+$/);
    first.ws.close();
    const missed = [++cpu, ++cpu];
    for (const value of missed) await dev.send(sample({ cpu: value }));
    const back = await metricsSocket(viewer, dev, `&last_event_id=${last}`);
    await waitFor(() => cpusOf(back).length >= 2, 'the missed samples');
    expect(cpusOf(back)).toEqual(missed);
    expect(samplesOf(back).map((m) => Number(m.id)).every((id) => id > Number(last))).toBe(true);
    // A composite id from the SSE form resumes its metrics side.
    const composite = await metricsSocket(viewer, dev, `&last_event_id=${encodeURIComponent(`:${last}`)}`);
    await waitFor(() => cpusOf(composite).length >= 2, 'the missed samples (composite id)');
    expect(cpusOf(composite)).toEqual(missed);
    back.ws.close();
    composite.ws.close();
  });

  it('never forwards status events, and its FleetHub watcher is not dropped for them however many come', async () => {
    const viewer = (await userWithKey(['viewer'])).key;
    const s = await metricsSocket(viewer);
    await expectReceiving([s]);
    // More than a watcher may leave unacknowledged: were the bridge not acking them, the FleetHub would drop it.
    for (let i = 0; i < STREAM_WINDOW + 8; i++) await publish(dev.deviceId, TEST_TEAM, i % 2 ? 'online' : 'offline');
    await expectReceiving([s]);
    expect(messages(s).filter((m) => m.t !== 'event' || m.event !== 'metrics')).toEqual([]);
    s.ws.close();
  }, 60_000);
});
