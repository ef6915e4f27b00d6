// Reading processes from /proc for the benchmarks: memory, CPU time, and finding children by name.
import { readFileSync, readdirSync } from 'node:fs';

/** VmRSS, RssAnon and RssFile of a process in MiB; zeros once it is gone. */
export function rss(pid: number): { total: number; anon: number; file: number } {
  let status = '';
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    // gone
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) / 1024;
  return { total: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
}

function stat(pid: number): { comm: string; fields: string[] } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return { comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')), fields: s.slice(s.lastIndexOf(')') + 2).split(' ') };
  } catch {
    return null;
  }
}

/** User + system CPU time of a process, in clock ticks (1/100 s here). */
export function cpuTicks(pid: number): number {
  const f = stat(pid)?.fields;
  return f ? Number(f[11]) + Number(f[12]) : 0;
}

/** Processes with this command name, optionally only the children of `ppid`. */
export function processesNamed(name: string, ppid?: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      const s = stat(pid);
      return s?.comm === name && (ppid === undefined || Number(s.fields[1]) === ppid);
    });
}
