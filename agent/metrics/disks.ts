// The sample's disk part. Mounts are the system reader's real filesystems (agent/system/disks.ts:
// /proc/mounts without pseudo and network filesystems, one per device, statfs with a deadline,
// df's arithmetic), read every MOUNTS_EVERY_MS: a filesystem's size moves slowly, and statfs on a
// sick disk must not hold up a sample. I/O is /proc/diskstats on every sample (one pread): whole
// disks only (a partition's bytes are already its disk's; loop, ram and zram devices, and the
// device-mapper and md devices stacked on real disks, would count the same bytes twice), bytes =
// sectors × 512 whatever the disk's sector size, as the kernel counts them, and rates since the
// previous sample.
import type { MetricsSample } from '../../shared/api/metrics.ts';
import { SAMPLE_LIMITS } from '../../shared/api/metrics.ts';
import { readDisks, type StatfsFn } from '../system/disks.ts';
import { Periodic } from './periodic.ts';
import { listNames, ProcFile } from './proc-file.ts';

export const MOUNTS_EVERY_MS = 10_000;
/** How often the list of whole disks (/sys/block) is read again: disks are plugged rarely. */
export const BLOCK_LIST_EVERY_MS = 60_000;

type Disk = MetricsSample['disk'];
export interface DiskCounters {
  device: string;
  readBytes: number;
  writeBytes: number;
}

const STACKED_OR_VIRTUAL = /^(loop|ram|zram|dm-|md|sr|fd|nbd)/;
/** Whole disks by name, where /sys/block cannot be listed (a snapshot root): sda, vdb, xvda, hda, nvme0n1, mmcblk0. */
const WHOLE_DISK_NAME = /^(?:[shv]d[a-z]+|xvd[a-z]+|nvme\d+n\d+|mmcblk\d+)$/;

/** /proc/diskstats: `major minor name reads merged sectors_read ms writes merged sectors_written …`. */
export function parseDiskstats(text: string, isWhole: (name: string) => boolean): DiskCounters[] {
  const out: DiskCounters[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    const name = f[2];
    if (f.length < 10 || !name || !isWhole(name)) continue;
    const read = Number(f[5]);
    const written = Number(f[9]);
    if (!Number.isSafeInteger(read) || !Number.isSafeInteger(written) || read < 0 || written < 0) continue;
    out.push({ device: name, readBytes: read * 512, writeBytes: written * 512 });
  }
  return out;
}

/** A counter's rate in bytes/s; a counter that went back (a disk replugged, a wrap) reads as 0. */
export function rate(prev: number | undefined, next: number, seconds: number): number | undefined {
  if (prev === undefined || seconds <= 0) return undefined;
  return next >= prev ? Math.round((next - prev) / seconds) : 0;
}

export class DiskReader {
  private readonly diskstats: ProcFile;
  private readonly mounts: Periodic<Disk['mounts']>;
  private prev = new Map<string, DiskCounters>();
  private prevAt: number | null = null;
  private whole: Set<string> | null = null;
  private wholeAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly root: string,
    statfs: StatfsFn,
    private readonly now: () => number,
  ) {
    this.diskstats = new ProcFile(root, '/proc/diskstats');
    this.mounts = new Periodic(
      async () =>
        (await readDisks(root, statfs)).slice(0, SAMPLE_LIMITS.mounts).map((d) => ({
          device: d.device.slice(0, 256),
          mountpoint: d.mount.slice(0, 256),
          fstype: d.fstype.slice(0, 64),
          total: d.total,
          used: d.used,
          free: d.available,
        })),
      MOUNTS_EVERY_MS,
      now,
      [],
    );
  }

  async read(): Promise<Disk> {
    const at = this.now();
    const seconds = this.prevAt === null ? 0 : (at - this.prevAt) / 1000;
    const counters = parseDiskstats(this.diskstats.read() ?? '', (name) => this.isWhole(name)).slice(0, SAMPLE_LIMITS.disks);
    const io: Disk['io'] = [];
    const next = new Map<string, DiskCounters>();
    for (const c of counters) {
      const before = this.prev.get(c.device);
      const readRate = rate(before?.readBytes, c.readBytes, seconds);
      const writeRate = rate(before?.writeBytes, c.writeBytes, seconds);
      io.push(readRate === undefined || writeRate === undefined ? { ...c } : { ...c, readRate, writeRate });
      next.set(c.device, c);
    }
    this.prev = next;
    this.prevAt = at;
    return { mounts: await this.mounts.get(), io };
  }

  close(): void {
    this.diskstats.close();
  }

  private isWhole(name: string): boolean {
    if (STACKED_OR_VIRTUAL.test(name)) return false;
    if (this.now() - this.wholeAt >= BLOCK_LIST_EVERY_MS) {
      this.wholeAt = this.now();
      const names = listNames(this.root, '/sys/block');
      this.whole = names.length ? new Set(names) : null;
    }
    return this.whole ? this.whole.has(name) : WHOLE_DISK_NAME.test(name);
  }
}
