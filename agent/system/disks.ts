// Filesystem sizes for device_info: every real mounted filesystem, and the root one in PiTunnel's
// disk_usage tuple. Figures are computed the way `df` computes them, so the numbers a user checks
// over SSH match the dashboard.
import type { Disk } from '../../shared/api/device-info.ts';
import { readText, round } from './proc.ts';

/** The fields of statfs(2) we use; Node's and Bun's statfs results fit it. */
export interface StatfsResult {
  bsize: number;
  /** Fragment size, the unit of the block counts; Bun reports it, Node's typings omit it. */
  frsize?: number;
  blocks: number;
  bfree: number;
  bavail: number;
}

/** Called with the mount point as /proc/mounts names it. */
export type StatfsFn = (mount: string) => Promise<StatfsResult>;

export interface MountEntry {
  device: string;
  mount: string;
  fstype: string;
}

/** Kernel and memory filesystems: nothing a user stores data on. */
const VIRTUAL_FS = new Set([
  'proc', 'sysfs', 'tmpfs', 'devtmpfs', 'devpts', 'ramfs', 'overlay', 'squashfs', 'cgroup',
  'cgroup2', 'securityfs', 'debugfs', 'tracefs', 'configfs', 'pstore', 'bpf', 'mqueue',
  'hugetlbfs', 'autofs', 'fusectl', 'binfmt_misc', 'efivarfs', 'rpc_pipefs', 'nsfs', 'selinuxfs',
  'fuse.lxcfs', 'fuse.gvfsd-fuse', 'fuse.portal',
]);

/**
 * Network filesystems are left out on purpose: statfs on a dead NFS or SMB server can block for
 * minutes, and device_info must not.
 */
const NETWORK_FS = new Set(['nfs', 'nfs4', 'cifs', 'smb3', 'smbfs', 'sshfs', 'fuse.sshfs', '9p', 'ceph', 'glusterfs']);

/** /proc/mounts escapes space, tab, newline and backslash in paths as octal (\040 …). */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function parseMounts(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const [device, mount, fstype] = line.trim().split(/\s+/);
    if (!device || !mount || !fstype) continue;
    entries.push({ device: unescapeMountField(device), mount: unescapeMountField(mount), fstype });
  }
  return entries;
}

/**
 * Block-device-backed (or ZFS) filesystems, one per device: a device mounted several times (bind
 * mounts, btrfs subvolumes) is reported once, at its shortest mount path.
 */
export function realFilesystems(entries: readonly MountEntry[]): MountEntry[] {
  const byDevice = new Map<string, MountEntry>();
  for (const entry of entries) {
    if (VIRTUAL_FS.has(entry.fstype) || NETWORK_FS.has(entry.fstype)) continue;
    if (!entry.device.startsWith('/') && entry.fstype !== 'zfs') continue;
    const seen = byDevice.get(entry.device);
    if (seen === undefined || entry.mount.length < seen.mount.length) byDevice.set(entry.device, entry);
  }
  return [...byDevice.values()];
}

/** df's arithmetic: used = total - free blocks; available excludes blocks reserved for root. */
export function diskFromStatfs(entry: MountEntry, st: StatfsResult): Disk {
  const unit = st.frsize || st.bsize;
  const total = st.blocks * unit;
  const available = st.bavail * unit;
  return {
    mount: entry.mount,
    device: entry.device,
    fstype: entry.fstype,
    total,
    used: Math.max(0, total - st.bfree * unit),
    available,
    percent_free: total > 0 ? round((available / total) * 100, 1) : 0,
  };
}

/** statfs with a deadline: a wedged filesystem costs one missing disk, not a hung RPC. */
async function statfsWithin(statfs: StatfsFn, mount: string, timeoutMs: number): Promise<StatfsResult | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
  });
  try {
    return await Promise.race([statfs(mount).catch(() => null), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function readDisks(root: string, statfs: StatfsFn, timeoutMs = 1_000): Promise<Disk[]> {
  const entries = realFilesystems(parseMounts((await readText(root, '/proc/mounts')) ?? ''));
  const disks = await Promise.all(
    entries.map(async (entry) => {
      const st = await statfsWithin(statfs, entry.mount, timeoutMs);
      return st === null || st.blocks <= 0 ? null : diskFromStatfs(entry, st);
    }),
  );
  return disks.filter((d): d is Disk => d !== null);
}

/**
 * psutil's disk_usage().percent, which PiTunnel devices send: used ÷ (used + available), so the
 * blocks reserved for root count as neither, as in df's Use%.
 */
export function psutilPercent(used: number, available: number): number {
  return used + available > 0 ? round((used / (used + available)) * 100, 1) : 0;
}

/**
 * PiTunnel's disk_usage: [total, used, available, percent used] of the root filesystem. The seed's
 * table calls the fourth "Percentage Free", but its example ([15570452480, 9602961408,
 * 5270650880, 64.6]) and real PiTunnel devices send psutil's percent used; clients display that.
 * Read directly when '/' is not among the disks (e.g. an overlay root in a container).
 */
export async function rootDiskUsage(
  disks: readonly Disk[],
  statfs: StatfsFn,
  timeoutMs = 1_000,
): Promise<[number, number, number, number]> {
  let root = disks.find((d) => d.mount === '/');
  if (root === undefined) {
    const st = await statfsWithin(statfs, '/', timeoutMs);
    if (st !== null) root = diskFromStatfs({ device: '', mount: '/', fstype: '' }, st);
  }
  return root ? [root.total, root.used, root.available, psutilPercent(root.used, root.available)] : [0, 0, 0, 0];
}
