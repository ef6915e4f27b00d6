// The logs capability's test rig: a state dir and files in a fresh temp dir, a hub that records
// every batch (checked against the wire schema) and acknowledges on demand, and a fake journalctl —
// a real executable that serves a journal file the test appends to, honouring --after-cursor and
// --lines=0 as journalctl does, and recording the arguments of each run.
import { appendFileSync, chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logsCapability, type LogsCapability } from '../../../agent/logs/index.ts';
import type { LogOptions } from '../../../agent/logs/options.ts';
import { LogBatchSchema, MAX_LOG_BATCH, type LogBatch } from '../../../shared/protocol/logs.ts';
import { quietLogger, waitFor } from '../tunnels/helpers.ts';

export { waitFor };
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const FIXTURE = join(import.meta.dir, '../../fixtures/journal/journal.ndjson');
export const fixtureLines = () => readFileSync(FIXTURE, 'utf8').split('\n').filter(Boolean);

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'pirelay-logs-'));
}

/** A hub end: records batches, says whether the socket is up, acknowledges when told. */
export class FakeHub {
  readonly batches: LogBatch[] = [];
  up = true;
  send = (message: unknown): boolean => {
    if (!this.up) return false;
    const batch = LogBatchSchema.parse(message);
    if (Buffer.byteLength(JSON.stringify(batch)) > MAX_LOG_BATCH.bytes) throw new Error('a batch over MAX_LOG_BATCH.bytes');
    this.batches.push(structuredClone(batch));
    return true;
  };
  /** Every line, once per (boot, seq) — what the hub's dedup would store. */
  stored(): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const b of this.batches) {
      const key = `${b.boot}:${b.seq}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(...b.lines.map((l) => l.message));
    }
    return out;
  }
  ackAll(cap: LogsCapability): void {
    for (const b of this.batches) cap.messages!.logs_ack!({ t: 'logs_ack', boot: b.boot, seq: b.seq });
  }
}

export function options(stateDir: string, over: Partial<LogOptions> = {}): LogOptions {
  return { journal: 'off', files: [], stateDir, spoolBytes: 1024 * 1024, ...over };
}

/** A started capability (hello'd on `hub` when given), quick to ship and to poll. */
export async function start(opts: LogOptions, hub?: FakeHub, logs: string[] = []): Promise<LogsCapability> {
  const cap = logsCapability({ log: quietLogger(logs), options: opts, shipIntervalMs: 100, pollMs: 50 });
  await cap.ready;
  if (hub) cap.onHello!(hub.send as never);
  return cap;
}

/** A fake journalctl in `dir`: serves dir/journal.ndjson; each run's arguments go to dir/argv.log. */
export function fakeJournalctl(dir: string): { command: string; journal: string; append: (...lines: string[]) => void; runs: () => string[][]; exitAfter: (n: number) => void } {
  const command = join(dir, 'journalctl');
  const journal = join(dir, 'journal.ndjson');
  writeFileSync(journal, '');
  writeFileSync(
    command,
    `#!${process.execPath}
const fs = require('node:fs');
const dir = ${JSON.stringify(dir)};
const args = process.argv.slice(2);
const read = () => fs.readFileSync(dir + '/journal.ndjson', 'utf8').split('\\n').filter(Boolean);
const cursorOf = (l) => { try { return JSON.parse(l).__CURSOR; } catch { return undefined; } };
const after = args.find((a) => a.startsWith('--after-cursor='))?.slice('--after-cursor='.length);
let lines = read();
let next = 0;
if (after !== undefined) {
  const i = lines.findIndex((l) => cursorOf(l) === after);
  if (i < 0) { fs.appendFileSync(dir + '/argv.log', JSON.stringify(args) + '\\n'); process.stderr.write('Failed to seek to cursor: Invalid argument\\n'); process.exit(1); }
  next = i + 1;
} else if (args.includes('--lines=0')) next = lines.length;
let exitAfter = Infinity;
try { exitAfter = Number(fs.readFileSync(dir + '/exit-after', 'utf8')); fs.unlinkSync(dir + '/exit-after'); } catch {}
fs.appendFileSync(dir + '/argv.log', JSON.stringify(args) + '\\n');
let printed = 0;
const parent = process.ppid;
const pump = () => {
  // journalctl's parent died (a test's kill -9 of the agent): so do we, like a real one on EPIPE.
  if (process.ppid !== parent) process.exit(0);
  lines = read();
  while (next < lines.length) {
    if (printed >= exitAfter) process.exit(3);
    process.stdout.write(lines[next++] + '\\n');
    printed++;
  }
  if (printed >= exitAfter) process.exit(3);
};
pump();
setInterval(pump, 30);
`,
  );
  chmodSync(command, 0o755);
  return {
    command,
    journal,
    append: (...lines) => appendFileSync(journal, lines.map((l) => l + '\n').join('')),
    runs: () => {
      try {
        return readFileSync(join(dir, 'argv.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as string[]);
      } catch {
        return [];
      }
    },
    exitAfter: (n) => writeFileSync(join(dir, 'exit-after'), String(n)),
  };
}

/** A journal entry as journalctl -o json writes it, numbered. */
export function entry(i: number, message = `entry ${i}`, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    __CURSOR: `s=ab;i=${i.toString(16)};b=cd;m=${i.toString(16)};t=${(1_700_000_000_000_000 + i).toString(16)};x=${i}`,
    __REALTIME_TIMESTAMP: String(1_700_000_000_000_000 + i * 1000),
    PRIORITY: '6',
    _SYSTEMD_UNIT: 'test.service',
    _PID: '42',
    MESSAGE: message,
    ...extra,
  });
}
