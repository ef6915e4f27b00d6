// The sample's processes part and the watched process counts. A sweep reads every process's
// /proc/PID/stat once (comm, CPU ticks, start time and resident pages all in one file) and, for
// the few that make a top list, /proc/PID/status for the owner. That is three syscalls per
// process, the sampler's dearest part on a busy machine, so at short intervals a sweep runs at
// most every SWEEP_EVERY_MS and the samples in between repeat the last lists (CPU % is then over
// the sweep's own interval, as `top -d 5` shows it). A change of the watched names sweeps at once.
// Watched names match a process's comm (the kernel's 15-byte name) or the base name of its argv0
// (`exec -a name`, a long name comm cuts short); argv0 is read once per process lifetime, and
// only while something is watched.
import { readdirSync } from 'node:fs';
import type { MetricsSample, SampleProcess } from '../../shared/api/metrics.ts';
import { isKernelThread, parseProcStat, parseStatus, USER_HZ } from '../system/proc-pid.ts';
import { resolvePath } from '../system/proc.ts';
import { UserNames } from '../system/users.ts';
import { readOnce } from './proc-file.ts';

export const SWEEP_EVERY_MS = 5_000;
/** Processes in each top list. */
export const TOP = 5;

type Processes = MetricsSample['processes'];

/** Field 24 of /proc/PID/stat, resident pages (after the last ')', rest[0] is field 3). */
function rssPages(text: string): number {
  const n = Number(text.slice(text.lastIndexOf(')') + 2).split(' ', 23)[21]);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/**
 * The kernel's page size (4 KiB on most machines, 16 KiB on a Pi 5's kernel): what /proc/PID/stat
 * counts resident memory in. Bun has no sysconf, so it is the ratio of our own VmRSS to our own
 * resident pages, taken to the nearest power of two.
 */
export function pageSize(root: string): number {
  if (root !== '/') return 4096;
  const stat = readOnce('/', '/proc/self/stat');
  const status = readOnce('/', '/proc/self/status');
  const pages = stat ? rssPages(stat) : 0;
  const rss = status ? parseStatus(status).rss : 0;
  if (pages <= 0 || rss <= 0) return 4096;
  return 2 ** Math.round(Math.log2(rss / pages));
}

/** Base name of argv0 from /proc/PID/cmdline ('' for kernel threads and zombies). */
export function argv0Name(cmdline: string): string {
  const nul = cmdline.indexOf('\0');
  const argv0 = nul < 0 ? cmdline : cmdline.slice(0, nul);
  return argv0.slice(argv0.lastIndexOf('/') + 1);
}

interface Seen {
  ticks: number;
  starttime: number;
}

interface Candidate {
  pid: number;
  name: string;
  cpu: number;
  memory: number;
}

export interface Sweep {
  processes: Processes;
  watched: Record<string, number>;
}

export class ProcessReader {
  private prev = new Map<number, Seen>();
  private next = new Map<number, Seen>();
  private prevAt: number | null = null;
  private readonly argv0 = new Map<number, { starttime: number; name: string }>();
  private readonly users: UserNames;
  private readonly page: number;
  private watch: readonly string[] = [];
  private last: Sweep = { processes: { topByCpu: [], topByMemory: [], total: 0 }, watched: {} };
  private lastAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly root: string,
    private readonly now: () => number,
  ) {
    this.users = new UserNames(root, now);
    this.page = pageSize(root);
  }

  setWatch(names: readonly string[]): void {
    this.watch = names;
    this.lastAt = Number.NEGATIVE_INFINITY;
  }

  /** A fresh sweep when the last is SWEEP_EVERY_MS old (or `force`), else the last one. */
  async read(intervalMs: number, force = false): Promise<Sweep> {
    // A little slack so a 5 s interval sweeps on every sample despite timer jitter.
    if (!force && this.now() - this.lastAt < Math.max(0, SWEEP_EVERY_MS - intervalMs / 2)) return this.last;
    this.last = await this.sweep();
    this.lastAt = this.now();
    return this.last;
  }

  private async sweep(): Promise<Sweep> {
    const at = this.now();
    const seconds = this.prevAt === null ? 0 : (at - this.prevAt) / 1000;
    const uptimeTicks = Number(readOnce(this.root, '/proc/uptime')?.split(' ', 1)[0] ?? 0) * USER_HZ;
    let names: string[] = [];
    try {
      names = readdirSync(resolvePath(this.root, '/proc'));
    } catch {}
    const counts = new Map<string, number>(this.watch.map((n) => [n, 0]));
    const candidates: Candidate[] = [];
    this.next.clear();
    for (const entry of names) {
      const c0 = entry.charCodeAt(0);
      if (c0 < 48 || c0 > 57) continue;
      const pid = Number(entry);
      const text = readOnce(this.root, `/proc/${pid}/stat`);
      const stat = text === null ? null : parseProcStat(text);
      if (stat === null) continue;
      this.next.set(pid, { ticks: stat.ticks, starttime: stat.starttime });
      const before = this.prev.get(pid);
      // Over the sweep's interval; a process new since the last sweep (or the first sweep) over its lifetime.
      const ticks = before && before.starttime === stat.starttime ? stat.ticks - before.ticks : stat.ticks;
      const window = before && before.starttime === stat.starttime && seconds > 0 ? seconds * USER_HZ : uptimeTicks - stat.starttime;
      const cpu = window > 0 ? Math.round(Math.min(51_200, Math.max(0, (100 * ticks) / window)) * 10) / 10 : 0;
      candidates.push({ pid, name: stat.comm.slice(0, 256), cpu, memory: rssPages(text!) * this.page });
      if (counts.size && !isKernelThread(stat)) this.count(counts, pid, stat.comm, stat.starttime);
    }
    [this.prev, this.next] = [this.next, this.prev];
    this.prevAt = at;
    for (const pid of this.argv0.keys()) if (!this.prev.has(pid)) this.argv0.delete(pid);

    const topByCpu = candidates.filter((c) => c.cpu > 0).sort((a, b) => b.cpu - a.cpu || a.pid - b.pid).slice(0, TOP);
    const topByMemory = candidates.filter((c) => c.memory > 0).sort((a, b) => b.memory - a.memory || a.pid - b.pid).slice(0, TOP);
    const userOf = await this.users.lookup();
    const withUser = (c: Candidate): SampleProcess => {
      const status = readOnce(this.root, `/proc/${c.pid}/status`);
      const user = status === null ? '' : userOf(parseStatus(status).uid).slice(0, 256);
      return user ? { ...c, user } : { ...c };
    };
    return {
      processes: { topByCpu: topByCpu.map(withUser), topByMemory: topByMemory.map(withUser), total: candidates.length },
      watched: Object.fromEntries(counts),
    };
  }

  private count(counts: Map<string, number>, pid: number, comm: string, starttime: number): void {
    let argv0 = this.argv0.get(pid);
    if (argv0 === undefined || argv0.starttime !== starttime) {
      argv0 = { starttime, name: argv0Name(readOnce(this.root, `/proc/${pid}/cmdline`) ?? '') };
      this.argv0.set(pid, argv0);
    }
    const byComm = counts.get(comm);
    if (byComm !== undefined) counts.set(comm, byComm + 1);
    const byArgv0 = argv0.name !== comm ? counts.get(argv0.name) : undefined;
    if (byArgv0 !== undefined) counts.set(argv0.name, byArgv0 + 1);
  }
}
