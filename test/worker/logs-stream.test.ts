// GET /api/v1/logs/stream: lines the fake agent sends after the reader connected arrive as
// `event: log` with filters applied, Last-Event-ID resumes from the stored lines without a loss
// or a double, another team's device stays out, and the stream ends when access is revoked.
import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, userWithKey } from './helpers.ts';
import { waitFor } from './device-helpers.ts';
import { makeTeam } from './kvm-helpers.ts';
import { line, logDevice, logStream } from './logs-helpers.ts';
import { revokeWatchers } from '../../worker/stream/revoke.ts';

let admin: string;
beforeAll(async () => {
  admin = (await userWithKey(['admin'])).key;
});

describe('GET /api/v1/logs/stream', () => {
  it('sends a line the agent ships after the reader connected, filtered by level, source_name and q', async () => {
    const dev = await logDevice(admin);
    const viewer = await userWithKey(['viewer']);
    const r = await logStream(viewer.key, `?agent_id=${dev.deviceId}&level=error,critical&source_name=kernel&q=${encodeURIComponent('"usb disconnect"')}`);
    await dev.send([
      line({ level: 'info', source_name: 'kernel', message: 'usb disconnect, device number 3' }),
      line({ level: 'error', source_name: 'sshd.service', message: 'usb disconnect, device number 4' }),
      line({ level: 'error', source_name: 'kernel', message: 'usb disconnected? no: disconnect usb' }),
      line({ level: 'error', source_name: 'kernel', message: 'USB disconnect, device number 5' }),
    ]);
    await waitFor(() => r.lines().length === 1, 'the one matching line');
    const [got] = r.lines();
    expect(got).toMatchObject({ agent_id: dev.deviceId, level: 'error', source_name: 'kernel', message: 'USB disconnect, device number 5' });
    expect(got!.id).toMatch(new RegExp(`^${dev.deviceId}:\\d+$`));
    expect(got!.sse_id).toBe(got!.id);
    // The stream and the search agree on what matched.
    const res = await api(`/api/v1/logs?agent_id=${dev.deviceId}&level=error,critical&source_name=kernel&q=${encodeURIComponent('"usb disconnect"')}`, { key: viewer.key });
    expect(((await res.json()) as { entries: { id: string }[] }).entries.map((e) => e.id)).toEqual([got!.id]);
    await r.cancel();
  });

  it('delivers a batch published as several events (100 lines of 8 KiB, over EVENT_BYTES) whole and in order', async () => {
    const dev = await logDevice(admin);
    const r = await logStream(admin, `?agent_id=${dev.deviceId}`);
    await dev.send(Array.from({ length: 100 }, (_, i) => line({ message: `${i} ${'x'.repeat(8000)}` })));
    await waitFor(() => r.lines().length === 100, 'every line of the batch', 10_000);
    expect(r.lines().map((l) => Number(l.message.split(' ')[0]))).toEqual(Array.from({ length: 100 }, (_, i) => i));
    await r.cancel();
  });

  it('resumes after Last-Event-ID with what it missed, then live lines, none twice', async () => {
    const dev = await logDevice(admin);
    const first = await logStream(admin, `?agent_id=${dev.deviceId}`);
    await dev.send([line({ message: 'one' })]);
    await waitFor(() => first.lines().length === 1, 'line one');
    const last = first.lines()[0]!.sse_id!;
    await first.cancel();
    await dev.send([line({ message: 'two' }), line({ message: 'three' })]);
    const again = await logStream(admin, `?agent_id=${dev.deviceId}`, { 'last-event-id': last });
    await waitFor(() => again.lines().length === 2, 'the missed lines');
    await dev.send([line({ message: 'four' })]);
    await waitFor(() => again.lines().length === 3, 'the live line');
    expect(again.lines().map((l) => l.message)).toEqual(['two', 'three', 'four']);
    const ids = again.lines().map((l) => Number(l.id.split(':')[1]));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    // ?last_event_id= does the same; a malformed id is a 400 naming it; one of a device the stream does not follow starts live after a gap.
    const byQuery = await logStream(admin, `?agent_id=${dev.deviceId}&last_event_id=${encodeURIComponent(last)}`);
    await waitFor(() => byQuery.lines().length === 3, 'the replay by query');
    const bad = await api(`/api/v1/logs/stream?agent_id=${dev.deviceId}&last_event_id=three`, { key: admin });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('last_event_id');
    const elsewhere = await logStream(admin, `?agent_id=${dev.deviceId}`, { 'last-event-id': 'elsewhere:3' });
    await waitFor(() => elsewhere.events().some((e) => e.event === 'gap'), 'the gap');
    expect(elsewhere.lines()).toEqual([]);
    await Promise.all([again.cancel(), byQuery.cancel(), elsewhere.cancel()]);
  });

  it('resumes a stream of every device: the named device after its seq, the others since that line arrived', async () => {
    const a = await logDevice(admin);
    const b = await logDevice(admin);
    const word = `w${crypto.randomUUID().slice(0, 8)}`;
    const first = await logStream(admin, `?q=${word}`);
    await a.send([line({ message: `${word} a1` })]);
    await waitFor(() => first.lines().length === 1, 'a1');
    const last = first.lines()[0]!.sse_id!;
    await first.cancel();
    await a.send([line({ message: `${word} a2` })]);
    await b.send([line({ message: `${word} b1` })]);
    const again = await logStream(admin, `?q=${word}`, { 'last-event-id': last });
    await waitFor(() => again.lines().length === 2, 'a2 and b1');
    expect(again.lines().map((l) => l.message.split(' ')[1]).sort()).toEqual(['a2', 'b1']);
    await again.cancel();
  });

  it("without agent_id: the caller's devices, not another team's; an instance admin sees both", async () => {
    await makeTeam('stream-other');
    const mine = await logDevice(admin);
    const theirs = await logDevice(admin);
    await env.DB.prepare("UPDATE devices SET team_id = 'stream-other' WHERE id = ?1").bind(theirs.deviceId).run();
    const word = `w${crypto.randomUUID().slice(0, 8)}`;
    const member = await userWithKey(['viewer']);
    const r = await logStream(member.key, `?q=${word}`);
    const everyone = await logStream(admin, `?q=${word}`);
    await theirs.send([line({ message: `${word} theirs` })]);
    await mine.send([line({ message: `${word} mine` })]);
    await waitFor(() => everyone.lines().length === 2, "both devices' lines for the admin");
    await waitFor(() => r.lines().length === 1, 'the member line');
    // Sent after theirs: had theirs been let through, it would be here by now.
    expect(r.lines().map((l) => l.agent_id)).toEqual([mine.deviceId]);
    expect((await api(`/api/v1/logs/stream?agent_id=${theirs.deviceId}`, { key: member.key })).status).toBe(404);
    await Promise.all([r.cancel(), everyone.cancel()]);
  });

  it('ends when the caller’s access changes (revoked), after saying so', async () => {
    const dev = await logDevice(admin);
    const user = await userWithKey(['viewer']);
    const r = await logStream(user.key, `?agent_id=${dev.deviceId}`);
    expect(await revokeWatchers(env, { userId: user.userId })).toBeGreaterThan(0);
    await waitFor(() => r.ended(), 'the stream to end');
    expect(r.text()).toContain(': access changed');
  });
});
