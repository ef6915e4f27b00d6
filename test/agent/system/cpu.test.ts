import { afterEach, describe, expect, test } from 'bun:test';
import { CpuSampler, cpuPercent, parseCpuTimes, readCpuTimes } from '../../../agent/system/cpu.ts';
import { bumpCpu, copyFixture, makeRoot, manualClock, PI4, PI_ZERO_2W, removeTempRoots } from './helpers.ts';

afterEach(removeTempRoots);

describe('readCpuTimes on the fixtures', () => {
  test('Pi 4: 4 cores; idle includes iowait; guest columns are not counted twice', async () => {
    // user 207000 nice 1560 system 76771 idle 74116657 iowait 11953 irq 0 softirq 7836 steal 0
    expect(await readCpuTimes(PI4)).toEqual({ total: 74421777, idle: 74128610, cores: 4 });
  });
  test('Pi Zero 2 W: 4 cores', async () => {
    expect(await readCpuTimes(PI_ZERO_2W)).toEqual({ total: 1416660, idle: 1372990, cores: 4 });
  });
  test('since-boot usage', async () => {
    expect(cpuPercent(null, (await readCpuTimes(PI4))!)).toBe(0.4);
    expect(cpuPercent(null, (await readCpuTimes(PI_ZERO_2W))!)).toBe(3.1);
  });
});

describe('parseCpuTimes', () => {
  test('guest and guest_nice are ignored (already part of user and nice)', () => {
    expect(parseCpuTimes('cpu  10 0 10 80 0 0 0 0 500 500\ncpu0 10 0 10 80 0 0 0 0 500 500\n')).toEqual({
      total: 100, idle: 80, cores: 1,
    });
  });
  test('old kernels with only four columns', () => {
    expect(parseCpuTimes('cpu 1 2 3 4\ncpu0 1 2 3 4\ncpu1 0 0 0 0\n')).toEqual({ total: 10, idle: 4, cores: 2 });
  });
  test('malformed input gives null', () => {
    expect(parseCpuTimes('')).toBeNull();
    expect(parseCpuTimes('intr 1 2 3\nctxt 5\n')).toBeNull();
    expect(parseCpuTimes('cpu  1 x 3 4\n')).toBeNull();
    expect(parseCpuTimes('cpu  1 2\n')).toBeNull();
  });
  test('missing file gives null', async () => {
    expect(await readCpuTimes(makeRoot({}))).toBeNull();
  });
});

test('cpuPercent: exact share between two snapshots, null when no time passed', () => {
  const a = { total: 1000, idle: 800, cores: 4 };
  expect(cpuPercent(a, { total: 1400, idle: 1100, cores: 4 })).toBe(25);
  expect(cpuPercent(a, { total: 1003, idle: 801, cores: 4 })).toBe(66.7);
  expect(cpuPercent(a, a)).toBeNull();
  expect(cpuPercent(a, { total: 900, idle: 700, cores: 4 })).toBeNull();
});

describe('CpuSampler', () => {
  test('first call: since boot; then the share since the previous snapshot', async () => {
    const root = copyFixture(PI4);
    const clock = manualClock();
    const sampler = new CpuSampler(() => readCpuTimes(root), { now: clock.now });
    expect(await sampler.usage()).toBe(0.4);
    expect(sampler.cores()).toBe(4);

    // One second on four cores: 400 jiffies, 300 of them idle (290 idle + 10 iowait) → 25 %.
    bumpCpu(root, { user: 75, system: 25, idle: 290, iowait: 10 });
    clock.advance(1000);
    expect(await sampler.usage()).toBe(25);

    // All four cores busy for the next second.
    bumpCpu(root, { user: 300, system: 80, softirq: 20 });
    clock.advance(1000);
    expect(await sampler.usage()).toBe(100);
  });

  test('a snapshot younger than 200 ms is kept: the last value is returned without reading', async () => {
    const root = copyFixture(PI4);
    const clock = manualClock();
    let reads = 0;
    const sampler = new CpuSampler(() => {
      reads++;
      return readCpuTimes(root);
    }, { now: clock.now });
    await sampler.usage();
    bumpCpu(root, { user: 200, idle: 200 });
    clock.advance(199);
    expect(await sampler.usage()).toBe(0.4);
    expect(reads).toBe(1);
    clock.advance(1);
    expect(await sampler.usage()).toBe(50);
    expect(reads).toBe(2);
  });

  test('tick() refreshes the baseline so the next usage() reports the window since the tick', async () => {
    const root = copyFixture(PI4);
    const clock = manualClock();
    let lastRead: Promise<unknown> = Promise.resolve();
    const sampler = new CpuSampler(() => (lastRead = readCpuTimes(root)), { now: clock.now });
    await sampler.usage();
    bumpCpu(root, { user: 400 });
    clock.advance(1000);
    sampler.tick();
    // The tick's read is done, and a timer runs only once every promise job queued behind it (the
    // sampler's handling of it) has run: no guessing how long the read takes under load.
    await lastRead;
    await new Promise((resolve) => setTimeout(resolve, 0));
    bumpCpu(root, { idle: 400 });
    clock.advance(300);
    // Since the tick only idle time passed; without the tick it would be 50 %.
    expect(await sampler.usage()).toBe(0);
  });

  test('tick() inside the interval does not read', async () => {
    const root = copyFixture(PI4);
    const clock = manualClock();
    let reads = 0;
    const sampler = new CpuSampler(() => {
      reads++;
      return readCpuTimes(root);
    }, { now: clock.now });
    await sampler.usage();
    clock.advance(150);
    sampler.tick();
    await Bun.sleep(1);
    expect(reads).toBe(1);
    clock.advance(50);
    sampler.tick();
    await Bun.sleep(1);
    expect(reads).toBe(2);
  });

  test('tick() never throws or rejects when the read fails', async () => {
    let reads = 0;
    const sampler = new CpuSampler(async () => {
      reads++;
      throw new Error('EIO');
    }, { now: manualClock().now });
    expect(() => sampler.tick()).not.toThrow();
    await Bun.sleep(1);
    expect(reads).toBe(1);
  });

  test('concurrent calls share one read', async () => {
    const root = copyFixture(PI4);
    let reads = 0;
    const sampler = new CpuSampler(() => {
      reads++;
      return readCpuTimes(root);
    }, { now: manualClock().now });
    const results = await Promise.all([sampler.usage(), sampler.usage(), sampler.usage()]);
    expect(results).toEqual([0.4, 0.4, 0.4]);
    expect(reads).toBe(1);
  });

  test('an unreadable /proc/stat gives 0 and 1 core, not an exception', async () => {
    const sampler = new CpuSampler(() => readCpuTimes(makeRoot({ 'proc/stat': 'garbage' })));
    expect(await sampler.usage()).toBe(0);
    expect(sampler.cores()).toBe(1);
  });
});
