// The sampler on this machine's real /proc (the sample passes the wire schema and agrees with what
// node:os says), on a Pi 4 snapshot whose counters the test moves by known amounts between two
// samples (per-core and total CPU, disk and network rates, a process's CPU %, exact to the byte),
// with sensors, an AMD card, nvidia-smi and vcgencmd, and on a root with nothing in it at all.
import { afterEach, describe, expect, test } from 'bun:test';
import os from 'node:os';
import { MetricsSampler } from '../../../agent/metrics/sampler.ts';
import { MetricsSampleSchema } from '../../../shared/api/metrics.ts';
import { bumpCpu, bumpProcess, copyFixture, fakeVcgencmd, fixedStatfs, makeRoot, manualClock, PI4, PI4_STATFS, removeTempRoots, writeFiles } from '../system/helpers.ts';

afterEach(removeTempRoots);

const samplers: MetricsSampler[] = [];
afterEach(() => {
  for (const s of samplers.splice(0)) s.close();
});
function sampler(options: ConstructorParameters<typeof MetricsSampler>[0]): MetricsSampler {
  const s = new MetricsSampler({ systemctl: null, nvidiaSmi: null, ...options });
  samplers.push(s);
  return s;
}

const diskstats = (mmcRead: number, mmcWritten: number) =>
  [
    `   7       0 loop0 120 0 2410 31 0 0 0 0 0 48 31 0 0 0 0 0 0`,
    ` 179       0 mmcblk0 52310 10311 ${mmcRead} 41000 80321 70233 ${mmcWritten} 190000 0 91000 231000 0 0 0 0 1200 3000`,
    ` 179       2 mmcblk0p2 51900 8931 ${mmcRead - 1000} 40700 80319 70233 ${mmcWritten - 1000} 189999 0 90000 230699 0 0 0 0 0 0`,
  ].join('\n');
const netDev = (rx: number, tx: number) =>
  `Inter-| Receive | Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 5000 50 0 0 0 0 0 0 5000 50 0 0 0 0 0 0\n  eth0: ${rx} 900 0 0 0 0 0 0 ${tx} 800 0 0 0 0 0 0\n`;

describe('a sample of this machine', () => {
  test('passes the schema and agrees with node:os', async () => {
    const s = sampler({ root: '/', dockerSocket: '/nonexistent/docker.sock' });
    await s.sample(1000);
    await Bun.sleep(300);
    const sample = await s.sample(1000);
    expect(MetricsSampleSchema.parse(sample)).toEqual(sample);
    expect(sample.system.hostname).toBe(os.hostname());
    expect(sample.system.kernel).toBe(os.release());
    expect(sample.system.uptime).toBeCloseTo(os.uptime(), -1);
    expect(sample.cpu.cores.length).toBe(os.cpus().length);
    expect(sample.memory.total).toBe(os.totalmem());
    expect(sample.memory.used).toBe(sample.memory.total - sample.memory.available);
    expect(sample.network.interfaces.map((i) => i.name)).toContain('lo');
    expect(sample.network.interfaces.find((i) => i.name === 'lo')?.ipv4).toBe('127.0.0.1');
    // This test runner is a process; the sweep sees it with its resident memory.
    expect(sample.processes.total).toBeGreaterThan(1);
    const self = [...sample.processes.topByMemory, ...sample.processes.topByCpu].find((p) => p.pid === process.pid);
    if (self) expect(self.memory).toBeGreaterThan(10 * 1024 * 1024);
    expect(sample.docker).toEqual({ available: false, containers: [] });
    expect(sample.systemd).toEqual({ available: false, services: [] });
    for (const d of sample.disk.io) expect(d.readRate).toBeGreaterThanOrEqual(0);
  });
});

describe('a Pi 4 snapshot whose counters move', () => {
  function rig() {
    const root = copyFixture(PI4);
    writeFiles(root, {
      'proc/diskstats': diskstats(3_000_000, 2_000_000),
      'proc/net/dev': netDev(1_000_000, 500_000),
      'proc/net/sockstat': 'sockets: used 100\nTCP: inuse 7 orphan 0 tw 1 alloc 9 mem 1\nUDP: inuse 3 mem 1\n',
      'proc/net/sockstat6': 'TCP6: inuse 2\nUDP6: inuse 1\n',
      'sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq': '1800000\n',
      'sys/devices/system/cpu/cpu1/cpufreq/scaling_cur_freq': '600000\n',
      'sys/class/hwmon/hwmon0/name': 'cpu_thermal\n',
      'sys/class/hwmon/hwmon0/temp1_input': '47250\n',
      'sys/class/hwmon/hwmon0/temp1_crit': '110000\n',
      'sys/class/hwmon/hwmon1/name': 'nvme\n',
      'sys/class/hwmon/hwmon1/temp1_input': '38850\n',
      'sys/class/hwmon/hwmon1/temp1_label': 'Composite\n',
      'sys/class/hwmon/hwmon1/temp1_max': '81850\n',
      'sys/class/hwmon/hwmon1/temp1_crit': '84850\n',
      'sys/class/hwmon/hwmon1/temp2_input': '-273150\n',
      'sys/class/thermal/thermal_zone1/type': 'soc-thermal\n',
      'sys/class/thermal/thermal_zone1/temp': '51000\n',
      'sys/class/thermal/thermal_zone1/trip_point_0_type': 'passive\n',
      'sys/class/thermal/thermal_zone1/trip_point_0_temp': '85000\n',
      'sys/class/thermal/thermal_zone1/trip_point_1_type': 'critical\n',
      'sys/class/thermal/thermal_zone1/trip_point_1_temp': '95000\n',
      'sys/class/drm/card0/device/gpu_busy_percent': '37\n',
      'sys/class/drm/card0/device/mem_info_vram_used': '104857600\n',
      'sys/class/drm/card0/device/mem_info_vram_total': '8589934592\n',
      'sys/class/drm/card0/device/hwmon/hwmon5/temp1_input': '52000\n',
    });
    const clock = manualClock();
    const vcgencmd = fakeVcgencmd("temp=51.1'C\n");
    const runCommand = async (argv: readonly string[]) => (argv[0] === '/opt/nvidia-smi' ? '0, Tesla T4, 20, 100, 15360, 40, 27.5\n' : vcgencmd(argv));
    const s = sampler({ root, dockerSocket: '/nonexistent/docker.sock', now: clock.now, statfs: fixedStatfs(PI4_STATFS), runCommand, nvidiaSmi: '/opt/nvidia-smi', arch: 'arm64' });
    return { root, clock, s };
  }

  test('rates over two samples are the counters moved over the clock moved', async () => {
    const { root, clock, s } = rig();
    const first = await s.sample(10_000);
    expect(first.disk.io).toEqual([{ device: 'mmcblk0', readBytes: 3_000_000 * 512, writeBytes: 2_000_000 * 512 }]);
    writeFiles(root, { 'proc/diskstats': diskstats(3_000_000 + 20_000, 2_000_000 + 40_000), 'proc/net/dev': netDev(1_000_000 + 250_000, 500_000 + 50_000) });
    bumpCpu(root, { user: 300, system: 100, idle: 600 });
    bumpProcess(root, 990, 700, 300);
    clock.advance(10_000);
    const second = await s.sample(10_000);
    expect(MetricsSampleSchema.parse(second)).toEqual(second);
    expect(second.disk.io).toEqual([{ device: 'mmcblk0', readBytes: 3_020_000 * 512, writeBytes: 2_040_000 * 512, readRate: (20_000 * 512) / 10, writeRate: (40_000 * 512) / 10 }]);
    const eth0 = second.network.interfaces.find((i) => i.name === 'eth0');
    expect(eth0).toEqual({ name: 'eth0', rxBytes: 1_250_000, txBytes: 550_000, rxRate: 25_000, txRate: 5_000 });
    expect(second.network.connectionCount).toBe(9);
    // 400 of 1000 jiffies busy; bumpCpu spreads them over the four cores (remainder on cpu0).
    expect(second.cpu.totalUsage).toBe(40);
    expect(second.cpu.cores.map((c) => c.usage)).toEqual([40, 40, 40, 40]);
    // 1000 ticks in 10 s of 100 ticks each: one core's worth. Its uid is in no passwd line: the number, as ps shows it.
    expect(second.processes.topByCpu[0]).toEqual({ pid: 990, name: 'evil) S 1 (x', cpu: 100, memory: 512 * 4096, user: '1234' });
    expect(second.system.uptime).toBeCloseTo(186432.57 + 10, 2);
  });

  test('a jump in CPU use sweeps the processes at once, so the top list shows what jumped; steady use repeats the last sweep', async () => {
    const { root, clock, s } = rig();
    await s.sample(1000);
    // Idle for a second: no jump, and no sweep before SWEEP_EVERY_MS.
    bumpCpu(root, { user: 4, system: 0, idle: 396 });
    bumpProcess(root, 990, 1, 0);
    clock.advance(1000);
    const idle = await s.sample(1000);
    expect(idle.cpu.totalUsage).toBe(1);
    // Then pid 990 takes a whole core: CPU use jumps past JUMP_PERCENT and the sample's list has it, a second later.
    bumpCpu(root, { user: 400, system: 0, idle: 0 });
    bumpProcess(root, 990, 100, 0);
    clock.advance(1000);
    const busy = await s.sample(1000);
    expect(busy.cpu.totalUsage).toBe(100);
    // A fresh sweep: its CPU % is over the 2 s since the first one (101 ticks of 100 a second).
    expect(busy.processes.topByCpu[0]).toMatchObject({ pid: 990, cpu: 50.5 });
    // Steady at 100 %: no jump, so the next sample repeats that sweep (its figures unchanged).
    bumpCpu(root, { user: 400, system: 0, idle: 0 });
    bumpProcess(root, 990, 50, 0);
    clock.advance(1000);
    const steady = await s.sample(1000);
    expect(steady.processes.topByCpu).toEqual(busy.processes.topByCpu);
  });

  test('the rest of the structure from the snapshot', async () => {
    const { s } = rig();
    const sample = await s.sample(10_000);
    expect(sample.system).toEqual({ hostname: 'pi4-lab', kernel: '6.6.51+rpt-rpi-v8', uptime: 186432.57, architecture: 'aarch64' });
    expect(sample.cpu.model).toBe('BCM2835');
    expect(sample.cpu.cores.map((c) => c.frequency)).toEqual([1800, 600, 0, 0]);
    expect(sample.cpu.loadAverage).toEqual({ one: 0.42, five: 0.31, fifteen: 0.27 });
    expect(sample.memory).toEqual({
      total: 3884328 * 1024,
      used: (3884328 - 3343036) * 1024,
      free: 2690412 * 1024,
      available: 3343036 * 1024,
      buffers: 60872 * 1024,
      cached: 694592 * 1024,
      swapTotal: 102396 * 1024,
      swapUsed: (102396 - 98300) * 1024,
    });
    expect(sample.disk.mounts.map((m) => m.mountpoint)).toEqual(['/', '/boot/firmware', '/media/pi/My Drive']);
    expect(sample.disk.mounts[0]).toEqual({ device: '/dev/mmcblk0p2', mountpoint: '/', fstype: 'ext4', total: 7612310 * 4096, used: (7612310 - 5120033) * 4096, free: 4732081 * 4096 });
    // The Pi's cpu-thermal zone is the cpu_thermal hwmon chip: reported once. The -273 °C probe is dropped.
    expect(sample.temperature.sensors).toEqual([
      { name: 'cpu_thermal', value: 47.25, critical: 110 },
      { name: 'nvme Composite', value: 38.85, high: 81.85, critical: 84.85 },
      { name: 'soc-thermal', value: 51, high: 85, critical: 95 },
    ]);
    expect(sample.gpu).toEqual({
      available: true,
      gpus: [
        { index: 0, name: 'Tesla T4', vendor: 'nvidia', utilization: 20, memoryUsed: 100 * 1048576, memoryTotal: 15360 * 1048576, temperature: 40, powerWatts: 27.5 },
        { index: 1, name: 'amdgpu card0', vendor: 'amd', utilization: 37, memoryUsed: 104857600, memoryTotal: 8589934592, temperature: 52 },
        { index: 2, name: 'VideoCore', vendor: 'broadcom', temperature: 51.1 },
      ],
    });
    expect(sample.processes.total).toBe(14);
    expect(sample.watched).toBeUndefined();
  });

  test('the slow sources are not asked again within their period', async () => {
    const root = copyFixture(PI4);
    const calls: string[] = [];
    const clock = manualClock();
    const s = sampler({ root, dockerSocket: '/nonexistent.sock', now: clock.now, statfs: fixedStatfs(PI4_STATFS), nvidiaSmi: '/opt/nvidia-smi', runCommand: async (argv) => (calls.push(argv[0]!), '') });
    for (let i = 0; i < 5; i++) {
      await s.sample(1000);
      clock.advance(1000);
    }
    // nvidia-smi and vcgencmd once each in five seconds of samples.
    expect(calls.sort()).toEqual(['/opt/nvidia-smi', '/usr/bin/vcgencmd']);
  });
});

describe('a root with nothing in it', () => {
  test('still gives a valid sample, of zeros and empty lists', async () => {
    const s = sampler({ root: makeRoot({}), dockerSocket: '/nonexistent.sock', statfs: fixedStatfs({}) });
    const sample = await s.sample(1000);
    expect(MetricsSampleSchema.parse(sample)).toEqual(sample);
    expect(sample.cpu).toEqual({ cores: [], totalUsage: 0, loadAverage: { one: 0, five: 0, fifteen: 0 } });
    expect(sample.memory.total).toBe(0);
    expect(sample.disk).toEqual({ mounts: [], io: [] });
    expect(sample.network).toEqual({ interfaces: [], connectionCount: 0 });
    expect(sample.processes).toEqual({ topByCpu: [], topByMemory: [], total: 0 });
    expect(sample.temperature.sensors).toEqual([]);
    expect(sample.gpu).toEqual({ available: false, gpus: [] });
  });
});
