// Files, live and real: the tail starts at the end the first time, lines go out tagged with the
// configured name and a level from their text, a rotation (rename + new file) loses nothing of
// either file, a truncation starts over, a file that appears later is read from its start, a
// restart resumes at the saved offset (and a replaced file is read whole), a partial line waits for
// its newline, and an oversize line arrives cut with the marker.
import { afterEach, describe, expect, it } from 'bun:test';
import { appendFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LogsCapability } from '../../../agent/logs/index.ts';
import { LOG_TRUNCATED_MARKER, MAX_LOG_MESSAGE } from '../../../shared/protocol/logs.ts';
import { FakeHub, options, sleep, start, tempDir, waitFor } from './helpers.ts';

const running: LogsCapability[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

async function follow(path: string, state: string, hub = new FakeHub()) {
  const cap = await start(options(state, { files: [{ path, name: 'app' }] }), hub);
  running.push(cap);
  // The follower has looked at a regular file once it saved its state (of anything else it saves none).
  const regular = () => {
    try {
      return statSync(path).isFile();
    } catch {
      return false;
    }
  };
  await waitFor(() => existsSync(join(state, 'files.json')) || !regular());
  return { cap, hub };
}

const messages = (hub: FakeHub) => hub.stored();

describe('file follower', () => {
  it('starts at the end, then ships new lines with the name and a level from the text', async () => {
    const dir = tempDir();
    const path = join(dir, 'app.log');
    writeFileSync(path, 'old line 1\nold line 2\n');
    const { hub } = await follow(path, join(dir, 'state'));
    appendFileSync(path, 'ERROR disk full\r\nplain line\n\n[warn] slow\n');
    await waitFor(() => messages(hub).length === 3);
    expect(messages(hub)).toEqual(['ERROR disk full', 'plain line', '[warn] slow']);
    const lines = hub.batches.flatMap((b) => b.lines);
    expect(lines.map((l) => [l.source, l.source_name, l.level])).toEqual([
      ['file', 'app', 'error'],
      ['file', 'app', 'info'],
      ['file', 'app', 'warning'],
    ]);
  });

  it('follows a rotation: the old file’s last lines, then the new file from its start', async () => {
    const dir = tempDir();
    const path = join(dir, 'app.log');
    writeFileSync(path, '');
    const { hub } = await follow(path, join(dir, 'state'));
    appendFileSync(path, 'a1\n');
    await waitFor(() => messages(hub).length === 1);
    // Written just before the rotation (the follower has not seen it yet), then renamed away.
    appendFileSync(path, 'a2\na3 no newline');
    renameSync(path, `${path}.1`);
    writeFileSync(path, 'b1\nb2\n');
    await waitFor(() => messages(hub).length === 5);
    appendFileSync(path, 'b3\n');
    await waitFor(() => messages(hub).length === 6);
    expect(messages(hub)).toEqual(['a1', 'a2', 'a3 no newline', 'b1', 'b2', 'b3']);
  });

  it('starts over after a truncation to 0', async () => {
    const dir = tempDir();
    const path = join(dir, 'app.log');
    writeFileSync(path, 'before we came\n');
    const { hub } = await follow(path, join(dir, 'state'));
    appendFileSync(path, 'one\ntwo\n');
    await waitFor(() => messages(hub).length === 2);
    truncateSync(path, 0);
    await sleep(200);
    appendFileSync(path, 'three\n');
    await waitFor(() => messages(hub).length === 3);
    expect(messages(hub)).toEqual(['one', 'two', 'three']);
  });

  it('notices a copytruncate rewrite that grew past the old offset (the head changed)', async () => {
    const dir = tempDir();
    const path = join(dir, 'app.log');
    writeFileSync(path, '');
    const { hub } = await follow(path, join(dir, 'state'));
    appendFileSync(path, 'first\n');
    await waitFor(() => messages(hub).length === 1);
    // Truncated and refilled between two polls: larger than before, other first bytes.
    writeFileSync(path, 'rewritten 1\nrewritten 2\n');
    await waitFor(() => messages(hub).length === 3);
    expect(messages(hub)).toEqual(['first', 'rewritten 1', 'rewritten 2']);
  });

  it('waits for a missing file and reads it from its start when it appears', async () => {
    const dir = tempDir();
    const path = join(dir, 'later.log');
    const { hub } = await follow(path, join(dir, 'state'));
    await sleep(200);
    writeFileSync(path, 'hello\nworld\n');
    await waitFor(() => messages(hub).length === 2);
    expect(messages(hub)).toEqual(['hello', 'world']);
    // Deleted and created again: a new file, from its start.
    unlinkSync(path);
    await sleep(200);
    writeFileSync(path, 'again\n');
    await waitFor(() => messages(hub).length === 3);
    expect(messages(hub)).toEqual(['hello', 'world', 'again']);
  });

  it('resumes at the saved offset after a restart, and reads a file replaced meanwhile whole', async () => {
    const dir = tempDir();
    const path = join(dir, 'app.log');
    const state = join(dir, 'state');
    writeFileSync(path, '');
    const hub = new FakeHub();
    const a = await follow(path, state, hub);
    appendFileSync(path, 'l1\nl2\n');
    await waitFor(() => messages(hub).length === 2);
    hub.ackAll(a.cap);
    await a.cap.stop();
    running.length = 0;
    appendFileSync(path, 'l3\nl4 partial');
    await follow(path, state, hub);
    await waitFor(() => messages(hub).length === 3);
    appendFileSync(path, ' done\n');
    await waitFor(() => messages(hub).length === 4);
    expect(messages(hub)).toEqual(['l1', 'l2', 'l3', 'l4 partial done']);
    await running.pop()!.stop();
    // Rotated while the agent was down: the file at the path is new, read from its start.
    renameSync(path, `${path}.1`);
    writeFileSync(path, 'n1\n');
    await follow(path, state, hub);
    await waitFor(() => messages(hub).length === 5);
    expect(messages(hub).at(-1)).toBe('n1');
  });

  it('cuts an oversize line at a character boundary with the marker, never drops it', async () => {
    const dir = tempDir();
    const path = join(dir, 'app.log');
    writeFileSync(path, '');
    const { hub } = await follow(path, join(dir, 'state'));
    const long = 'é'.repeat(MAX_LOG_MESSAGE); // 2 bytes each: twice the bound
    appendFileSync(path, `${long}\nafter\n`);
    await waitFor(() => messages(hub).length === 2);
    const [cut, after] = messages(hub);
    expect(after).toBe('after');
    expect(cut).toBe(`${'é'.repeat(MAX_LOG_MESSAGE / 2)}${LOG_TRUNCATED_MARKER}${MAX_LOG_MESSAGE} bytes]`);
  });

  it('keeps a huge line without its newline bounded, and ships it cut when the newline comes', async () => {
    const dir = tempDir();
    const path = join(dir, 'app.log');
    writeFileSync(path, '');
    const { hub, cap } = await follow(path, join(dir, 'state'));
    appendFileSync(path, 'x'.repeat(3 * 1024 * 1024));
    await sleep(300);
    expect(messages(hub)).toEqual([]);
    expect(cap.stats()!.pending).toBe(0);
    appendFileSync(path, 'y\n');
    await waitFor(() => messages(hub).length === 1);
    expect(messages(hub)[0]).toBe(`${'x'.repeat(MAX_LOG_MESSAGE)}${LOG_TRUNCATED_MARKER}${3 * 1024 * 1024 + 1 - MAX_LOG_MESSAGE} bytes]`);
  });

  it('ships hostile bytes as valid lines: NUL, invalid UTF-8, escapes (checked against the wire schema)', async () => {
    const dir = tempDir();
    const path = join(dir, 'app.log');
    writeFileSync(path, '');
    const { hub } = await follow(path, join(dir, 'state'));
    appendFileSync(path, Buffer.from([0x00, 0x61, 0xff, 0xfe, 0x1b, 0x5b, 0x32, 0x4a, 0xe2, 0x82, 0x0a, 0x22, 0x5c, 0x0a]));
    await waitFor(() => messages(hub).length === 2);
    expect(messages(hub)).toEqual(['\u0000a\uFFFD\uFFFD\u001b[2J\uFFFD', '"\\']);
  });

  it('does not read, or stall on, a FIFO or a directory at the path, and reads the file that replaces it', async () => {
    const dir = tempDir();
    const path = join(dir, 'app.log');
    expect(Bun.spawnSync(['mkfifo', path]).exitCode).toBe(0);
    const { hub } = await follow(path, join(dir, 'state'));
    // The event loop still turns (a blocking open of the FIFO would stop it here).
    await sleep(300);
    unlinkSync(path);
    mkdirSync(path);
    await sleep(300);
    rmSync(path, { recursive: true });
    writeFileSync(path, 'real\n');
    await waitFor(() => messages(hub).length === 1);
    expect(messages(hub)).toEqual(['real']);
  });
});
