// The process_list and process_get RPCs: every process with its CPU and memory share, minus the
// agent's own process tree (PiTunnel excludes its service tree too: the agent measuring itself is
// noise), and one process in detail (Tyto's shape). CPU share is a rate, so the sampler keeps each
// list call's per-process ticks and diffs the next call against them; only the very first call
// pays for a short second sample, so it does not answer all zeros. process_get diffs against the
// same baseline when it holds the process, so one process reads as it would in the list now, and
// otherwise takes that short second sample of its own, of just that process.
import type { Process } from '../../shared/api/device-info.ts';
import type { ProcessDetail } from '../../shared/api/processes.ts';
import { readCpuTimes } from './cpu.ts';
import { readMeminfo } from './memory.ts';
import { readBootTime, readUptime } from './os.ts';
import { listPids, readProcDetails, readProcStat, USER_HZ, type ProcDetails } from './proc-pid.ts';
import { round } from './proc.ts';
import { UserNames } from './users.ts';

/** psutil's status() words for the kernel's state letters, as PiTunnel's process list shows them. */
const STATE_NAMES: Record<string, string> = {
  R: 'running',
  S: 'sleeping',
  D: 'disk-sleep',
  T: 'stopped',
  t: 'tracing-stop',
  Z: 'zombie',
  X: 'dead',
  x: 'dead',
  K: 'wake-kill',
  W: 'waking',
  P: 'parked',
  I: 'idle',
};

export function stateName(letter: string): string {
  return STATE_NAMES[letter] ?? letter;
}

/** `pid` and all its descendants, following ppid links. */
export function processTree(procs: readonly { pid: number; ppid: number }[], pid: number): Set<number> {
  const children = new Map<number, number[]>();
  for (const p of procs) {
    const siblings = children.get(p.ppid);
    if (siblings) siblings.push(p.pid);
    else children.set(p.ppid, [p.pid]);
  }
  const tree = new Set<number>([pid]);
  const queue = [pid];
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    for (const child of children.get(next) ?? []) {
      if (!tree.has(child)) {
        tree.add(child);
        queue.push(child);
      }
    }
  }
  return tree;
}

interface TickSnapshot {
  /** Monotonic ms when taken. */
  at: number;
  /** Sum of all CPUs' jiffies from /proc/stat. */
  total: number;
  cores: number;
  /** pid → utime+stime and starttime (to recognise a reused pid). */
  procs: Map<number, { ticks: number; starttime: number }>;
}

export interface ProcessSamplerOptions {
  root?: string;
  /** Root of the process tree to leave out; default the agent itself. */
  selfPid?: number;
  /** Length of the first call's second sample. */
  firstSampleMs?: number;
  /** A baseline younger than this is too short a window; the one before it is used instead. */
  minWindowMs?: number;
  /** A baseline older than this is a long-term average, not "now": sample afresh like a first call. */
  maxWindowMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  users?: UserNames;
}

export class ProcessSampler {
  private base: TickSnapshot | null = null;
  private older: TickSnapshot | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly root: string;
  private readonly selfPid: number;
  private readonly firstSampleMs: number;
  private readonly minWindowMs: number;
  private readonly maxWindowMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly users: UserNames;

  constructor(options: ProcessSamplerOptions = {}) {
    this.root = options.root ?? '/';
    this.selfPid = options.selfPid ?? process.pid;
    this.firstSampleMs = options.firstSampleMs ?? 100;
    this.minWindowMs = options.minWindowMs ?? 100;
    this.maxWindowMs = options.maxWindowMs ?? 60_000;
    this.now = options.now ?? (() => performance.now());
    this.sleep = options.sleep ?? ((ms) => Bun.sleep(ms));
    this.users = options.users ?? new UserNames(this.root, this.now);
  }

  /** Calls run one at a time: each one moves the shared baseline. */
  list(): Promise<Process[]> {
    const result = this.queue.then(() => this.sample());
    this.queue = result.catch(() => {});
    return result;
  }

  private async sample(): Promise<Process[]> {
    if (this.base === null || this.now() - this.base.at > this.maxWindowMs) {
      this.older = null;
      this.base = await this.readTicks();
      await this.sleep(this.firstSampleMs);
    }
    const [procs, cpu, mem, userName] = await Promise.all([
      this.readAll(),
      readCpuTimes(this.root),
      readMeminfo(this.root),
      this.users.lookup(),
    ]);
    const current: TickSnapshot = {
      at: this.now(),
      total: cpu?.total ?? 0,
      cores: cpu?.cores ?? 1,
      procs: new Map(procs.map((p) => [p.pid, { ticks: p.ticks, starttime: p.starttime }])),
    };
    const base = this.base;
    const tooSoon = current.at - base.at < this.minWindowMs;
    const ref = tooSoon && this.older ? this.older : base;
    if (!tooSoon) {
      this.older = base;
      this.base = current;
    }

    // Elapsed wall time in ticks per CPU: top's and psutil's denominator, so a process keeping
    // two cores busy shows 200%.
    const elapsed = (current.total - ref.total) / current.cores;
    const maxPercent = 100 * current.cores;
    const excluded = processTree(procs, this.selfPid);
    const list: Process[] = [];
    for (const p of procs) {
      if (excluded.has(p.pid)) continue;
      const before = ref.procs.get(p.pid);
      // A pid missing from the baseline (or reused since) started after it: all its ticks are new.
      const ticks = before && before.starttime === p.starttime ? p.ticks - before.ticks : p.ticks;
      const cpuPercent = elapsed > 0 ? Math.min(maxPercent, Math.max(0, (ticks / elapsed) * 100)) : 0;
      list.push({
        pid: p.pid,
        name: p.comm,
        cpu_percent: round(cpuPercent, 1),
        memory_percent: mem.total > 0 ? round((p.rss / mem.total) * 100, 2) : 0,
        rss: p.rss,
        state: stateName(p.state),
        user: userName(p.uid),
        cmdline: p.cmdline,
      });
    }
    return list;
  }

  /**
   * One process in detail, or null if there is none with this pid, it exited while being read,
   * or the id is a thread's (a thread is not a process: the list never shows one). Kernel threads
   * and zombies are processes and are answered (no command line, no memory), as the list has them.
   * Reading does not move the list's baseline.
   */
  async detail(pid: number): Promise<ProcessDetail | null> {
    let ref = this.baselineOf(pid);
    if (ref === null) {
      const [stat, cpu] = await Promise.all([readProcStat(this.root, pid), readCpuTimes(this.root)]);
      if (stat === null) return null;
      ref = { total: cpu?.total ?? 0, ticks: stat.ticks, starttime: stat.starttime };
      await this.sleep(this.firstSampleMs);
    }
    const [p, cpu, bootTime, userName] = await Promise.all([
      readProcDetails(this.root, pid),
      readCpuTimes(this.root),
      readBootTime(this.root),
      this.users.lookup(),
    ]);
    if (p === null || (p.tgid !== null && p.tgid !== p.pid)) return null;
    const cores = cpu?.cores ?? 1;
    const elapsed = ((cpu?.total ?? 0) - ref.total) / cores;
    // The pid was reused since the baseline: every tick of the new process is in the window.
    const ticks = ref.starttime === p.starttime ? p.ticks - ref.ticks : p.ticks;
    const cpuPercent = elapsed > 0 ? Math.min(100 * cores, Math.max(0, (ticks / elapsed) * 100)) : 0;
    const boot = bootTime ?? Date.now() / 1000 - (await readUptime(this.root));
    return {
      pid: p.pid,
      ppid: p.ppid,
      name: p.comm,
      cmdline: p.cmdline,
      user: userName(p.uid),
      state: p.state,
      cpu: round(cpuPercent, 1),
      memory: p.rss,
      threads: p.threads,
      // Whole seconds, as Tyto writes it: btime itself is whole seconds.
      startTime: new Date(Math.round(boot + p.starttime / USER_HZ) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    };
  }

  /** The list's baseline for one process, under the list's own rules for a usable window; null if there is none. */
  private baselineOf(pid: number): { total: number; ticks: number; starttime: number } | null {
    const now = this.now();
    const usable = (s: TickSnapshot | null) => s !== null && now - s.at >= this.minWindowMs && now - s.at <= this.maxWindowMs;
    const snapshot = usable(this.base) ? this.base : usable(this.older) ? this.older : null;
    const proc = snapshot?.procs.get(pid);
    return snapshot && proc ? { total: snapshot.total, ...proc } : null;
  }

  private async readTicks(): Promise<TickSnapshot> {
    const pids = await listPids(this.root);
    const [cpu, stats] = await Promise.all([
      readCpuTimes(this.root),
      Promise.all(pids.map((pid) => readProcStat(this.root, pid))),
    ]);
    const procs = new Map<number, { ticks: number; starttime: number }>();
    for (const s of stats) if (s) procs.set(s.pid, { ticks: s.ticks, starttime: s.starttime });
    return { at: this.now(), total: cpu?.total ?? 0, cores: cpu?.cores ?? 1, procs };
  }

  private async readAll(): Promise<ProcDetails[]> {
    const pids = await listPids(this.root);
    const details = await Promise.all(pids.map((pid) => readProcDetails(this.root, pid)));
    return details.filter((d): d is ProcDetails => d !== null);
  }
}
