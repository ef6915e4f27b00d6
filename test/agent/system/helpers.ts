// Shared tools for the agent/system tests: paths to the recorded /proc snapshots, writable temp
// copies of them, and helpers that advance a copy's CPU counters so rate computations can be
// checked against exact numbers.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { StatfsFn, StatfsResult } from '../../../agent/system/reader.ts';

export const FIXTURES = join(import.meta.dir, '../../fixtures/proc');
export const PI4 = join(FIXTURES, 'pi4');
export const PI_ZERO_2W = join(FIXTURES, 'pi-zero-2w');
export const PI1_MODEL_B = join(FIXTURES, 'pi1-model-b');

// bun evaluates this module once for all test files, so a hook registered here would only run for
// the first file that imports it: each file that makes temp roots calls afterEach(removeTempRoots).
const temps: string[] = [];
export function removeTempRoots(): void {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A writable copy of a fixture tree, removed by removeTempRoots. */
export function copyFixture(fixture: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pirelay-system-'));
  temps.push(dir);
  cpSync(fixture, dir, { recursive: true });
  return dir;
}

/** A root holding just the given files (path → content), removed by removeTempRoots. */
export function makeRoot(files: Record<string, string | Uint8Array>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pirelay-system-'));
  temps.push(dir);
  writeFiles(dir, files);
  return dir;
}

export function writeFiles(root: string, files: Record<string, string | Uint8Array>): void {
  for (const [path, content] of Object.entries(files)) {
    const full = join(root, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
  }
}

const CPU_COLUMNS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;
export type CpuDelta = Partial<Record<(typeof CPU_COLUMNS)[number], number>>;

/**
 * Adds jiffies to the aggregate `cpu` line of <root>/proc/stat (and spreads them over the cpuN
 * lines, remainder on cpu0, so the file stays self-consistent).
 */
export function bumpCpu(root: string, delta: CpuDelta): void {
  const path = join(root, 'proc/stat');
  const lines = readFileSync(path, 'utf8').split('\n');
  const cores = lines.filter((l) => /^cpu\d+ /.test(l)).length;
  const out = lines.map((line) => {
    const m = /^(cpu\d*)\s+(.*)$/.exec(line);
    if (!m?.[1] || m[2] === undefined) return line;
    const label = m[1];
    const values = m[2].split(/\s+/).map(Number);
    CPU_COLUMNS.forEach((column, i) => {
      const d = delta[column] ?? 0;
      const share = Math.floor(d / cores);
      const add = label === 'cpu' ? d : label === 'cpu0' ? d - share * (cores - 1) : share;
      values[i] = (values[i] ?? 0) + add;
    });
    return `${label === 'cpu' ? 'cpu ' : label} ${values.join(' ')}`;
  });
  writeFileSync(path, out.join('\n'));
}

/** Adds clock ticks to utime/stime (fields 14 and 15) of <root>/proc/PID/stat. */
export function bumpProcess(root: string, pid: number, utime: number, stime = 0): void {
  const path = join(root, `proc/${pid}/stat`);
  const text = readFileSync(path, 'utf8');
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).trimEnd().split(' ');
  fields[11] = String(Number(fields[11]) + utime);
  fields[12] = String(Number(fields[12]) + stime);
  writeFileSync(path, `${text.slice(0, close + 2)}${fields.join(' ')}\n`);
}

/** Replaces field `n` (1-based, as proc(5) numbers them; n ≥ 3) of <root>/proc/PID/stat. */
export function setStatField(root: string, pid: number, n: number, value: string | number): void {
  const path = join(root, `proc/${pid}/stat`);
  const text = readFileSync(path, 'utf8');
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).trimEnd().split(' ');
  fields[n - 3] = String(value);
  writeFileSync(path, `${text.slice(0, close + 2)}${fields.join(' ')}\n`);
}

/** A statfs that answers from a table and fails, like ENOENT, for any other mount. */
export function fixedStatfs(table: Record<string, StatfsResult>): StatfsFn & { calls: string[] } {
  const calls: string[] = [];
  const fn = async (mount: string) => {
    calls.push(mount);
    const result = table[mount];
    if (result === undefined) throw new Error(`ENOENT: no such file or directory, statfs '${mount}'`);
    return result;
  };
  return Object.assign(fn, { calls });
}

/** The fixed filesystem sizes the Pi 4 fixture's tests use. */
export const PI4_STATFS: Record<string, StatfsResult> = {
  '/': { bsize: 4096, frsize: 4096, blocks: 7612310, bfree: 5120033, bavail: 4732081 },
  '/boot/firmware': { bsize: 512, frsize: 512, blocks: 1048576, bfree: 964812, bavail: 964812 },
  '/media/pi/My Drive': { bsize: 131072, frsize: 131072, blocks: 244189, bfree: 200001, bavail: 200001 },
};

export const ZERO_STATFS: Record<string, StatfsResult> = {
  '/': { bsize: 4096, frsize: 4096, blocks: 3765868, bfree: 2890123, bavail: 2697310 },
  '/boot': { bsize: 512, frsize: 512, blocks: 524288, bfree: 434012, bavail: 434012 },
};

/** A monotonic clock the test moves by hand. */
export function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/** A vcgencmd stand-in that records its calls. */
export function fakeVcgencmd(output: string | Error): ((argv: readonly string[]) => Promise<string>) & { calls: string[][] } {
  const calls: string[][] = [];
  const fn = async (argv: readonly string[]) => {
    calls.push([...argv]);
    if (output instanceof Error) throw output;
    return output;
  };
  return Object.assign(fn, { calls });
}
