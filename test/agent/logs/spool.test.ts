// The spool and the shipping: a batch leaves the spool only by its ack; unacknowledged batches are
// re-sent after a reconnect, and after a restart, as they were (same boot, seq, lines); nothing is
// batched while offline and the lines keep spooling; past the bound the oldest go and the next
// batch says how many (persisted until acknowledged); a torn last record after a crash is cut off;
// a batch never exceeds MAX_LOG_BATCH; and an agent with nothing to follow loads nothing.
import { afterEach, describe, expect, it } from 'bun:test';
import { appendFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { logsCapability, type LogsCapability } from '../../../agent/logs/index.ts';
import { Spool } from '../../../agent/logs/spool.ts';
import { MAX_LOG_BATCH, type LogLine } from '../../../shared/protocol/logs.ts';
import { quietLogger } from '../tunnels/helpers.ts';
import { FakeHub, options, sleep, start, tempDir, waitFor } from './helpers.ts';

const line = (i: number, message = `line ${i}`): LogLine => ({ ts: 1_700_000_000_000 + i, source: 'file', source_name: 'app', level: 'info', message });
const lines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => line(from + k));

const running: LogsCapability[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

describe('spool', () => {
  it('keeps a batch until its ack, and re-sends it the same after a restart', () => {
    const dir = tempDir();
    const a = new Spool({ dir, bytes: 1024 * 1024 });
    a.append(lines(1, 3), () => ({ journal: 'c3' }));
    const first = a.takeBatch()!;
    expect(first).toEqual({ t: 'logs', boot: a.boot, seq: 1, lines: lines(1, 3) });
    a.append(lines(4, 5));
    const second = a.takeBatch()!;
    expect(second.seq).toBe(2);
    expect(a.takeBatch()).toBeNull();
    expect(a.ack(1)).toBe(true);
    expect(a.ack(1)).toBe(false);
    a.close();
    const b = new Spool({ dir, bytes: 1024 * 1024 });
    expect(b.boot).toBe(a.boot);
    expect(b.unacked()).toEqual([second]);
    b.append(lines(6, 6));
    expect(b.takeBatch()!.seq).toBe(3);
    b.close();
  });

  it('cuts off a torn last record (a crash mid-write) and keeps the rest', () => {
    const dir = tempDir();
    const a = new Spool({ dir, bytes: 1024 * 1024 });
    a.append(lines(1, 2));
    a.close();
    const seg = readdirSync(dir).find((n) => n.startsWith('seg-'))!;
    appendFileSync(join(dir, seg), '{"ts":17000,"source":"fi');
    const b = new Spool({ dir, bytes: 1024 * 1024 });
    expect(b.pendingLines).toBe(2);
    b.append(lines(3, 3));
    expect(b.takeBatch()!.lines).toEqual(lines(1, 3));
    b.close();
  });

  it('drops (and counts) a damaged record in the middle instead of sending a batch the hub would refuse', () => {
    const dir = tempDir();
    const a = new Spool({ dir, bytes: 1024 * 1024 });
    a.append(lines(1, 1));
    a.close();
    const seg = readdirSync(dir).find((n) => n.startsWith('seg-'))!;
    appendFileSync(join(dir, seg), '{"ts":-1,"source":"file","source_name":"app","level":"info","message":"bad"}\nnot json\n');
    const b = new Spool({ dir, bytes: 1024 * 1024 });
    b.append(lines(2, 2));
    expect(b.takeBatch()).toEqual({ t: 'logs', boot: b.boot, seq: 1, lines: [line(1), line(2)], dropped: 2 });
    b.close();
  });

  it('forgets a batch file written but never recorded as sent (its lines go out again under that seq)', () => {
    const dir = tempDir();
    const a = new Spool({ dir, bytes: 1024 * 1024 });
    a.append(lines(1, 2));
    a.close();
    writeFileSync(join(dir, 'batch-0000000001.json'), JSON.stringify({ t: 'logs', boot: a.boot, seq: 1, lines: [line(99)] }));
    const b = new Spool({ dir, bytes: 1024 * 1024 });
    expect(b.unacked()).toEqual([]);
    expect(b.takeBatch()).toEqual({ t: 'logs', boot: a.boot, seq: 1, lines: lines(1, 2) });
    b.close();
  });

  it('drops the oldest past its bound, counts them, and keeps the count with the next batch until it is acknowledged', () => {
    const dir = tempDir();
    const bound = 64 * 1024;
    const s = new Spool({ dir, bytes: bound });
    const total = 3000;
    for (let i = 1; i <= total; i++) s.append([line(i, `line ${i} ${'x'.repeat(60)}`)]);
    expect(s.bytes).toBeLessThanOrEqual(bound);
    const dropped = s.dropped;
    expect(dropped).toBeGreaterThan(0);
    const got: LogLine[] = [];
    const first = s.takeBatch()!;
    expect(first.dropped).toBe(dropped);
    got.push(...first.lines);
    // The count rides in the batch (kept on disk until acked), not in the next one too.
    for (let b = s.takeBatch(); b; b = s.takeBatch()) {
      expect(b.dropped).toBeUndefined();
      got.push(...b.lines);
    }
    expect(dropped + got.length).toBe(total);
    // The newest survived, in order, the oldest went.
    expect(got.map((l) => l.ts)).toEqual(lines(dropped + 1, total).map((l) => l.ts));
    s.close();
    const again = new Spool({ dir, bytes: bound });
    expect(again.unacked()[0]!.dropped).toBe(dropped);
    again.close();
  });

  it('never makes a batch over MAX_LOG_BATCH, in lines or bytes', () => {
    const dir = tempDir();
    const s = new Spool({ dir, bytes: 50 * 1024 * 1024 });
    s.append(lines(1, 1200));
    const sizes = [s.takeBatch()!, s.takeBatch()!, s.takeBatch()!].map((b) => b.lines.length);
    expect(sizes).toEqual([500, 500, 200]);
    const big = 'q'.repeat(8000);
    s.append(Array.from({ length: 200 }, (_, i) => line(i, big)));
    for (let b = s.takeBatch(); b; b = s.takeBatch()) expect(Buffer.byteLength(JSON.stringify(b))).toBeLessThanOrEqual(MAX_LOG_BATCH.bytes);
    s.close();
  });
});

describe('shipping', () => {
  it('re-sends unacknowledged batches after a reconnect with the same seq, and sends acked ones never again', async () => {
    const dir = tempDir();
    const path = join(dir, 'app.log');
    writeFileSync(path, '');
    const hub = new FakeHub();
    const cap = await start(options(join(dir, 'state'), { files: [{ path, name: 'app' }] }), hub);
    running.push(cap);
    await sleep(100);
    appendFileSync(path, 'a\nb\n');
    await waitFor(() => hub.batches.length === 1);
    hub.ackAll(cap);
    await waitFor(() => cap.stats()!.unacked === 0);
    appendFileSync(path, 'c\n');
    await waitFor(() => hub.batches.length === 2);
    const unacked = hub.batches[1]!;
    // The socket drops; lines keep coming and spooling, nothing is sent.
    hub.up = false;
    cap.onGone!();
    appendFileSync(path, 'd\ne\n');
    await waitFor(() => cap.stats()!.pending === 2);
    await sleep(300);
    expect(hub.batches.length).toBe(2);
    hub.up = true;
    cap.onHello!(hub.send as never);
    await waitFor(() => hub.batches.length === 4);
    expect(hub.batches[2]).toEqual(unacked);
    expect(hub.batches[3]!.seq).toBe(unacked.seq + 1);
    expect(hub.batches[3]!.lines.map((l) => l.message)).toEqual(['d', 'e']);
    hub.ackAll(cap);
    await waitFor(() => cap.stats()!.unacked === 0);
    // A stale or foreign ack changes nothing; a reconnect sends nothing acknowledged.
    cap.messages!.logs_ack!({ t: 'logs_ack', boot: 'someone-else', seq: 1 });
    cap.onGone!();
    cap.onHello!(hub.send as never);
    await sleep(300);
    expect(hub.batches.length).toBe(4);
    expect(readdirSync(join(dir, 'state', 'spool')).filter((n) => n.startsWith('batch-'))).toEqual([]);
  });

  it('keeps at most a few batches in flight', async () => {
    const dir = tempDir();
    const path = join(dir, 'app.log');
    writeFileSync(path, '');
    const hub = new FakeHub();
    const cap = await start(options(join(dir, 'state'), { files: [{ path, name: 'app' }] }), hub);
    running.push(cap);
    await sleep(100);
    appendFileSync(path, Array.from({ length: 3000 }, (_, i) => `n${i}\n`).join(''));
    await waitFor(() => hub.batches.length === 4);
    await sleep(300);
    expect(hub.batches.length).toBe(4);
    hub.ackAll(cap);
    await waitFor(() => hub.stored().length === 3000);
    expect(hub.stored()).toEqual(Array.from({ length: 3000 }, (_, i) => `n${i}`));
  });

  it('reports what the bound dropped while offline in the next batch', async () => {
    const dir = tempDir();
    const path = join(dir, 'app.log');
    writeFileSync(path, '');
    const hub = new FakeHub();
    hub.up = false;
    const cap = await start(options(join(dir, 'state'), { files: [{ path, name: 'app' }], spoolBytes: 64 * 1024 }));
    running.push(cap);
    await sleep(100);
    const total = 4000;
    appendFileSync(path, Array.from({ length: total }, (_, i) => `offline ${i} ${'z'.repeat(40)}\n`).join(''));
    await waitFor(() => cap.stats()!.pending + cap.stats()!.dropped === total);
    const dropped = cap.stats()!.dropped;
    expect(dropped).toBeGreaterThan(0);
    hub.up = true;
    cap.onHello!(hub.send as never);
    await waitFor(() => hub.batches.length > 0);
    expect(hub.batches[0]!.dropped).toBe(dropped);
    for (;;) {
      hub.ackAll(cap);
      if (hub.stored().length === total - dropped) break;
      await sleep(50);
    }
    expect(hub.stored()[0]).toBe(`offline ${dropped} ${'z'.repeat(40)}`);
    expect(hub.batches.slice(1).every((b) => b.dropped === undefined)).toBe(true);
  });

  it('loads nothing and writes nothing with no journal, no files and no spool left', async () => {
    const dir = tempDir();
    const state = join(dir, 'state');
    const cap = logsCapability({ log: quietLogger(), options: options(state) });
    await cap.ready;
    cap.onHello!(new FakeHub().send as never);
    expect(cap.stats()).toBeNull();
    expect(existsSync(state)).toBe(false);
    await cap.stop();
  });

  it('still ships a spool left from an earlier run when there is nothing to follow now', async () => {
    const dir = tempDir();
    const state = join(dir, 'state');
    const s = new Spool({ dir: join(state, 'spool'), bytes: 1024 * 1024 });
    s.append(lines(1, 2));
    s.close();
    const hub = new FakeHub();
    running.push(await start(options(state), hub));
    await waitFor(() => hub.stored().length === 2);
    expect(hub.stored()).toEqual(['line 1', 'line 2']);
  });

  it('costs the logs, not the agent, when the state dir cannot be made', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), '');
    const logs: string[] = [];
    const cap = logsCapability({ log: quietLogger(logs), options: options(join(dir, 'file', 'state'), { files: [{ path: join(dir, 'x.log'), name: 'x' }] }) });
    await cap.ready;
    cap.onHello!(new FakeHub().send as never);
    cap.messages!.logs_ack!({ t: 'logs_ack', boot: 'b', seq: 1 });
    expect(cap.stats()).toBeNull();
    expect(logs.some((l) => l.includes('the logs capability failed to start'))).toBe(true);
    await cap.stop();
  });
});
