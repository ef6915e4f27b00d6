// Whole-machine CPU usage from /proc/stat. Usage is a rate, so it needs two snapshots; the
// device_info RPC must answer in a few milliseconds, so instead of sleeping between two reads the
// sampler keeps the previous snapshot (refreshed by the agent's once-a-second tick) and diffs
// against it.
import { readText, round } from './proc.ts';

/** Cumulative jiffies since boot, summed over all CPUs. */
export interface CpuTimes {
  total: number;
  idle: number;
  /** Online CPUs: the number of cpuN lines. */
  cores: number;
}

/**
 * Busy and idle jiffies of one `cpu…` line: user nice system idle iowait irq softirq steal guest
 * guest_nice. guest and guest_nice are already included in user and nice, so only the first eight
 * count, and iowait is idle time (the CPU could have run something else). Null if unusable.
 */
function lineTimes(line: string): { total: number; idle: number } | null {
  const values = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (values.length < 4 || values.some((v) => !Number.isFinite(v) || v < 0)) return null;
  const total = values.reduce((sum, v) => sum + v, 0);
  return { total, idle: (values[3] ?? 0) + (values[4] ?? 0) };
}

/** Parses the aggregate `cpu` line and counts the cpuN lines. Null if there is no usable line. */
export function parseCpuTimes(text: string): CpuTimes | null {
  let times: CpuTimes | null = null;
  let cores = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu')) continue;
    if (/^cpu\d+\s/.test(line)) {
      cores++;
      continue;
    }
    if (!line.startsWith('cpu ')) continue;
    const t = lineTimes(line);
    if (t === null) return null;
    times = { ...t, cores: 0 };
  }
  if (times === null) return null;
  times.cores = Math.max(cores, 1);
  return times;
}

/** One core's cumulative jiffies (its cpuN line). */
export interface CoreTimes {
  id: number;
  total: number;
  idle: number;
}

/** The aggregate line and every cpuN line of /proc/stat, for per-core usage; unusable lines are left out. */
export function parseCoreTimes(text: string): { all: { total: number; idle: number } | null; cores: CoreTimes[] } {
  let all: { total: number; idle: number } | null = null;
  const cores: CoreTimes[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu')) continue;
    if (line.startsWith('cpu ')) {
      all = lineTimes(line);
      continue;
    }
    const id = /^cpu(\d+)\s/.exec(line)?.[1];
    const t = id === undefined ? null : lineTimes(line);
    if (t) cores.push({ id: Number(id), ...t });
  }
  return { all, cores };
}

export async function readCpuTimes(root: string): Promise<CpuTimes | null> {
  const text = await readText(root, '/proc/stat');
  return text === null ? null : parseCpuTimes(text);
}

/** Busy share of the jiffies between two snapshots, 0-100 with one decimal; null if none elapsed. */
export function cpuPercent(prev: CpuTimes | null, next: CpuTimes): number | null {
  const total = next.total - (prev?.total ?? 0);
  const idle = next.idle - (prev?.idle ?? 0);
  if (total <= 0) return null;
  return round(Math.min(100, Math.max(0, ((total - idle) / total) * 100)), 1);
}

export interface CpuSamplerOptions {
  /** A snapshot younger than this is not replaced; the last computed value is returned instead. */
  minIntervalMs?: number;
  /** Monotonic milliseconds. */
  now?: () => number;
}

export class CpuSampler {
  private prev: CpuTimes | null = null;
  private prevAt = Number.NEGATIVE_INFINITY;
  private last = 0;
  private inflight: Promise<number> | null = null;
  private readonly minIntervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly read: () => Promise<CpuTimes | null>,
    options: CpuSamplerOptions = {},
  ) {
    this.minIntervalMs = options.minIntervalMs ?? 200;
    this.now = options.now ?? (() => performance.now());
  }

  /**
   * Usage since the previous snapshot when that is old enough to be meaningful, else the last
   * computed value. The very first call has nothing to diff against and reports the average since
   * boot rather than a made-up zero.
   */
  usage(): Promise<number> {
    if (this.now() - this.prevAt < this.minIntervalMs) return Promise.resolve(this.last);
    return this.refresh();
  }

  /** Number of online CPUs in the latest snapshot (1 until one has been read). */
  cores(): number {
    return this.prev?.cores ?? 1;
  }

  /** Cheap periodic refresh so usage() always has a recent baseline; never throws. */
  tick(): void {
    if (this.now() - this.prevAt >= this.minIntervalMs) this.refresh().catch(() => {});
  }

  private refresh(): Promise<number> {
    this.inflight ??= this.read()
      .then((next) => {
        this.prevAt = this.now();
        if (next === null) return this.last;
        const percent = cpuPercent(this.prev, next);
        if (percent !== null) this.last = percent;
        this.prev = next;
        return this.last;
      })
      .finally(() => {
        this.inflight = null;
      });
    return this.inflight;
  }
}
