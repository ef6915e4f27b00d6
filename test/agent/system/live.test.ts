// Runs the readers against the machine the tests run on and checks them against what standard
// tools (df, ps, ip, getconf, the shell's own os-release parsing) and Node's os module report.
import { afterAll, describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { DeviceInfoSchema, ProcessListSchema, type DeviceInfo } from '../../../shared/api/device-info.ts';
import { createSystemReader } from '../../../agent/system/reader.ts';

function run(...argv: string[]): string {
  const result = Bun.spawnSync(argv, { stdout: 'pipe', stderr: 'pipe' });
  if (result.exitCode !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr.toString()}`);
  return result.stdout.toString().trim();
}

/** Starts `command` in the background of a shell that exits at once: the process is reparented
 *  away from the test, so it is not a descendant of the test's pid. */
function spawnOrphan(command: string): number {
  return Number(run('sh', '-c', `${command} >/dev/null 2>&1 & echo $!`));
}

const started: number[] = [];
const children: ReturnType<typeof Bun.spawn>[] = [];
afterAll(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  for (const child of children) child.kill('SIGKILL');
});

const reader = createSystemReader();
let info: DeviceInfo;

describe('device_info on this machine', () => {
  test('passes the schema', async () => {
    info = await reader.deviceInfo();
    expect(DeviceInfoSchema.parse(info)).toEqual(info);
  });

  test('identity matches os, uname and the shell-parsed os-release', () => {
    expect(info.hostname).toBe(os.hostname());
    expect(info.kernel).toBe(os.release());
    expect(info.architecture).toBe(run('uname', '-m'));
    expect(info.os).toBe(run('uname', '-s'));
    expect(info.os_version).toBe(run('sh', '-c', '. /etc/os-release && echo "$PRETTY_NAME"'));
  });

  test.skipIf(Bun.which('ip') === null)('MAC is the default route interface, as ip reports it', () => {
    const dev = / dev (\S+)/.exec(run('ip', 'route', 'show', 'default'))?.[1];
    expect(dev).toBeDefined();
    const mac = /link\/ether ([0-9a-f:]{17})/.exec(run('ip', '-o', 'link', 'show', dev!))?.[1];
    expect(info.mac_address).toBe(mac!.replaceAll(':', '').toUpperCase());
  });

  test('memory total is the kernel total RAM', () => {
    expect(info.memory.total).toBe(os.totalmem());
    expect(info.memory.used).toBe(info.memory.total - info.memory.available);
    expect(info.memory.available).toBeGreaterThan(0);
    expect(info.memory.available).toBeLessThanOrEqual(info.memory.total);
  });

  test('cores, uptime and load agree with getconf and os', () => {
    expect(info.cpu.cores).toBe(Number(run('getconf', '_NPROCESSORS_ONLN')));
    expect(Math.abs(info.uptime - os.uptime())).toBeLessThan(2);
    const load = os.loadavg();
    info.cpu.load_average.forEach((l, i) => expect(Math.abs(l - load[i]!)).toBeLessThan(0.5));
    expect(info.cpu.usage_percent).toBeGreaterThanOrEqual(0);
    expect(info.cpu.usage_percent).toBeLessThanOrEqual(100);
  });

  test('root filesystem matches df -B1 /', () => {
    const [source, size, used, avail] = run('df', '-B1', '--output=source,size,used,avail', '/')
      .split('\n')[1]!
      .trim()
      .split(/\s+/);
    const [total, usedBytes, available, percentUsed] = info.disk_usage;
    expect(total).toBe(Number(size));
    // Files change while the suite runs; allow 256 MiB of drift between the two readings.
    expect(Math.abs(usedBytes - Number(used))).toBeLessThan(256 * 2 ** 20);
    expect(Math.abs(available - Number(avail))).toBeLessThan(256 * 2 ** 20);
    expect(percentUsed).toBe(Math.round((usedBytes / (usedBytes + available)) * 1000) / 10);
    const rootDisk = info.disks.find((d) => d.mount === '/');
    if (source!.startsWith('/')) expect(rootDisk?.device).toBe(source!);
  });

  test('temperatures: null exactly where there is no sensor / no vcgencmd', async () => {
    let zones: string[] = [];
    try {
      zones = readdirSync('/sys/class/thermal').filter((n) => n.startsWith('thermal_zone'));
    } catch {}
    if (zones.length === 0) expect(info.cpu_temp).toBeNull();
    else expect(info.cpu_temp).toBeNumber();
    if (Bun.which('vcgencmd') === null) expect(info.gpu_temp).toBeNull();
    else expect(info.gpu_temp).toBeNumber();
  });

  // How fast a warm call is depends on this machine's load, so it is a bench row (RPC device_info
  // in `npm run bench`), not an assertion; that nothing slow repeats on a warm call is tested
  // with fixtures (thermal.test.ts: vcgencmd cached; index.test.ts: facts cached for 30 s).
});

describe('process_list on this machine', () => {
  test('shows other processes with ps-matching details; leaves out the test and its children', async () => {
    const orphan = spawnOrphan('exec sleep 32');
    started.push(orphan);
    const child = Bun.spawn(['sleep', '31']);
    children.push(child);
    await Bun.sleep(50);
    expect(Number(run('ps', '-o', 'ppid=', '-p', String(orphan)))).not.toBe(process.pid);

    const list = ProcessListSchema.parse(await createSystemReader({ selfPid: process.pid }).processList());
    const pids = list.processes.map((p) => p.pid);
    expect(pids).not.toContain(process.pid);
    expect(pids).not.toContain(child.pid);
    expect(pids).toContain(1);
    const sleeper = list.processes.find((p) => p.pid === orphan);
    expect(sleeper).toBeDefined();
    expect(sleeper!.name).toBe('sleep');
    expect(sleeper!.cmdline).toBe('sleep 32');
    expect(sleeper!.state).toBe('sleeping');
    expect(sleeper!.user).toBe(run('ps', '-o', 'user=', '-p', String(orphan)));
    expect(sleeper!.rss).toBe(Number(run('ps', '-o', 'rss=', '-p', String(orphan))) * 1024);
    expect(sleeper!.memory_percent).toBe(Math.round((sleeper!.rss / os.totalmem()) * 10000) / 100);

    // The same list with nobody excluded does contain the test and its child.
    const all = (await createSystemReader({ selfPid: 2 ** 22 + 7 }).processList()).processes.map((p) => p.pid);
    expect(all).toContain(process.pid);
    expect(all).toContain(child.pid!);
  });

  test("a busy process's CPU share matches its tick count over wall-clock time", async () => {
    const busy = spawnOrphan("exec sh -c 'while :; do :; done'");
    started.push(busy);
    // utime + stime of the busy process, read here independently of the sampler.
    const ticks = () => {
      const fields = readFileSync(`/proc/${busy}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(fields[11]) + Number(fields[12]);
    };
    const sampler = createSystemReader({ selfPid: process.pid });
    const first = (await sampler.processList()).processes.find((p) => p.pid === busy);
    expect(first?.cpu_percent).toBeGreaterThan(0);
    const [t0, ticks0] = [performance.now(), ticks()];
    await Bun.sleep(1000);
    const second = (await sampler.processList()).processes.find((p) => p.pid === busy);
    const [t1, ticks1] = [performance.now(), ticks()];
    process.kill(busy, 'SIGKILL');
    // Clock ticks are 1/100 s (USER_HZ), so ticks per 10 ms of wall time is the share of one core.
    const expected = ((ticks1 - ticks0) / ((t1 - t0) / 10)) * 100;
    expect(second?.cpu_percent).toBeGreaterThan(10);
    expect(Math.abs(second!.cpu_percent - expected)).toBeLessThan(15);
  });

  test('processes starting and exiting during the listing never make it fail', async () => {
    const churn = spawnOrphan("exec sh -c 'while :; do /bin/true; done'");
    started.push(churn);
    const sampler = createSystemReader({ selfPid: process.pid });
    for (let i = 0; i < 20; i++) {
      expect(ProcessListSchema.safeParse(await sampler.processList()).success).toBe(true);
    }
    process.kill(churn, 'SIGKILL');
  });
});
