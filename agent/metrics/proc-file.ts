// Cheap repeated reads of small kernel files for the sampler, which reads the same dozen /proc and
// /sys files every second: a file read with readFile costs open + fstat + read + close and a fresh
// buffer each time; a ProcFile is opened once and re-read with one pread(2) at offset 0 into a
// buffer shared by every reader (the kernel regenerates /proc and sysfs text on a read at 0). One
// process's files (/proc/PID/stat) come and go with the process and are read with readOnce.
// Nothing here throws: a missing or vanished file reads as null, and a ProcFile that failed is
// tried again after RETRY_MS (a hwmon driver reloaded), not on every sample: a file this machine
// does not have (cpufreq in a VM) then costs no syscall and no exception per sample.
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { resolvePath } from '../system/proc.ts';

/** Grows to the largest file read (a big machine's /proc/stat is tens of KiB) and stays. */
let shared = Buffer.allocUnsafe(16 * 1024);

/** Reads fd from offset 0 (at most `max` bytes) into the shared buffer; its length. Throws what read(2) throws. */
export function readInto(fd: number, max = Number.POSITIVE_INFINITY): number {
  let length = 0;
  for (;;) {
    const n = readSync(fd, shared, length, Math.min(shared.length, max) - length, length);
    if (n === 0) break;
    length += n;
    if (length >= max) break;
    if (length === shared.length) {
      const bigger = Buffer.allocUnsafe(shared.length * 2);
      shared.copy(bigger, 0, 0, length);
      shared = bigger;
    }
  }
  return length;
}

/** The shared buffer as the last readInto left it (valid until the next read). */
export function lastRead(): Buffer {
  return shared;
}

/**
 * latin1: /proc text is ASCII, and names are passed on as the bytes the kernel has. With `until`,
 * only the text before its first occurrence (the parser needs no more: /proc/stat's cpu lines come
 * before its long interrupt counters).
 */
function readAll(fd: number, until?: string, max?: number): string {
  const length = readInto(fd, max);
  const end = until === undefined ? -1 : shared.indexOf(until, 0, 'latin1');
  return shared.toString('latin1', 0, end >= 0 && end < length ? end : length);
}

export const RETRY_MS = 60_000;

export class ProcFile {
  private fd: number | null = null;
  private retryAt = Number.NEGATIVE_INFINITY;
  readonly path: string;

  constructor(root: string, path: string) {
    this.path = resolvePath(root, path);
  }

  read(until?: string): string | null {
    if (this.fd === null && performance.now() < this.retryAt) return null;
    try {
      this.fd ??= openSync(this.path, 'r');
      return readAll(this.fd, until);
    } catch {
      this.close();
      this.retryAt = performance.now() + RETRY_MS;
      return null;
    }
  }

  close(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {}
    this.fd = null;
  }
}

/**
 * One read of a file that may vanish at any moment (a process's): open, read, close. `max` bounds
 * what is read of a file another user controls (a command line can be megabytes long; the shared
 * buffer must not grow to it).
 */
export function readOnce(root: string, path: string, max?: number): string | null {
  let fd: number | null = null;
  try {
    fd = openSync(resolvePath(root, path), 'r');
    return readAll(fd, undefined, max);
  } catch {
    return null;
  } finally {
    if (fd !== null) {
      try {
        closeSync(fd);
      } catch {}
    }
  }
}

/** A directory's names, [] if it cannot be listed. */
export function listNames(root: string, dir: string): string[] {
  try {
    return readdirSync(resolvePath(root, dir));
  } catch {
    return [];
  }
}
