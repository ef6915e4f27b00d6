// The journal: parsing of a recorded `journalctl -o json` (levels, units and the name fallbacks,
// binary MESSAGE as bytes, repeated fields, µs timestamps, the cursor), malformed lines skipped and
// counted, and a real (fake) journalctl process: the first run starts at the journal's end, a
// restart of the agent resumes after the saved cursor with no line lost or repeated, a journalctl
// that dies is restarted where it stopped, and a crash between spooling and saving the cursor is
// repaired from the spool.
import { afterEach, describe, expect, it } from 'bun:test';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { journalArgs, parseJournalLine } from '../../../agent/logs/journal.ts';
import type { LogsCapability } from '../../../agent/logs/index.ts';
import { Spool } from '../../../agent/logs/spool.ts';
import { entry, FakeHub, fakeJournalctl, fixtureLines, options, sleep, start, tempDir, waitFor } from './helpers.ts';

const running: LogsCapability[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});
const run = async (...args: Parameters<typeof start>) => {
  const cap = await start(...args);
  running.push(cap);
  return cap;
};

describe('journal lines (the recorded fixture)', () => {
  const parsed = fixtureLines().map(parseJournalLine);

  it('parses every entry, with its cursor and its time in ms', () => {
    expect(parsed.every((p) => p !== null)).toBe(true);
    expect(parsed[0]!.cursor).toBe(JSON.parse(fixtureLines()[0]!).__CURSOR);
    expect(parsed[0]!.line.ts).toBe(1796151731000);
    expect(parsed[1]!.line.ts).toBe(1796151732250);
    expect(parsed.every((p) => p!.line.source === 'journal')).toBe(true);
  });

  it('maps PRIORITY to levels, a missing one to info', () => {
    expect(parsed.map((p) => p!.line.level)).toEqual(['info', 'info', 'error', 'warning', 'debug', 'info', 'critical', 'notice', 'info', 'info', 'emergency', 'alert']);
  });

  it('names the source by unit, else identifier, else command', () => {
    expect(parsed.map((p) => p!.line.source_name)).toEqual([
      'kernel',
      'init.scope',
      'nginx.service',
      'ssh.service',
      'sensor-poll',
      'worker.service',
      'kernel',
      'backup.sh',
      'app.service',
      'cron.service',
      'init.scope',
      'smartd.service',
    ]);
  });

  it('decodes a binary MESSAGE (an array of bytes) as UTF-8, invalid bytes replaced', () => {
    expect(parsed[5]!.line.message).toBe('\x1b[31mred\x1b[0m byte \uFFFD ok é');
  });

  it('carries pid, comm, unit and identifier as fields; a repeated field keeps its values', () => {
    expect(parsed[2]!.line.fields).toEqual({ pid: '812', comm: 'nginx', unit: 'nginx.service', identifier: 'nginx', hostname: 'raspberrypi' });
    expect(parsed[8]!.line.fields!.identifier).toBe('app\napp-worker');
    expect(parsed[0]!.line.fields).toEqual({ identifier: 'kernel', hostname: 'raspberrypi' });
  });

  it('refuses what is not an entry with a cursor', () => {
    for (const bad of ['', 'not json', '[]', '42', 'null', '{"MESSAGE":"no cursor"}', '{"__CURSOR":7}', '{"__CURSOR":""}', '{"__CURSOR":"c","MESSAGE":'])
      expect(parseJournalLine(bad)).toBeNull();
  });

  it('bounds an oversize MESSAGE with the marker', () => {
    const p = parseJournalLine(entry(1, 'x'.repeat(20_000)))!;
    expect(p.line.message.endsWith('… [truncated 11808 bytes]')).toBe(true);
  });

  it('asks journalctl for the end the first time, after the cursor later', () => {
    expect(journalArgs(null)).toEqual(['--follow', '--output=json', '--all', '--no-pager', '--quiet', '--lines=0']);
    expect(journalArgs('s=1;i=2')).toEqual(['--follow', '--output=json', '--all', '--no-pager', '--quiet', '--no-tail', '--after-cursor=s=1;i=2']);
  });
});

describe('following journalctl', () => {
  it('starts at the end, then resumes across an agent restart: no line lost, none repeated', async () => {
    const dir = tempDir();
    const fake = fakeJournalctl(dir);
    const opts = options(join(dir, 'state'), { journal: 'auto', journalctl: fake.command });
    // Old lines before the agent ever ran are not shipped.
    fake.append(entry(1), entry(2));
    const hub = new FakeHub();
    const a = await run(opts, hub);
    await waitFor(() => fake.runs().length === 1);
    expect(fake.runs()[0]).toContain('--lines=0');
    fake.append(entry(3), entry(4), entry(5));
    await waitFor(() => hub.stored().length === 3);
    // The first batch is acknowledged, then the agent stops with the rest unacknowledged.
    hub.ackAll(a);
    fake.append(entry(6), entry(7));
    await waitFor(() => hub.stored().length === 5);
    await a.stop();
    running.length = 0;
    // Written while the agent was down.
    fake.append(entry(8), entry(9));

    const b = await run(opts, hub);
    await waitFor(() => hub.stored().length === 7);
    expect(fake.runs()[1]).toContain(`--after-cursor=${JSON.parse(entry(7)).__CURSOR}`);
    fake.append(entry(10));
    await waitFor(() => hub.stored().length === 8);
    expect(hub.stored()).toEqual([3, 4, 5, 6, 7, 8, 9, 10].map((i) => `entry ${i}`));
    // b re-sent a's unacknowledged batch (6, 7) as it was: the same (boot, seq), the same lines.
    const resent = hub.batches.filter((x) => x.lines.some((l) => l.message === 'entry 6'));
    expect(resent.length).toBe(2);
    expect(resent[1]).toEqual(resent[0]!);
    // One boot, seqs without a gap.
    expect(new Set(hub.batches.map((x) => x.boot)).size).toBe(1);
    const seqs = [...new Set(hub.batches.map((x) => x.seq))].sort((x, y) => x - y);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    hub.ackAll(b);
    await waitFor(() => b.stats()!.unacked === 0 && b.stats()!.pending === 0);
  });

  it('skips and counts malformed lines, and ships the good ones around them', async () => {
    const dir = tempDir();
    const fake = fakeJournalctl(dir);
    const hub = new FakeHub();
    const cap = await run(options(join(dir, 'state'), { journal: 'auto', journalctl: fake.command }), hub);
    await waitFor(() => fake.runs().length === 1);
    fake.append(entry(1), 'garbage', '{"MESSAGE":"no cursor"}', '[1,2]', entry(2), '{"__CURSOR":', entry(3));
    await waitFor(() => hub.stored().length === 3);
    expect(hub.stored()).toEqual(['entry 1', 'entry 2', 'entry 3']);
    expect(cap.stats()!.malformed).toBe(4);
  });

  it('restarts a journalctl that died, after the last cursor it gave', async () => {
    const dir = tempDir();
    const fake = fakeJournalctl(dir);
    const hub = new FakeHub();
    const logs: string[] = [];
    const cap = await run(options(join(dir, 'state'), { journal: 'auto', journalctl: fake.command }), hub, logs);
    await waitFor(() => fake.runs().length === 1);
    fake.exitAfter(2);
    // The exit-after file is read at start: have the next run die after two lines.
    fake.append(entry(1), entry(2));
    await waitFor(() => hub.stored().length === 2);
    await cap.stop();
    running.length = 0;
    const again = await run(options(join(dir, 'state'), { journal: 'auto', journalctl: fake.command }), hub, logs);
    fake.append(entry(3), entry(4), entry(5), entry(6));
    await waitFor(() => hub.stored().length === 6, 10_000);
    expect(hub.stored()).toEqual([1, 2, 3, 4, 5, 6].map((i) => `entry ${i}`));
    expect(again.stats()!.journalRestarts).toBeGreaterThanOrEqual(1);
    expect(fake.runs().at(-1)).toContain(`--after-cursor=${JSON.parse(entry(4)).__CURSOR}`);
    expect(logs.some((l) => l.includes('journalctl exited'))).toBe(true);
  });

  it('resumes from the spool’s last mark when the agent died before saving the cursor', async () => {
    const dir = tempDir();
    const fake = fakeJournalctl(dir);
    const state = join(dir, 'state');
    fake.append(entry(1), entry(2), entry(3));
    // As if an agent spooled entry 2 (and its mark) and died before writing journal-cursor.json.
    const spool = new Spool({ dir: join(state, 'spool'), bytes: 1024 * 1024 });
    spool.append([parseJournalLine(entry(2))!.line], () => ({ journal: JSON.parse(entry(2)).__CURSOR }));
    spool.close();
    const hub = new FakeHub();
    await run(options(state, { journal: 'auto', journalctl: fake.command }), hub);
    await waitFor(() => hub.stored().length === 2);
    expect(hub.stored()).toEqual(['entry 2', 'entry 3']);
    expect(fake.runs()[0]).toContain(`--after-cursor=${JSON.parse(entry(2)).__CURSOR}`);
    expect(JSON.parse(readFileSync(join(state, 'journal-cursor.json'), 'utf8')).cursor).toBe(JSON.parse(entry(3)).__CURSOR);
  });

  it('keeps trying, without crashing, when journalctl cannot be started', async () => {
    const dir = tempDir();
    const logs: string[] = [];
    const cap = await run(options(join(dir, 'state'), { journal: 'auto', journalctl: join(dir, 'no-such-journalctl') }), new FakeHub(), logs);
    await waitFor(() => cap.stats()!.journalRestarts >= 2);
    expect(logs.some((l) => l.includes('journalctl failed to start'))).toBe(true);
  });

  it('gives up a cursor journalctl keeps refusing (its journal was vacuumed) and follows from the end', async () => {
    const dir = tempDir();
    const fake = fakeJournalctl(dir);
    const state = join(dir, 'state');
    mkdirSync(state, { recursive: true });
    writeFileSync(join(state, 'journal-cursor.json'), JSON.stringify({ cursor: 's=gone;i=1' }));
    fake.append(entry(1));
    const hub = new FakeHub();
    await run(options(state, { journal: 'auto', journalctl: fake.command }), hub);
    await waitFor(() => fake.runs().some((args) => args.includes('--lines=0')), 15_000);
    expect(fake.runs().filter((args) => args.includes('--after-cursor=s=gone;i=1')).length).toBe(3);
    await sleep(200);
    fake.append(entry(2));
    await waitFor(() => hub.stored().length === 1);
    expect(hub.stored()).toEqual(['entry 2']);
  });
});
