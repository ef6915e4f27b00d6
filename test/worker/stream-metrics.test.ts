// `event: metrics` on GET /api/v1/stream, through the Worker in workerd with samples a fake agent
// sent to the real DeviceHub: events= picking the topics (a bad one a 400 naming it); one
// device's stream merging the FleetHub's status and the device hub's samples under composite ids
// that resume both sequences, and a plain decimal id (what clients held before) resuming the status
// side; the fleet-wide stream's samples filtered by team; heartbeats on the merged stream; the
// WebSocket form on the device hub; a watcher that never acks and one that never reads delaying
// no one else; metrics:read.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, userWithKey, TEST_TEAM } from './helpers.ts';
import { expectError, withEnv } from './auth-helpers.ts';
import { waitFor } from './device-helpers.ts';
import { makeTeam, userWithPermissions } from './kvm-helpers.ts';
import { metricsDevice, sample } from './metrics-routes-helpers.ts';
import { publish, settle, socket, sse, type SseReader } from './stream-helpers.ts';
import { revokeWatchers } from '../../worker/stream/revoke.ts';
import { STREAM_WINDOW } from '../../shared/api/stream.ts';
import { StreamCloseCode } from '../../shared/codes.ts';
import type { MetricsEvent } from '../../shared/api/metrics.ts';

const OTHER = 'stream-metrics-other';

let admin: string;
let viewer: string;
let outsider: string;
let dev: Awaited<ReturnType<typeof metricsDevice>>;

const metricsOf = (r: SseReader) => r.events().filter((e) => e.event === 'metrics').map((e) => ({ id: e.id!, ...(JSON.parse(e.data) as MetricsEvent) }));
const statusesOf = (r: SseReader, agentId: string) => r.events().filter((e) => e.event === 'status' && (JSON.parse(e.data) as { agent_id: string }).agent_id === agentId);
const cpus = (r: SseReader) => metricsOf(r).map((m) => m.cpu.totalUsage);

beforeAll(async () => {
  await makeTeam(OTHER);
  admin = (await userWithKey(['admin'])).key;
  viewer = (await userWithKey(['viewer'])).key;
  outsider = (await userWithKey(['viewer'], undefined, OTHER)).key;
  dev = await metricsDevice(admin);
});

describe('GET /api/v1/stream events=', () => {
  it('refuses an unknown or empty event with a 400 naming events', async () => {
    for (const events of ['bogus', 'status,bogus', '', 'status,']) {
      const body = await expectError(await api(`/api/v1/stream?events=${encodeURIComponent(events)}`, { key: viewer }), 400, 'VALIDATION_ERROR');
      const issue = (body.details as { issues: { path: string; message: string }[] }).issues[0]!;
      expect(issue.path).toBe('events');
      expect(issue.message).toContain('a comma list of status, metrics');
    }
    const bad = await api('/api/v1/stream?last_event_id=12:ab', { key: viewer });
    await expectError(bad, 400, 'VALIDATION_ERROR');
  });

  it('needs metrics:read for samples: a key without it streams status by default and is a 403 asking for metrics', async () => {
    const narrow = (await userWithPermissions(['devices:read'])).key;
    const r = await sse(narrow);
    r.cancel();
    await expectError(await api('/api/v1/stream?events=metrics', { key: narrow }), 403, 'FORBIDDEN');
    // agent_id with the default events: status only for this key, as before metrics came.
    const one = await sse(narrow, `?agent_id=${dev.deviceId}`);
    await dev.send(sample({ cpu: 5 }));
    const id = await publish(dev.deviceId, TEST_TEAM);
    await waitFor(() => one.events().some((e) => e.id === id), 'the status event');
    expect(metricsOf(one)).toEqual([]);
    one.cancel();
  });

  it("fleet-wide: every device's samples at the refresh interval, filtered by team, with plain decimal ids", async () => {
    const fresh = await metricsDevice(admin);
    const mine = await sse(viewer, '?events=metrics');
    const theirs = await sse(outsider);
    await fresh.send(sample({ cpu: 61 }));
    await waitFor(() => metricsOf(mine).some((m) => m.agent_id === fresh.deviceId), 'the sample on the fleet-wide stream');
    const got = metricsOf(mine).find((m) => m.agent_id === fresh.deviceId)!;
    expect(got).toMatchObject({ team_id: TEST_TEAM, cpu: { totalUsage: 61 } });
    expect(got.id).toMatch(/^\d+$/);
    // events=metrics: no status events, even of this team.
    await publish(fresh.deviceId, TEST_TEAM);
    await settle(theirs, OTHER);
    expect(metricsOf(theirs)).toEqual([]);
    expect(mine.events().filter((e) => e.event === 'status')).toEqual([]);
    mine.cancel();
    theirs.cancel();
  });
});

describe('one device: status from the FleetHub, samples from its own hub', () => {
  it('merges both under "<status id>:<metrics id>" and resumes both sequences from Last-Event-ID', async () => {
    const r = await sse(viewer, `?agent_id=${dev.deviceId}`);
    await dev.send(sample({ cpu: 11 }));
    await waitFor(() => cpus(r).includes(11), 'the first sample');
    expect(metricsOf(r)[0]!.id).toMatch(/^:\d+$/);
    const metricsId = metricsOf(r)[0]!.id.slice(1);
    const statusId = (await publish(dev.deviceId, TEST_TEAM))!;
    await waitFor(() => statusesOf(r, dev.deviceId).length === 1, 'the status event');
    expect(statusesOf(r, dev.deviceId)[0]!.id).toBe(`${statusId}:${metricsId}`);
    await dev.send(sample({ cpu: 12 }));
    await waitFor(() => cpus(r).includes(12), 'the second sample');
    const last = r.events().at(-1)!.id!;
    expect(last).toMatch(new RegExp(`^${statusId}:\\d+$`));
    r.cancel();

    // Missed while away: a sample and a status event; both come back on resume, and nothing before.
    await dev.send(sample({ cpu: 13 }));
    const offline = await publish(dev.deviceId, TEST_TEAM, 'offline');
    const back = await sse(viewer, `?agent_id=${dev.deviceId}`, { 'last-event-id': last });
    await waitFor(() => cpus(back).includes(13) && statusesOf(back, dev.deviceId).length === 1, 'the missed sample and status');
    expect(cpus(back)).toEqual([13]);
    expect(statusesOf(back, dev.deviceId)[0]!.id).toMatch(new RegExp(`^${offline}:\\d+$`));
    expect(JSON.parse(statusesOf(back, dev.deviceId)[0]!.data)).toMatchObject({ status: 'offline' });
    // ?last_event_id= does the same for clients that cannot set the header.
    const viaQuery = await sse(viewer, `?agent_id=${dev.deviceId}&last_event_id=${encodeURIComponent(last)}`);
    await waitFor(() => cpus(viaQuery).includes(13), 'the missed sample (query)');
    expect(cpus(viaQuery)).toEqual([13]);
    back.cancel();
    viaQuery.cancel();

    // A plain decimal id (a client from before metrics) is the status side: status replayed after it, samples live.
    const plain = await sse(viewer, `?agent_id=${dev.deviceId}`, { 'last-event-id': statusId });
    await waitFor(() => statusesOf(plain, dev.deviceId).length === 1, 'the status replay');
    await dev.send(sample({ cpu: 14 }));
    await waitFor(() => cpus(plain).includes(14), 'a live sample');
    expect(cpus(plain)).toEqual([14]);
    plain.cancel();
  });

  it('events=metrics sends no status events (ids ":<n>"); events=status no samples (plain ids)', async () => {
    const samples = await sse(viewer, `?agent_id=${dev.deviceId}&events=metrics`);
    const statuses = await sse(viewer, `?agent_id=${dev.deviceId}&events=status`);
    await publish(dev.deviceId, TEST_TEAM);
    await dev.send(sample({ cpu: 21 }));
    await waitFor(() => cpus(samples).includes(21), 'the sample');
    await waitFor(() => statusesOf(statuses, dev.deviceId).length === 1, 'the status');
    expect(samples.events().filter((e) => e.event === 'status')).toEqual([]);
    expect(metricsOf(samples).every((m) => /^:\d+$/.test(m.id))).toBe(true);
    // The status reader is settled by its own device's next status event; no sample came before it.
    await publish(dev.deviceId, TEST_TEAM);
    await waitFor(() => statusesOf(statuses, dev.deviceId).length === 2, 'the second status');
    expect(metricsOf(statuses)).toEqual([]);
    expect(statusesOf(statuses, dev.deviceId).every((e) => /^\d+$/.test(e.id!))).toBe(true);
    samples.cancel();
    statuses.cancel();
  });

  it('sends heartbeats on the merged stream', async () => {
    const res = await withEnv({ STREAM_HEARTBEAT_MS: '50' }, `/api/v1/stream?agent_id=${dev.deviceId}`, { headers: { authorization: `Bearer ${viewer}` } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const decoder = new TextDecoder();
    while ((text.match(/: heartbeat\n\n/g) ?? []).length < 2) text += decoder.decode((await reader.read()).value, { stream: true });
    expect(text.startsWith('retry: ')).toBe(true);
    await reader.cancel();
  });

  it("ends after ': access changed' when the device's watchers are revoked (a move), though its samples come from the device hub", async () => {
    const r = await sse(viewer, `?agent_id=${dev.deviceId}&events=metrics`);
    await dev.send(sample({ cpu: 41 }));
    await waitFor(() => cpus(r).includes(41), 'a sample');
    expect(await revokeWatchers(env, { deviceId: dev.deviceId })).toBeGreaterThanOrEqual(1);
    await waitFor(() => r.ended(), 'the stream to end');
    expect(r.text()).toContain(': access changed\n\n');
  });

  it("is a 404 for another team's device, before any upgrade", async () => {
    await expectError(await api(`/api/v1/stream?agent_id=${dev.deviceId}&events=metrics`, { key: outsider }), 404, 'NOT_FOUND');
    await expectError(await api(`/api/v1/stream?agent_id=${dev.deviceId}&events=metrics&api_key=${outsider}`, { headers: { upgrade: 'websocket' } }), 404, 'NOT_FOUND');
  });

  it("the WebSocket form with agent_id and events=metrics is the device hub's own feed, with its decimal ids", async () => {
    const ws = await socket(viewer, `&agent_id=${dev.deviceId}&events=metrics`);
    await dev.send(sample({ cpu: 31 }));
    await waitFor(() => ws.got.some((m) => m.t === 'event'), 'a sample on the socket');
    const m = ws.got.find((g) => g.t === 'event') as unknown as { id: string; event: string; data: MetricsEvent };
    expect(m.event).toBe('metrics');
    expect(m.id).toMatch(/^\d+$/);
    expect(m.data).toMatchObject({ agent_id: dev.deviceId, cpu: { totalUsage: 31 } });
    ws.ws.close();
  });
});

describe('a slow watcher', () => {
  it('one that never acks and one that never reads delay no other reader; the one that never acks is dropped', async () => {
    const neverAcks = await socket(viewer, `&agent_id=${dev.deviceId}&events=metrics`);
    const neverReads = await api(`/api/v1/stream?agent_id=${dev.deviceId}&events=metrics`, { key: viewer });
    expect(neverReads.status).toBe(200);
    const good = await sse(viewer, `?agent_id=${dev.deviceId}&events=metrics`);
    const n = STREAM_WINDOW + 4;
    for (let i = 1; i <= n; i++) {
      await dev.send(sample({ cpu: (i % 90) + 0.5 }));
      // Each sample reaches the reader that keeps up before the next is sent: nobody holds it back.
      await waitFor(() => metricsOf(good).length === i, `sample ${i} on the reader that keeps up`);
    }
    await waitFor(() => neverAcks.closed() !== null, 'the watcher that never acks to be dropped');
    expect(neverAcks.closed()!.code).toBe(StreamCloseCode.DROPPED);
    expect(neverAcks.got.some((g) => g.t === 'dropped')).toBe(true);
    expect(neverAcks.got.filter((g) => g.t === 'event').length).toBe(STREAM_WINDOW);
    expect(good.ended()).toBe(false);
    await neverReads.body!.cancel();
    good.cancel();
    // STREAM_WINDOW + 4 samples, each sent and waited for one at a time.
  }, 60_000);
});
