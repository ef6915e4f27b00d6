import { afterEach, describe, expect, test } from 'bun:test';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Process } from '../../../shared/api/device-info.ts';
import { ProcessListSchema } from '../../../shared/api/device-info.ts';
import {
  listPids,
  parseCmdline,
  parseProcStat,
  parseStatus,
  readProcDetails,
} from '../../../agent/system/proc-pid.ts';
import { processTree, ProcessSampler, stateName } from '../../../agent/system/processes.ts';
import { parsePasswd, UserNames } from '../../../agent/system/users.ts';
import {
  bumpCpu,
  bumpProcess,
  copyFixture,
  makeRoot,
  manualClock,
  PI4,
  PI_ZERO_2W,
  removeTempRoots,
  setStatField,
} from './helpers.ts';

afterEach(removeTempRoots);

/** A sampler over a copy of the Pi 4 fixture whose first-call "sleep" runs `during` instead. */
function pi4Sampler(during: (root: string) => void = () => {}, selfPid = 800) {
  const root = copyFixture(PI4);
  const clock = manualClock();
  let sleeps = 0;
  const sampler = new ProcessSampler({
    root,
    selfPid,
    now: clock.now,
    sleep: async (ms) => {
      sleeps++;
      during(root);
      clock.advance(ms);
    },
  });
  return { root, clock, sampler, sleeps: () => sleeps };
}

const byPid = (list: Process[]) => new Map(list.map((p) => [p.pid, p]));

describe('/proc/PID parsing', () => {
  test('comm with spaces and parentheses is read up to the last ")"', () => {
    const stat = parseProcStat('990 (evil) S 1 (x) S 1 990 990 0 -1 4194560 2513 20451 12 31 40 10 0 0 20 0 1 0 18500000 6291456 512 18446744073709551615\n');
    expect(stat).toEqual({ pid: 990, comm: 'evil) S 1 (x', state: 'S', ppid: 1, ticks: 50, starttime: 18500000, flags: 4194560, threads: 1 });
  });

  test('the fixture processes parse, including (sd-pam) and kernel threads', async () => {
    const sdPam = await readProcDetails(PI4, 725);
    expect(sdPam).toEqual({
      pid: 725, comm: '(sd-pam)', state: 'S', ppid: 718, ticks: 0, starttime: 2291, flags: 4194560, threads: 1,
      tgid: 725, uid: 1000, rss: 3040 * 1024, cmdline: '(sd-pam)',
    });
    const kworker = await readProcDetails(PI4, 47);
    expect(kworker).toEqual({
      pid: 47, comm: 'kworker/1:2-events', state: 'I', ppid: 2, ticks: 1290, starttime: 611, flags: 2129984, threads: 1,
      tgid: 47, uid: 0, rss: 0, cmdline: '',
    });
  });

  test('malformed stat lines give null', () => {
    for (const text of ['', 'garbage', '12 (x', '12 (x) S', '12 (x) S 1 2 3', 'abc (x) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 0 0']) {
      expect(parseProcStat(text)).toBeNull();
    }
  });

  test('cmdline: NULs become spaces, NUL padding from setproctitle is dropped', () => {
    expect(parseCmdline('python3\0/home/pi/sensor.py\0--interval\x005\0')).toBe('python3 /home/pi/sensor.py --interval 5');
    expect(parseCmdline('sshd: /usr/sbin/sshd -D\0\0\0\0')).toBe('sshd: /usr/sbin/sshd -D');
    expect(parseCmdline('')).toBe('');
  });

  test('status: real uid and VmRSS; kernel threads and zombies have no RSS', () => {
    expect(parseStatus('Name:\tx\nTgid:\t7\nUid:\t1000\t0\t0\t0\nVmRSS:\t   19520 kB\n')).toEqual({ tgid: 7, uid: 1000, rss: 19520 * 1024 });
    expect(parseStatus('Name:\tkthreadd\nUid:\t0\t0\t0\t0\n')).toEqual({ tgid: null, uid: 0, rss: 0 });
    expect(parseStatus('garbage')).toEqual({ tgid: null, uid: null, rss: 0 });
  });

  test('listPids lists only numeric entries, sorted numerically', async () => {
    expect(await listPids(PI4)).toEqual([1, 2, 47, 412, 640, 718, 725, 800, 812, 813, 901, 950, 960, 990]);
  });

  test('state letters become psutil status words', () => {
    expect(['R', 'S', 'D', 'Z', 'T', 't', 'I', 'X', '?'].map(stateName)).toEqual([
      'running', 'sleeping', 'disk-sleep', 'zombie', 'stopped', 'tracing-stop', 'idle', 'dead', '?',
    ]);
  });
});

describe('processTree', () => {
  const procs = [
    { pid: 1, ppid: 0 }, { pid: 800, ppid: 1 }, { pid: 812, ppid: 800 }, { pid: 813, ppid: 812 },
    { pid: 814, ppid: 800 }, { pid: 900, ppid: 1 }, { pid: 901, ppid: 900 },
  ];
  test('a pid and all its descendants', () => {
    expect([...processTree(procs, 800)].sort()).toEqual([800, 812, 813, 814]);
  });
  test('a pid that is not running is just itself', () => {
    expect([...processTree(procs, 4242)]).toEqual([4242]);
  });
  test('a ppid cycle (cannot happen, but garbage can) terminates', () => {
    expect([...processTree([{ pid: 5, ppid: 6 }, { pid: 6, ppid: 5 }], 5)].sort()).toEqual([5, 6]);
  });
});

describe('ProcessSampler on the Pi 4 fixture', () => {
  test('first call: one short second sample, exact percentages, the agent tree left out', async () => {
    // During the 100 ms second sample: 40 jiffies pass over 4 CPUs (10 each).
    const { sampler, sleeps } = pi4Sampler((root) => {
      bumpCpu(root, { user: 25, system: 5, idle: 10 });
      bumpProcess(root, 950, 8, 2); // 10 ticks of 10 elapsed: one core flat out
      bumpProcess(root, 412, 1); // 10 %
      bumpProcess(root, 800, 20); // the agent: excluded anyway
    });
    const list = await sampler.list();
    expect(sleeps()).toBe(1);
    expect(ProcessListSchema.parse({ processes: list }).processes).toEqual(list);
    expect(list).toEqual([
      { pid: 1, name: 'systemd', cpu_percent: 0, memory_percent: 0.3, rss: 11796480, state: 'sleeping', user: 'root', cmdline: '/sbin/init splash' },
      { pid: 2, name: 'kthreadd', cpu_percent: 0, memory_percent: 0, rss: 0, state: 'sleeping', user: 'root', cmdline: '' },
      { pid: 47, name: 'kworker/1:2-events', cpu_percent: 0, memory_percent: 0, rss: 0, state: 'idle', user: 'root', cmdline: '' },
      { pid: 412, name: 'systemd-journal', cpu_percent: 10, memory_percent: 0.55, rss: 22020096, state: 'sleeping', user: 'root', cmdline: '/lib/systemd/systemd-journald' },
      { pid: 640, name: 'sshd', cpu_percent: 0, memory_percent: 0.2, rss: 8126464, state: 'sleeping', user: 'root', cmdline: 'sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups' },
      { pid: 718, name: 'systemd', cpu_percent: 0, memory_percent: 0.25, rss: 10092544, state: 'sleeping', user: 'pi', cmdline: '/lib/systemd/systemd --user' },
      { pid: 725, name: '(sd-pam)', cpu_percent: 0, memory_percent: 0.08, rss: 3112960, state: 'sleeping', user: 'pi', cmdline: '(sd-pam)' },
      { pid: 901, name: 'bash', cpu_percent: 0, memory_percent: 0.13, rss: 5242880, state: 'sleeping', user: 'pi', cmdline: '-bash' },
      { pid: 950, name: 'python3', cpu_percent: 100, memory_percent: 0.5, rss: 19988480, state: 'running', user: 'pi', cmdline: 'python3 /home/pi/sensor.py --interval 5' },
      { pid: 960, name: 'python3', cpu_percent: 0, memory_percent: 0, rss: 0, state: 'zombie', user: 'pi', cmdline: '' },
      { pid: 990, name: 'evil) S 1 (x', cpu_percent: 0, memory_percent: 0.05, rss: 2097152, state: 'sleeping', user: '1234', cmdline: '/tmp/evil) S 1 (x --flag' },
    ]);
  });

  test('later calls diff against the previous call; a process can exceed 100 % on 4 cores', async () => {
    const { root, clock, sampler, sleeps } = pi4Sampler();
    await sampler.list();
    // One second: 400 jiffies over 4 CPUs, i.e. 100 elapsed per CPU.
    bumpCpu(root, { user: 300, system: 50, idle: 40, iowait: 10 });
    bumpProcess(root, 950, 140, 10); // 150 ticks: one and a half cores
    bumpProcess(root, 901, 3);
    bumpProcess(root, 412, 1);
    clock.advance(1000);
    const second = byPid(await sampler.list());
    expect(sleeps()).toBe(1);
    expect(second.get(950)?.cpu_percent).toBe(150);
    expect(second.get(901)?.cpu_percent).toBe(3);
    expect(second.get(412)?.cpu_percent).toBe(1);
    expect(second.get(1)?.cpu_percent).toBe(0);

    // Next window: only 950 moves, 25 ticks of 100.
    bumpCpu(root, { user: 25, idle: 375 });
    bumpProcess(root, 950, 25);
    clock.advance(1000);
    const third = byPid(await sampler.list());
    expect(third.get(950)?.cpu_percent).toBe(25);
    expect(third.get(901)?.cpu_percent).toBe(0);
  });

  test('a second call within 100 ms measures from the baseline before, not over a tiny window', async () => {
    const { root, clock, sampler } = pi4Sampler((r) => {
      bumpCpu(r, { idle: 40 });
    });
    await sampler.list(); // baselines: A (before the sleep) and B (after)
    bumpCpu(root, { user: 8, idle: 12 }); // 20 jiffies after B …
    bumpProcess(root, 950, 6); // … 6 of them 950's
    clock.advance(10);
    // Window A → now: 60 jiffies over 4 CPUs = 15 per CPU; 6 / 15 = 40 %.
    expect(byPid(await sampler.list()).get(950)?.cpu_percent).toBe(40);
  });

  test('a pid reused since the baseline counts only the new process ticks', async () => {
    const { root, clock, sampler } = pi4Sampler();
    await sampler.list();
    bumpCpu(root, { user: 100, idle: 300 });
    setStatField(root, 950, 22, 18643200); // new starttime: a different process now has pid 950
    setStatField(root, 950, 14, 30);
    setStatField(root, 950, 15, 0);
    clock.advance(1000);
    expect(byPid(await sampler.list()).get(950)?.cpu_percent).toBe(30);
  });

  test('a process that started after the baseline is measured from zero', async () => {
    const { root, clock, sampler } = pi4Sampler();
    await sampler.list();
    const stat = (await Bun.file(join(root, 'proc/901/stat')).text()).replace(/^901 \(bash\) S 640/, '4000 (newcomer) R 1');
    mkdirSync(join(root, 'proc/4000'));
    writeFileSync(join(root, 'proc/4000/stat'), stat);
    writeFileSync(join(root, 'proc/4000/status'), 'Name:\tnewcomer\nUid:\t1000\t1000\t1000\t1000\nVmRSS:\t    1024 kB\n');
    writeFileSync(join(root, 'proc/4000/cmdline'), 'newcomer\0');
    setStatField(root, 4000, 14, 40);
    setStatField(root, 4000, 15, 10);
    bumpCpu(root, { user: 100, idle: 300 });
    clock.advance(1000);
    const p = byPid(await sampler.list()).get(4000);
    expect(p).toEqual({
      pid: 4000, name: 'newcomer', cpu_percent: 50, memory_percent: 0.03, rss: 1048576,
      state: 'running', user: 'pi', cmdline: 'newcomer',
    });
  });

  test('after a minute without calls the old baseline is dropped and a fresh short sample taken', async () => {
    const { root, clock, sampler, sleeps } = pi4Sampler();
    await sampler.list();
    bumpCpu(root, { user: 6000, idle: 18000 });
    bumpProcess(root, 950, 6000); // a minute of one core, long ago
    clock.advance(60_001);
    const list = byPid(await sampler.list());
    expect(sleeps()).toBe(2);
    expect(list.get(950)?.cpu_percent).toBe(0);
  });

  test('concurrent calls are serialised: only one takes the first-call sample', async () => {
    const { sampler, sleeps } = pi4Sampler();
    const [a, b] = await Promise.all([sampler.list(), sampler.list()]);
    expect(sleeps()).toBe(1);
    expect(a.length).toBe(11);
    expect(b.length).toBe(11);
  });

  test('selfPid of a process that is not running excludes nothing', async () => {
    const { sampler } = pi4Sampler(() => {}, 4242);
    expect((await sampler.list()).map((p) => p.pid)).toEqual(await listPids(PI4));
  });

  test('excluding from the middle of a tree keeps the parents', async () => {
    const { sampler } = pi4Sampler(() => {}, 812);
    const pids = (await sampler.list()).map((p) => p.pid);
    expect(pids).toContain(800);
    expect(pids).not.toContain(812);
    expect(pids).not.toContain(813);
  });
});

describe('robustness', () => {
  test('processes that vanish or are half gone are skipped without an error', async () => {
    const { root, sampler } = pi4Sampler((r) => {
      // Exits during the first call's second sample.
      rmSync(join(r, 'proc/990'), { recursive: true });
    });
    rmSync(join(root, 'proc/901/status')); // exited between reading stat and status
    rmSync(join(root, 'proc/718/cmdline'));
    mkdirSync(join(root, 'proc/4242')); // listed, then gone: an empty directory
    mkdirSync(join(root, 'proc/4243'));
    writeFileSync(join(root, 'proc/4243/stat'), 'garbage');
    writeFileSync(join(root, 'proc/4243/status'), '');
    writeFileSync(join(root, 'proc/4243/cmdline'), '');
    const pids = (await sampler.list()).map((p) => p.pid);
    expect(pids).toEqual([1, 2, 47, 412, 640, 725, 950, 960]);
  });

  test('a root without /proc gives an empty list', async () => {
    const sampler = new ProcessSampler({ root: makeRoot({}), sleep: async () => {} });
    expect(await sampler.list()).toEqual([]);
  });

  test('unreadable /proc/stat and meminfo: 0 % rather than NaN or a throw', async () => {
    const { root, sampler } = pi4Sampler();
    writeFileSync(join(root, 'proc/stat'), 'garbage');
    writeFileSync(join(root, 'proc/meminfo'), '');
    const list = await sampler.list();
    expect(list.length).toBe(11);
    for (const p of list) {
      expect(p.cpu_percent).toBe(0);
      expect(p.memory_percent).toBe(0);
    }
    expect(ProcessListSchema.safeParse({ processes: list }).success).toBe(true);
  });
});

describe('Pi Zero 2 W', () => {
  test('the list with users from its own passwd', async () => {
    const sampler = new ProcessSampler({ root: PI_ZERO_2W, selfPid: 4242, sleep: async () => {} });
    const list = await sampler.list();
    expect(list.map((p) => [p.pid, p.name, p.user, p.memory_percent])).toEqual([
      [1, 'systemd', 'root', 1.86],
      [2, 'kthreadd', 'root', 0],
      [381, 'systemd-journal', 'root', 1.57],
      [512, 'wpa_supplicant', 'root', 0.82],
      [530, 'dhcpcd', 'root', 0.52],
      [702, 'python3', 'pi', 3.26],
    ]);
    expect(list.find((p) => p.pid === 512)?.cmdline).toBe('/sbin/wpa_supplicant -u -s -O /run/wpa_supplicant');
  });
});

describe('user names', () => {
  test('parsePasswd keeps the first name per uid and skips junk', () => {
    const users = parsePasswd('root:x:0:0::/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\n# comment\nbroken\n:x:5:5::/:/bin/sh\npi:x:1000:1000::/home/pi:/bin/bash\n');
    expect([...users]).toEqual([[0, 'root'], [1000, 'pi']]);
  });

  test('passwd is re-read after a minute, not before', async () => {
    const root = makeRoot({ 'etc/passwd': 'root:x:0:0::/root:/bin/bash\n' });
    const clock = manualClock();
    const names = new UserNames(root, clock.now);
    expect((await names.lookup())(1001)).toBe('1001');
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/bash\n');
    clock.advance(59_999);
    expect((await names.lookup())(1001)).toBe('1001');
    clock.advance(1);
    expect((await names.lookup())(1001)).toBe('alice');
    expect((await names.lookup())(null)).toBe('');
  });
});
