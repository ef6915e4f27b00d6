import { afterEach, describe, expect, test } from 'bun:test';
import {
  diskFromStatfs,
  parseMounts,
  readDisks,
  realFilesystems,
  rootDiskUsage,
} from '../../../agent/system/disks.ts';
import { readText } from '../../../agent/system/proc.ts';
import {
  fixedStatfs,
  makeRoot,
  PI4,
  PI4_STATFS,
  PI_ZERO_2W,
  removeTempRoots,
  ZERO_STATFS,
} from './helpers.ts';

afterEach(removeTempRoots);

describe('mount table', () => {
  test('Pi 4: real filesystems only, one per device, escapes decoded', async () => {
    const mounts = realFilesystems(parseMounts((await readText(PI4, '/proc/mounts'))!));
    // Skipped: proc, sysfs, tmpfs, devtmpfs, devpts, cgroup2, autofs, debugfs …, the docker
    // overlay, the snap squashfs, the NFS share, and the /srv/backup bind mount of the root device.
    expect(mounts).toEqual([
      { device: '/dev/mmcblk0p2', mount: '/', fstype: 'ext4' },
      { device: '/dev/mmcblk0p1', mount: '/boot/firmware', fstype: 'vfat' },
      { device: '/dev/sda1', mount: '/media/pi/My Drive', fstype: 'exfat' },
    ]);
  });

  test('Pi Zero 2 W: /dev/root and /boot', async () => {
    const mounts = realFilesystems(parseMounts((await readText(PI_ZERO_2W, '/proc/mounts'))!));
    expect(mounts).toEqual([
      { device: '/dev/root', mount: '/', fstype: 'ext4' },
      { device: '/dev/mmcblk0p1', mount: '/boot', fstype: 'vfat' },
    ]);
  });

  test('a device mounted twice is reported at its shortest mount path', () => {
    const mounts = realFilesystems(
      parseMounts('/dev/sda2 /var/lib/docker btrfs rw 0 0\n/dev/sda2 / btrfs rw 0 0\n/dev/sda2 /home btrfs rw 0 0\n'),
    );
    expect(mounts).toEqual([{ device: '/dev/sda2', mount: '/', fstype: 'btrfs' }]);
  });

  test('ZFS datasets count although their device is not a path; fuse.sshfs does not', () => {
    const mounts = realFilesystems(
      parseMounts('tank/data /data zfs rw 0 0\nuser@host:/ /mnt/remote fuse.sshfs rw 0 0\n'),
    );
    expect(mounts).toEqual([{ device: 'tank/data', mount: '/data', fstype: 'zfs' }]);
  });

  test('garbage lines are skipped', () => {
    expect(parseMounts('\nonly-one-field\ntwo fields\n/dev/sda1 /mnt ext4 rw 0 0\n')).toEqual([
      { device: '/dev/sda1', mount: '/mnt', fstype: 'ext4' },
    ]);
  });
});

describe('sizes, computed like df', () => {
  test('used = total - free blocks, available = bavail, percent_free of total', () => {
    const disk = diskFromStatfs({ device: '/dev/mmcblk0p2', mount: '/', fstype: 'ext4' }, PI4_STATFS['/']!);
    expect(disk).toEqual({
      mount: '/',
      device: '/dev/mmcblk0p2',
      fstype: 'ext4',
      total: 31180021760,
      used: 10208366592,
      available: 19382603776,
      percent_free: 62.2,
    });
  });

  test('block counts are in fragment-size units when frsize is given', () => {
    const disk = diskFromStatfs(
      { device: '/dev/sdb1', mount: '/mnt', fstype: 'xfs' },
      { bsize: 4096, frsize: 1024, blocks: 1000, bfree: 400, bavail: 300 },
    );
    expect([disk.total, disk.used, disk.available, disk.percent_free]).toEqual([1024000, 614400, 307200, 30]);
  });

  test('Pi 4: every real filesystem with its statfs figures', async () => {
    const statfs = fixedStatfs(PI4_STATFS);
    expect(await readDisks(PI4, statfs)).toEqual([
      { mount: '/', device: '/dev/mmcblk0p2', fstype: 'ext4', total: 31180021760, used: 10208366592, available: 19382603776, percent_free: 62.2 },
      { mount: '/boot/firmware', device: '/dev/mmcblk0p1', fstype: 'vfat', total: 536870912, used: 42887168, available: 493983744, percent_free: 92 },
      { mount: '/media/pi/My Drive', device: '/dev/sda1', fstype: 'exfat', total: 32006340608, used: 5791809536, available: 26214531072, percent_free: 81.9 },
    ]);
    // The NFS share is never statfs'd: a dead server would hang the call.
    expect(statfs.calls.sort()).toEqual(['/', '/boot/firmware', '/media/pi/My Drive']);
  });

  test('Pi 4 disk_usage is the root filesystem as [total, used, available, percent used]', async () => {
    const statfs = fixedStatfs(PI4_STATFS);
    expect(await rootDiskUsage(await readDisks(PI4, statfs), statfs)).toEqual([
      31180021760, 10208366592, 19382603776, 34.5,
    ]);
  });

  test("disk_usage[3] is psutil's percent, used ÷ (used + available), as in the PiTunnel seed's example", async () => {
    // The seed's example [15570452480, 9602961408, 5270650880, 64.6] in 4 KiB blocks; its table's
    // "Percentage Free" would be 33.9.
    const statfs = fixedStatfs({ '/': { bsize: 4096, blocks: 3801380, bfree: 3801380 - 2344473, bavail: 1286780 } });
    expect(await rootDiskUsage([], statfs)).toEqual([15570452480, 9602961408, 5270650880, 64.6]);
  });

  test('Pi Zero 2 W', async () => {
    const statfs = fixedStatfs(ZERO_STATFS);
    const disks = await readDisks(PI_ZERO_2W, statfs);
    expect(disks.map((d) => [d.mount, d.total, d.used, d.available, d.percent_free])).toEqual([
      ['/', 15424995328, 3587051520, 11048181760, 71.6],
      ['/boot', 268435456, 46221312, 222214144, 82.8],
    ]);
    expect(await rootDiskUsage(disks, statfs)).toEqual([15424995328, 3587051520, 11048181760, 24.5]);
  });
});

describe('failures', () => {
  test('a mount whose statfs fails, or that reports 0 blocks, is left out', async () => {
    const statfs = fixedStatfs({ '/': PI4_STATFS['/']!, '/boot/firmware': { bsize: 512, blocks: 0, bfree: 0, bavail: 0 } });
    const disks = await readDisks(PI4, statfs);
    expect(disks.map((d) => d.mount)).toEqual(['/']);
  });

  test('a statfs that hangs is abandoned after the timeout', async () => {
    const statfs = (mount: string) =>
      mount === '/' ? Promise.resolve(PI4_STATFS['/']!) : new Promise<never>(() => {});
    const started = performance.now();
    const disks = await readDisks(PI4, statfs, 50);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(disks.map((d) => d.mount)).toEqual(['/']);
  });

  test('root not among the disks (overlay root in a container): statfs("/") directly', async () => {
    const root = makeRoot({ 'proc/mounts': 'overlay / overlay rw 0 0\n' });
    const statfs = fixedStatfs({ '/': { bsize: 4096, blocks: 100, bfree: 40, bavail: 30 } });
    const disks = await readDisks(root, statfs);
    expect(disks).toEqual([]);
    expect(await rootDiskUsage(disks, statfs)).toEqual([409600, 245760, 122880, 66.7]);
  });

  test('no mounts and no statfs: zeros', async () => {
    const statfs = fixedStatfs({});
    const disks = await readDisks(makeRoot({}), statfs);
    expect(disks).toEqual([]);
    expect(await rootDiskUsage(disks, statfs)).toEqual([0, 0, 0, 0]);
  });
});
