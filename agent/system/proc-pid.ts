// Parses one process's /proc/PID files. Any of them can disappear between listing /proc and
// reading them (the process exited), so every reader returns null instead of throwing.
import { listDir, parseColonFields, readText } from './proc.ts';

/** Clock ticks per second of /proc's times (sysconf(_SC_CLK_TCK)): 100 on every Linux the agent runs on. */
export const USER_HZ = 100;

export interface ProcStat {
  pid: number;
  /** The kernel's comm: the executable name, at most 15 bytes, may contain spaces and parentheses. */
  comm: string;
  /** One-letter state code: R, S, D, Z, T, t, X, I, … */
  state: string;
  ppid: number;
  /** utime + stime, in clock ticks (USER_HZ per second). */
  ticks: number;
  /** Clock ticks after boot at which the process started; tells a reused pid from the old process. */
  starttime: number;
  /** The kernel's PF_* flags word (PF_KTHREAD marks a kernel thread). */
  flags: number;
  /** Threads in the process (num_threads). */
  threads: number;
}

/** PF_KTHREAD in include/linux/sched.h: the process is a kernel thread (no user space to signal). */
const PF_KTHREAD = 0x00200000;

export function isKernelThread(stat: ProcStat): boolean {
  // The flags word can exceed 2^31, where JavaScript's & would turn it negative.
  return Math.floor(stat.flags / PF_KTHREAD) % 2 === 1;
}

/**
 * Parses /proc/PID/stat: `pid (comm) state ppid … utime stime … starttime …`. comm may itself hold
 * ") " and spaces, so it runs from the first '(' to the LAST ')' and the numbered fields follow.
 */
export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 1).trim().split(/\s+/);
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  const state = rest[0];
  const ppid = Number(rest[1]);
  const flags = Number(rest[6]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  const threads = Number(rest[17]);
  const starttime = Number(rest[19]);
  const numbers = [pid, ppid, flags, utime, stime, threads, starttime];
  if (!state || !numbers.every((n) => Number.isSafeInteger(n) && n >= 0) || pid <= 0) return null;
  return { pid, comm: text.slice(open + 1, close), state, ppid, ticks: utime + stime, starttime, flags, threads };
}

export async function readProcStat(root: string, pid: number): Promise<ProcStat | null> {
  const text = await readText(root, `/proc/${pid}/stat`);
  return text === null ? null : parseProcStat(text);
}

export async function listPids(root: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await listDir(root, '/proc')) {
    if (/^\d+$/.test(name)) pids.push(Number(name));
  }
  return pids.sort((a, b) => a - b);
}

export interface ProcDetails extends ProcStat {
  /**
   * The thread group (process) id. /proc/TID answers for every thread though only processes are
   * listed, so a tgid other than pid says the id is a thread's; null if status had none.
   */
  tgid: number | null;
  /** Real uid, as psutil's username() uses; null if status had none. */
  uid: number | null;
  /** Resident set size in bytes (VmRSS; kernel threads have none and read as 0). */
  rss: number;
  /** Arguments joined by spaces; empty for kernel threads and zombies. */
  cmdline: string;
}

export function parseStatus(text: string): { tgid: number | null; uid: number | null; rss: number } {
  const fields = parseColonFields(text);
  const tgid = Number(fields.get('Tgid') ?? Number.NaN);
  const uid = Number(fields.get('Uid')?.split(/\s+/)[0] ?? Number.NaN);
  const rssKib = Number(fields.get('VmRSS')?.replace(/\s*kB$/, '') ?? 0);
  return {
    tgid: Number.isSafeInteger(tgid) && tgid > 0 ? tgid : null,
    uid: Number.isSafeInteger(uid) && uid >= 0 ? uid : null,
    rss: Number.isSafeInteger(rssKib) && rssKib > 0 ? rssKib * 1024 : 0,
  };
}

/**
 * Longest command line reported, in characters. Any local user can start a process with
 * megabytes of arguments (ARG_MAX is 2 MiB and more); uncut, one such process would swell every
 * process list and process_get past what the device socket carries in one message.
 */
export const MAX_CMDLINE = 4096;

/**
 * /proc/PID/cmdline is NUL-separated and NUL-terminated; programs that set their title (sshd)
 * pad it with more NULs, which the trim removes along with the terminator. Cut at MAX_CMDLINE,
 * ending in "…".
 */
export function parseCmdline(text: string): string {
  const line = text.replace(/\0/g, ' ').trim();
  return line.length > MAX_CMDLINE ? `${line.slice(0, MAX_CMDLINE - 1)}…` : line;
}

/** stat, status and cmdline of one process; null if the process is gone (or unreadable). */
export async function readProcDetails(root: string, pid: number): Promise<ProcDetails | null> {
  const [statText, statusText, cmdlineText] = await Promise.all([
    readText(root, `/proc/${pid}/stat`),
    readText(root, `/proc/${pid}/status`),
    readText(root, `/proc/${pid}/cmdline`),
  ]);
  if (statText === null || statusText === null || cmdlineText === null) return null;
  const stat = parseProcStat(statText);
  if (stat === null) return null;
  return { ...stat, ...parseStatus(statusText), cmdline: parseCmdline(cmdlineText) };
}
