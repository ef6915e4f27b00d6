// Nothing lost, nothing repeated across a crash: an agent following the (fake) journal is killed
// with SIGKILL while lines stream in and batches are in flight, another starts on the same state
// dir, and the hub — storing each (boot, seq) once — ends up with every line exactly once, in order.
import { describe, expect, it } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LogBatchSchema } from '../../../shared/protocol/logs.ts';
import { entry, fakeJournalctl, sleep, tempDir, waitFor } from './helpers.ts';

const AGENT = join(import.meta.dir, 'crash-agent.ts');

function stored(out: string): string[] {
  let text = '';
  try {
    text = readFileSync(out, 'utf8');
  } catch {
    return [];
  }
  const seen = new Set<string>();
  const lines: string[] = [];
  // Only whole lines: the stand-in hub may be writing the last one while it is read.
  for (const raw of text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean)) {
    const b = LogBatchSchema.parse(JSON.parse(raw));
    if (seen.has(`${b.boot}:${b.seq}`)) continue;
    seen.add(`${b.boot}:${b.seq}`);
    lines.push(...b.lines.map((l) => l.message));
  }
  return lines;
}

describe('crash', () => {
  it('kill -9 while lines stream: the next agent neither loses nor repeats a line', async () => {
    const dir = tempDir();
    const fake = fakeJournalctl(dir);
    const state = join(dir, 'state');
    const out = join(dir, 'hub.ndjson');
    const spawn = () => Bun.spawn([process.execPath, AGENT, state, fake.command, out], { stdout: 'ignore', stderr: 'inherit' });
    const total = 1500;
    let next = 1;
    const write = (n: number) => {
      const batch: string[] = [];
      for (let k = 0; k < n && next <= total; k++) batch.push(entry(next++));
      if (batch.length) fake.append(...batch);
    };

    const first = spawn();
    await waitFor(() => fake.runs().length === 1, 10_000);
    // Lines stream in; the agent dies mid-stream, with more written while nobody runs.
    while (stored(out).length < 300) {
      write(25);
      await sleep(10);
    }
    write(40);
    first.kill('SIGKILL');
    await first.exited;
    write(200);

    const second = spawn();
    try {
      while (next <= total) {
        write(50);
        await sleep(10);
      }
      await waitFor(() => stored(out).length >= total, 20_000);
      await sleep(300);
      expect(stored(out)).toEqual(Array.from({ length: total }, (_, i) => `entry ${i + 1}`));
      expect(fake.runs().length).toBe(2);
      expect(fake.runs()[1]!.some((a) => a.startsWith('--after-cursor='))).toBe(true);
    } finally {
      second.kill();
      await second.exited;
    }
  }, 60_000);
});
