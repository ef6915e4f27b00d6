// The sampler's parsers on recorded text: the Pi fixtures' /proc/stat and cpuinfo, and real
// captures of diskstats, net/dev, sockstat, nvidia-smi and systemctl output, including the
// malformed and hostile lines a parser must skip rather than trust.
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyPercent, cpuModel, parseCpuinfoMhz, parseLoadavg } from '../../../agent/metrics/cpu.ts';
import { parseDiskstats, rate } from '../../../agent/metrics/disks.ts';
import { parseNvidiaSmi } from '../../../agent/metrics/gpu.ts';
import { parseNetDev, parseTcpInuse } from '../../../agent/metrics/network.ts';
import { argv0Name, parseStatBytes } from '../../../agent/metrics/processes.ts';
import { celsius } from '../../../agent/metrics/sensors.ts';
import { parseListUnits } from '../../../agent/metrics/systemd.ts';
import { parseCoreTimes } from '../../../agent/system/cpu.ts';
import { PI1_MODEL_B, PI4, PI_ZERO_2W } from '../system/helpers.ts';

const fixture = (root: string, path: string) => readFileSync(join(root, path), 'utf8');

const DISKSTATS = `   7       0 loop0 120 0 2410 31 0 0 0 0 0 48 31 0 0 0 0 0 0
 179       0 mmcblk0 52310 10311 3145728 41000 80321 70233 2097152 190000 0 91000 231000 0 0 0 0 1200 3000
 179       1 mmcblk0p1 301 1380 20480 260 2 0 2 1 0 180 261 0 0 0 0 0 0
 179       2 mmcblk0p2 51900 8931 3120000 40700 80319 70233 2097150 189999 0 90000 230699 0 0 0 0 0 0
   8       0 sda 400 12 8192 300 100 2 4096 120 0 300 420 0 0 0 0 0 0
   8       1 sda1 390 12 8100 290 100 2 4096 120 0 290 410 0 0 0 0 0 0
 254       0 dm-0 10 0 80 1 0 0 0 0 0 1 1 0 0 0 0 0 0
 253       0 zram0 10 0 80 1 50 0 400 1 0 1 1 0 0 0 0 0 0
 259       0 nvme0n1 1000 0 64000 100 500 0 32000 50 0 120 150 0 0 0 0 0 0
`;

const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   81234     900    0    0    0     0          0         0    81234     900    0    0    0     0       0          0
  eth0: 987654321 1234567    0   12    0     0          0      3456 123456789  654321    0    0    0     0       0          0
 wlan0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
garbage line without numbers
 veth9: abc 1 2
`;

describe('/proc/stat per core', () => {
  test('the Pi 4 fixture has four cores and the aggregate line', () => {
    const { all, cores } = parseCoreTimes(fixture(PI4, 'proc/stat'));
    expect(cores.map((c) => c.id)).toEqual([0, 1, 2, 3]);
    // cpu  207000 1560 76771 74116657 11953 0 7836 0: idle is idle + iowait.
    expect(all).toEqual({ total: 207000 + 1560 + 76771 + 74116657 + 11953 + 0 + 7836 + 0, idle: 74116657 + 11953 });
    expect(cores[0]).toEqual({ id: 0, total: 52310 + 412 + 19876 + 18526411 + 3120 + 0 + 4231 + 0, idle: 18526411 + 3120 });
  });

  test('usage is the busy share of the jiffies between two readings', () => {
    expect(busyPercent({ total: 1000, idle: 800 }, { total: 1400, idle: 1100 })).toBe(25);
    expect(busyPercent({ total: 1000, idle: 800 }, { total: 1000, idle: 800 })).toBe(0);
    // A counter that went backwards (a CPU hot-unplugged and back) reads as 0, never negative.
    expect(busyPercent({ total: 5000, idle: 100 }, { total: 1000, idle: 800 })).toBe(0);
  });

  test('a core line with a garbled value is left out, the others kept', () => {
    const { cores } = parseCoreTimes('cpu  1 2 3 4\ncpu0 1 x 3 4\ncpu1 1 2 3 4\nintr 5\n');
    expect(cores.map((c) => c.id)).toEqual([1]);
  });
});

describe('cpuinfo', () => {
  test('the model: model name, else the SoC', () => {
    expect(cpuModel(fixture(PI_ZERO_2W, 'proc/cpuinfo'))).toBe('ARMv7 Processor rev 4 (v7l)');
    expect(cpuModel(fixture(PI1_MODEL_B, 'proc/cpuinfo'))).toBe('ARMv6-compatible processor rev 7 (v6l)');
    expect(cpuModel(fixture(PI4, 'proc/cpuinfo'))).toBe('BCM2835');
    expect(cpuModel('')).toBeUndefined();
  });

  test('cpu MHz per processor (x86), none on a Pi', () => {
    const x86 = 'processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.142\n\nprocessor\t: 1\ncpu MHz\t\t: 3100.5\n';
    expect([...parseCpuinfoMhz(x86)]).toEqual([
      [0, 2596.142],
      [1, 3100.5],
    ]);
    expect(parseCpuinfoMhz(fixture(PI4, 'proc/cpuinfo')).size).toBe(0);
  });

  test('loadavg, and zeros for what cannot be read', () => {
    expect(parseLoadavg(fixture(PI4, 'proc/loadavg'))).toEqual({ one: 0.42, five: 0.31, fifteen: 0.27 });
    expect(parseLoadavg(null)).toEqual({ one: 0, five: 0, fifteen: 0 });
    expect(parseLoadavg('-1 NaN x')).toEqual({ one: 0, five: 0, fifteen: 0 });
  });
});

describe('diskstats', () => {
  const byName = (names: string[]) => (n: string) => names.includes(n);

  test('whole disks only, sectors × 512', () => {
    const disks = parseDiskstats(DISKSTATS, byName(['mmcblk0', 'sda', 'nvme0n1']));
    expect(disks).toEqual([
      { device: 'mmcblk0', readBytes: 3145728 * 512, writeBytes: 2097152 * 512 },
      { device: 'sda', readBytes: 8192 * 512, writeBytes: 4096 * 512 },
      { device: 'nvme0n1', readBytes: 64000 * 512, writeBytes: 32000 * 512 },
    ]);
  });

  test('short or garbled lines are skipped', () => {
    expect(parseDiskstats('8 0 sda 1 2\n8 0 sdb 1 2 x 4 5 6 7 8\n\n', () => true)).toEqual([]);
  });

  test('a rate is bytes per second, 0 for a counter that went back, undefined without a previous reading', () => {
    expect(rate(1000, 6000, 2)).toBe(2500);
    expect(rate(6000, 1000, 2)).toBe(0);
    expect(rate(undefined, 1000, 2)).toBeUndefined();
    expect(rate(1000, 2000, 0)).toBeUndefined();
  });
});

describe('network', () => {
  test('/proc/net/dev: every interface with its byte counters, malformed lines skipped', () => {
    expect(parseNetDev(NET_DEV)).toEqual([
      { name: 'lo', rxBytes: 81234, txBytes: 81234 },
      { name: 'eth0', rxBytes: 987654321, txBytes: 123456789 },
      { name: 'wlan0', rxBytes: 0, txBytes: 0 },
    ]);
  });

  test('sockstat: TCP sockets in use, v4 and v6', () => {
    expect(parseTcpInuse('sockets: used 290\nTCP: inuse 17 orphan 0 tw 3 alloc 20 mem 4\nUDP: inuse 5 mem 2\n')).toBe(17);
    expect(parseTcpInuse('TCP6: inuse 4\nUDP6: inuse 2\n')).toBe(4);
    expect(parseTcpInuse(null)).toBe(0);
    expect(parseTcpInuse('TCP: inuse lots')).toBe(0);
  });
});

describe('/proc/PID/stat from bytes', () => {
  const bytes = (s: string) => {
    const b = Buffer.from(s, 'latin1');
    return [b, b.length] as const;
  };

  test('the fixture processes, as the system reader parses them', () => {
    for (const pid of [412, 725, 800, 990, 2, 47]) {
      const text = fixture(PI4, `proc/${pid}/stat`);
      const rest = text.slice(text.lastIndexOf(')') + 2).trim().split(' ');
      expect(parseStatBytes(...bytes(text))).toEqual({
        comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')),
        ticks: Number(rest[11]) + Number(rest[12]),
        starttime: Number(rest[19]),
        rssPages: Number(rest[21]),
        kernelThread: pid === 2 || pid === 47,
      });
    }
  });

  test('a comm holding ") " and spaces is read to the last ")"', () => {
    const stat = parseStatBytes(...bytes('990 (evil) S 1 (x) S 1 990 990 0 -1 4194560 2513 20451 12 31 40 10 0 0 20 0 1 0 18500000 6291456 512 18446744073709551615\n'));
    expect(stat).toEqual({ comm: 'evil) S 1 (x', ticks: 50, starttime: 18500000, rssPages: 512, kernelThread: false });
  });

  test('truncated or garbled stat gives null', () => {
    for (const text of ['', 'garbage', '12 (x', '12 (x) S', '12 (x) S 1 2 3', '12 (x) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5']) {
      expect(parseStatBytes(...bytes(text))).toBeNull();
    }
  });

  test("argv0's base name", () => {
    expect(argv0Name('/usr/sbin/nginx\0-g\0daemon off;\0')).toBe('nginx');
    expect(argv0Name('my-worker\0')).toBe('my-worker');
    expect(argv0Name('')).toBe('');
  });
});

describe('temperatures', () => {
  test('m°C → °C, and impossible readings dropped', () => {
    expect(celsius('54768\n')).toBe(54.768);
    expect(celsius('-5000')).toBe(-5);
    expect(celsius('-273150')).toBeUndefined();
    expect(celsius('1000000')).toBeUndefined();
    expect(celsius('hot')).toBeUndefined();
    expect(celsius(null)).toBeUndefined();
  });
});

describe('nvidia-smi', () => {
  test('one GPU a line, in bytes; [N/A] fields left out', () => {
    const out = '0, NVIDIA GeForce RTX 3080, 12, 1024, 10240, 45, 110.50\n1, Tesla T4, [N/A], 15, 15360, 38, [N/A]\nbogus\n99999, x, 1, 1, 1, 1, 1\n';
    expect(parseNvidiaSmi(out)).toEqual([
      { index: 0, name: 'NVIDIA GeForce RTX 3080', vendor: 'nvidia', utilization: 12, memoryUsed: 1024 * 1048576, memoryTotal: 10240 * 1048576, temperature: 45, powerWatts: 110.5 },
      { index: 1, name: 'Tesla T4', vendor: 'nvidia', memoryUsed: 15 * 1048576, memoryTotal: 15360 * 1048576, temperature: 38 },
    ]);
  });
});

describe('systemctl list-units', () => {
  test('services with their active state and sub-state; other units and junk skipped', () => {
    const out = [
      'cron.service                 loaded active   running Regular background program processing daemon',
      'nginx.service                loaded failed   failed  A high performance web server',
      '● ssh.service                loaded active   running OpenBSD Secure Shell server',
      'apt-daily.service            loaded inactive dead    Daily apt download activities',
      'dbus.socket                  loaded active   running D-Bus System Message Bus Socket',
      'garbage',
      '',
    ].join('\n');
    expect(parseListUnits(out)).toEqual([
      { name: 'apt-daily.service', state: 'inactive', subState: 'dead' },
      { name: 'cron.service', state: 'active', subState: 'running' },
      { name: 'nginx.service', state: 'failed', subState: 'failed' },
      { name: 'ssh.service', state: 'active', subState: 'running' },
    ]);
  });

  test('past SAMPLE_LIMITS.services, failed and active units are kept before inactive ones', () => {
    const lines = [...Array.from({ length: 250 }, (_, i) => `idle${String(i).padStart(3, '0')}.service loaded inactive dead x`), 'zz-broken.service loaded failed failed x', 'zz-up.service loaded active running x'];
    const services = parseListUnits(lines.join('\n'));
    expect(services.length).toBe(200);
    expect(services.map((s) => s.name)).toContain('zz-broken.service');
    expect(services.map((s) => s.name)).toContain('zz-up.service');
  });
});
