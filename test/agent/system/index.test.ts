import { afterEach, describe, expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DeviceFactsSchema,
  DeviceInfoSchema,
  ProcessListSchema,
} from '../../../shared/api/device-info.ts';
import { createSystemReader } from '../../../agent/system/reader.ts';
import {
  bumpCpu,
  copyFixture,
  fakeVcgencmd,
  fixedStatfs,
  makeRoot,
  manualClock,
  PI4,
  PI4_STATFS,
  PI_ZERO_2W,
  removeTempRoots,
  ZERO_STATFS,
} from './helpers.ts';

afterEach(removeTempRoots);

describe('createSystemReader on the Pi 4 fixture', () => {
  const reader = () =>
    createSystemReader({
      root: PI4,
      selfPid: 800,
      arch: 'arm64',
      statfs: fixedStatfs(PI4_STATFS),
      runCommand: fakeVcgencmd("temp=55.3'C\n"),
      sleep: async () => {},
    });

  test('facts', async () => {
    const facts = await reader().facts();
    expect(facts).toEqual({
      hostname: 'pi4-lab',
      serial: '10000000389253E6',
      hardware: 'Pi4 Model B',
      os: 'Linux',
      os_version: 'Debian GNU/Linux 12 (bookworm)',
      architecture: 'aarch64',
      mac_address: 'DCA6321A2B3C',
      kernel: '6.6.51+rpt-rpi-v8',
    });
    expect(DeviceFactsSchema.parse(facts)).toEqual(facts);
  });

  test('deviceInfo', async () => {
    const info = await reader().deviceInfo();
    expect(info).toEqual({
      hostname: 'pi4-lab',
      serial: '10000000389253E6',
      hardware: 'Pi4 Model B',
      os: 'Linux',
      os_version: 'Debian GNU/Linux 12 (bookworm)',
      architecture: 'aarch64',
      mac_address: 'DCA6321A2B3C',
      kernel: '6.6.51+rpt-rpi-v8',
      uptime: 186432.57,
      cpu: { usage_percent: 0.4, cores: 4, load_average: [0.42, 0.31, 0.27] },
      memory: {
        total: 3977551872,
        available: 3423268864,
        used: 554283008,
        used_percent: 13.9,
        swap_total: 104853504,
        swap_used: 4194304,
      },
      disk_usage: [31180021760, 10208366592, 19382603776, 34.5],
      disks: [
        { mount: '/', device: '/dev/mmcblk0p2', fstype: 'ext4', total: 31180021760, used: 10208366592, available: 19382603776, percent_free: 62.2 },
        { mount: '/boot/firmware', device: '/dev/mmcblk0p1', fstype: 'vfat', total: 536870912, used: 42887168, available: 493983744, percent_free: 92 },
        { mount: '/media/pi/My Drive', device: '/dev/sda1', fstype: 'exfat', total: 32006340608, used: 5791809536, available: 26214531072, percent_free: 81.9 },
      ],
      cpu_temp: 54.768,
      gpu_temp: 55.3,
    });
    expect(DeviceInfoSchema.parse(info)).toEqual(info);
  });

  test('processList leaves out the agent tree (800 → 812 → 813)', async () => {
    const list = await reader().processList();
    expect(ProcessListSchema.parse(list)).toEqual(list);
    expect(list.processes.map((p) => p.pid)).toEqual([1, 2, 47, 412, 640, 718, 725, 901, 950, 960, 990]);
  });
});

describe('createSystemReader on the Pi Zero 2 W fixture', () => {
  test('deviceInfo: hardware decoded from the revision, 32-bit arch, wlan0 MAC', async () => {
    const reader = createSystemReader({
      root: PI_ZERO_2W,
      arch: 'arm',
      statfs: fixedStatfs(ZERO_STATFS),
      runCommand: fakeVcgencmd("temp=47.8'C\n"),
    });
    const info = DeviceInfoSchema.parse(await reader.deviceInfo());
    expect(info).toEqual({
      hostname: 'zero2w',
      serial: '00000000A3F1B2C4',
      hardware: 'Pi Zero 2 W',
      os: 'Linux',
      os_version: 'Raspbian GNU/Linux 11 (bullseye)',
      architecture: 'armv7l',
      mac_address: 'B827EB4C5D6E',
      kernel: '6.1.21-v7+',
      uptime: 3614.82,
      cpu: { usage_percent: 3.1, cores: 4, load_average: [0.08, 0.12, 0.09] },
      memory: {
        total: 450084864,
        available: 329846784,
        used: 120238080,
        used_percent: 26.7,
        swap_total: 104853504,
        swap_used: 0,
      },
      disk_usage: [15424995328, 3587051520, 11048181760, 24.5],
      disks: [
        { mount: '/', device: '/dev/root', fstype: 'ext4', total: 15424995328, used: 3587051520, available: 11048181760, percent_free: 71.6 },
        { mount: '/boot', device: '/dev/mmcblk0p1', fstype: 'vfat', total: 268435456, used: 46221312, available: 222214144, percent_free: 82.8 },
      ],
      cpu_temp: 48.312,
      gpu_temp: 47.8,
    });
  });
});

describe('caching and sampling through the reader', () => {
  test('facts are cached for 30 s', async () => {
    const root = copyFixture(PI4);
    const clock = manualClock();
    const reader = createSystemReader({ root, now: clock.now, runCommand: fakeVcgencmd('') });
    expect((await reader.facts()).hostname).toBe('pi4-lab');
    writeFileSync(join(root, 'proc/sys/kernel/hostname'), 'renamed\n');
    clock.advance(29_999);
    expect((await reader.facts()).hostname).toBe('pi4-lab');
    expect((await reader.deviceInfo()).hostname).toBe('pi4-lab');
    clock.advance(1);
    expect((await reader.facts()).hostname).toBe('renamed');
  });

  test('CPU usage: the tick keeps the baseline; deviceInfo reports the window since it', async () => {
    const root = copyFixture(PI4);
    const clock = manualClock();
    const reader = createSystemReader({ root, now: clock.now, statfs: fixedStatfs(PI4_STATFS), runCommand: fakeVcgencmd('') });
    expect((await reader.deviceInfo()).cpu.usage_percent).toBe(0.4);
    bumpCpu(root, { user: 120, system: 40, idle: 240 });
    clock.advance(1000);
    expect((await reader.deviceInfo()).cpu.usage_percent).toBe(40);
    // Within 200 ms of the last snapshot the value is reused, even though the counters moved.
    bumpCpu(root, { user: 400 });
    clock.advance(100);
    expect((await reader.deviceInfo()).cpu.usage_percent).toBe(40);
    clock.advance(100);
    reader.tick();
    await Bun.sleep(5);
    bumpCpu(root, { idle: 400 });
    clock.advance(1000);
    expect((await reader.deviceInfo()).cpu.usage_percent).toBe(0);
  });

  test('a machine with nothing readable still produces a valid report', async () => {
    const reader = createSystemReader({
      root: makeRoot({}),
      statfs: fixedStatfs({}),
      runCommand: fakeVcgencmd(''),
      arch: 'x64',
    });
    const info = DeviceInfoSchema.parse(await reader.deviceInfo());
    expect(info.hardware).toBe('Unknown');
    expect(info.cpu).toEqual({ usage_percent: 0, cores: 1, load_average: [0, 0, 0] });
    expect(info.disk_usage).toEqual([0, 0, 0, 0]);
    expect(info.cpu_temp).toBeNull();
    expect(info.gpu_temp).toBeNull();
    expect(ProcessListSchema.parse(await reader.processList())).toEqual({ processes: [] });
  });

  test('overlong values are clipped to the schema limits', async () => {
    const root = makeRoot({
      'proc/sys/kernel/hostname': `${'h'.repeat(300)}\n`,
      'proc/device-tree/model': `${'M'.repeat(200)}\0`,
      'etc/os-release': `PRETTY_NAME="${'v'.repeat(200)}"\n`,
    });
    const facts = await createSystemReader({ root, runCommand: fakeVcgencmd('') }).facts();
    expect(DeviceFactsSchema.safeParse(facts).success).toBe(true);
    expect([facts.hostname.length, facts.hardware.length, facts.os_version.length]).toEqual([255, 128, 128]);
  });
});
