// The sample's processes part and the watched process counts. A sweep reads every process's
// /proc/PID/stat once (comm, CPU ticks, start time and resident pages are all in it) and, for the
// few that make a top list, /proc/PID/status for the owner. It is the sampler's dearest part on a
// busy machine, so: each process's stat stays open while the process lives (one pread per sweep
// instead of open, read and close; a dead process's file answers ESRCH, a reused pid is opened
// afresh), it is parsed from the bytes without making a string of it, and at short intervals a
// sweep runs at most every SWEEP_EVERY_MS, the samples in between repeating the last lists (CPU %
// is then over the sweep's own interval, as `top -d 10` shows it). A change of the watched names
// sweeps at once. Watched names match a process's comm (the kernel's 15-byte name) or the base
// name of its argv0 (`exec -a name`, a name comm cuts short); argv0 is read once per process, and
// only while something is watched.
import { closeSync, openSync } from 'node:fs';
import type { MetricsSample, SampleProcess } from '../../shared/api/metrics.ts';
import { parseStatus, USER_HZ } from '../system/proc-pid.ts';
import { resolvePath } from '../system/proc.ts';
import { UserNames } from '../system/users.ts';
import { lastRead, listNames, readInto, readOnce } from './proc-file.ts';

export const SWEEP_EVERY_MS = 10_000;
/** Processes in each top list. */
export const TOP = 5;
/** Stat files kept open at most; past this many processes the rest are opened per sweep. */
export const MAX_OPEN_STATS = 512;
/** What is read of a command line: argv0 is a path, at most PATH_MAX (4096) bytes. */
const ARGV0_BYTES = 4096;
/** PF_KTHREAD (include/linux/sched.h): a kernel thread, which has no argv0 to match. */
const PF_KTHREAD = 0x00200000;

type Processes = MetricsSample['processes'];

/** What a sweep needs of /proc/PID/stat. */
export interface StatFields {
  comm: string;
  /** utime + stime, clock ticks. */
  ticks: number;
  starttime: number;
  rssPages: number;
  kernelThread: boolean;
}

/**
 * Parses /proc/PID/stat from bytes: `pid (comm) state ppid … flags(9) … utime(14) stime(15) …
 * starttime(22) vsize(23) rss(24) …`. comm runs to the LAST ')' (it may hold ") " itself).
 */
export function parseStatBytes(buf: Uint8Array, length: number): StatFields | null {
  let close = length - 1;
  while (close >= 0 && buf[close] !== 41) close--;
  let open = 0;
  while (open < close && buf[open] !== 40) open++;
  if (close <= open) return null;
  // Field 3 starts two bytes after ')'; walk the space-separated fields, keeping the numbers we need.
  let field = 3;
  let value = 0;
  let digits = 0;
  let flags = -1;
  let utime = -1;
  let stime = -1;
  let starttime = -1;
  let rss = -1;
  for (let i = close + 2; i <= length && field <= 24; i++) {
    const c = i < length ? buf[i]! : 32;
    if (c === 32 || c === 10) {
      if (digits > 0) {
        if (field === 9) flags = value;
        else if (field === 14) utime = value;
        else if (field === 15) stime = value;
        else if (field === 22) starttime = value;
        else if (field === 24) rss = value;
      }
      field++;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      digits++;
    }
  }
  if (utime < 0 || stime < 0 || starttime < 0 || rss < 0 || flags < 0) return null;
  return {
    comm: Buffer.from(buf.buffer, buf.byteOffset + open + 1, close - open - 1).toString('utf8'),
    ticks: utime + stime,
    starttime,
    rssPages: rss,
    kernelThread: Math.floor(flags / PF_KTHREAD) % 2 === 1,
  };
}

/**
 * The kernel's page size (4 KiB on most machines, 16 KiB on a Pi 5's kernel): what stat counts
 * resident memory in. Bun has no sysconf, so it is our own VmRSS over our own resident pages, to
 * the nearest power of two.
 */
export function pageSize(root: string): number {
  if (root !== '/') return 4096;
  const stat = readOnce('/', '/proc/self/stat');
  const status = readOnce('/', '/proc/self/status');
  const fields = stat === null ? null : parseStatBytes(Buffer.from(stat, 'latin1'), stat.length);
  const rss = status ? parseStatus(status).rss : 0;
  if (!fields || fields.rssPages <= 0 || rss <= 0) return 4096;
  return 2 ** Math.round(Math.log2(rss / fields.rssPages));
}

/** Base name of argv0 from /proc/PID/cmdline ('' for kernel threads and zombies). */
export function argv0Name(cmdline: string): string {
  const nul = cmdline.indexOf('\0');
  const argv0 = nul < 0 ? cmdline : cmdline.slice(0, nul);
  return argv0.slice(argv0.lastIndexOf('/') + 1);
}

interface Candidate {
  pid: number;
  name: string;
  cpu: number;
  memory: number;
}

/** Puts c into a list kept sorted by `key`, descending, at most TOP long. */
function insertTop(list: Candidate[], c: Candidate, key: 'cpu' | 'memory'): void {
  if (c[key] <= 0 || (list.length === TOP && c[key] <= list[TOP - 1]![key])) return;
  let i = list.length;
  while (i > 0 && list[i - 1]![key] < c[key]) i--;
  list.splice(i, 0, c);
  if (list.length > TOP) list.pop();
}

export interface Sweep {
  processes: Processes;
  watched: Record<string, number>;
}

export class ProcessReader {
  private prevTicks = new Map<number, number>();
  private prevStart = new Map<number, number>();
  private nextTicks = new Map<number, number>();
  private nextStart = new Map<number, number>();
  private prevAt: number | null = null;
  private readonly fds = new Map<number, number>();
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
    // A little slack so an interval of SWEEP_EVERY_MS sweeps on every sample despite timer jitter.
    if (!force && this.now() - this.lastAt < Math.max(0, SWEEP_EVERY_MS - intervalMs / 2)) return this.last;
    this.last = await this.sweep();
    this.lastAt = this.now();
    return this.last;
  }

  close(): void {
    for (const fd of this.fds.values()) this.closeFd(fd);
    this.fds.clear();
  }

  /** One process's stat into the shared buffer; its length, or -1 if it is gone. */
  private readStat(pid: number): number {
    const kept = this.fds.get(pid);
    if (kept !== undefined) {
      try {
        return readInto(kept);
      } catch {
        // Exited (ESRCH), or the pid is another process's now: open it afresh below.
        this.closeFd(kept);
        this.fds.delete(pid);
      }
    }
    let fd: number;
    try {
      fd = openSync(resolvePath(this.root, `/proc/${pid}/stat`), 'r');
    } catch {
      return -1;
    }
    try {
      const n = readInto(fd);
      if (this.fds.size < MAX_OPEN_STATS) this.fds.set(pid, fd);
      else this.closeFd(fd);
      return n;
    } catch {
      this.closeFd(fd);
      return -1;
    }
  }

  private closeFd(fd: number): void {
    try {
      closeSync(fd);
    } catch {}
  }

  private async sweep(): Promise<Sweep> {
    const at = this.now();
    const seconds = this.prevAt === null ? 0 : (at - this.prevAt) / 1000;
    const uptimeTicks = Number(readOnce(this.root, '/proc/uptime')?.split(' ', 1)[0] ?? 0) * USER_HZ;
    const names = listNames(this.root, '/proc');
    const counts = new Map<string, number>(this.watch.map((n) => [n, 0]));
    const byCpu: Candidate[] = [];
    const byMemory: Candidate[] = [];
    let total = 0;
    this.nextTicks.clear();
    this.nextStart.clear();
    for (const entry of names) {
      const c0 = entry.charCodeAt(0);
      if (c0 < 48 || c0 > 57) continue;
      const pid = Number(entry);
      const length = this.readStat(pid);
      const stat = length < 0 ? null : parseStatBytes(lastRead(), length);
      if (stat === null) continue;
      total++;
      this.nextTicks.set(pid, stat.ticks);
      this.nextStart.set(pid, stat.starttime);
      // Over the sweep's interval; a process new since the last sweep (or on the first) over its lifetime.
      const known = this.prevStart.get(pid) === stat.starttime && seconds > 0;
      const ticks = known ? stat.ticks - this.prevTicks.get(pid)! : stat.ticks;
      const window = known ? seconds * USER_HZ : uptimeTicks - stat.starttime;
      const cpu = window > 0 ? Math.round(Math.min(51_200, Math.max(0, (100 * ticks) / window)) * 10) / 10 : 0;
      const candidate = { pid, name: stat.comm.slice(0, 256), cpu, memory: stat.rssPages * this.page };
      insertTop(byCpu, candidate, 'cpu');
      insertTop(byMemory, candidate, 'memory');
      if (counts.size && !stat.kernelThread) this.count(counts, pid, stat.comm, stat.starttime);
    }
    [this.prevTicks, this.nextTicks] = [this.nextTicks, this.prevTicks];
    [this.prevStart, this.nextStart] = [this.nextStart, this.prevStart];
    this.prevAt = at;
    for (const [pid, fd] of this.fds) {
      if (this.prevStart.has(pid)) continue;
      this.closeFd(fd);
      this.fds.delete(pid);
    }
    for (const pid of this.argv0.keys()) if (!this.prevStart.has(pid)) this.argv0.delete(pid);

    const userOf = await this.users.lookup();
    const withUser = (c: Candidate): SampleProcess => {
      const status = readOnce(this.root, `/proc/${c.pid}/status`);
      const user = status === null ? '' : userOf(parseStatus(status).uid).slice(0, 256);
      return user ? { ...c, user } : { ...c };
    };
    return { processes: { topByCpu: byCpu.map(withUser), topByMemory: byMemory.map(withUser), total }, watched: Object.fromEntries(counts) };
  }

  private count(counts: Map<string, number>, pid: number, comm: string, starttime: number): void {
    let argv0 = this.argv0.get(pid);
    if (argv0 === undefined || argv0.starttime !== starttime) {
      argv0 = { starttime, name: argv0Name(readOnce(this.root, `/proc/${pid}/cmdline`, ARGV0_BYTES) ?? '') };
      this.argv0.set(pid, argv0);
    }
    const byComm = counts.get(comm);
    if (byComm !== undefined) counts.set(comm, byComm + 1);
    const byArgv0 = argv0.name !== comm ? counts.get(argv0.name) : undefined;
    if (byArgv0 !== undefined) counts.set(argv0.name, byArgv0 + 1);
  }
}
