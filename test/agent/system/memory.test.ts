import { afterEach, describe, expect, test } from 'bun:test';
import { memoryReport, parseMeminfo, readMeminfo } from '../../../agent/system/memory.ts';
import { makeRoot, PI4, PI_ZERO_2W, removeTempRoots } from './helpers.ts';

afterEach(removeTempRoots);

describe('readMeminfo on the fixtures', () => {
  test('Pi 4 (4 GB)', async () => {
    const m = await readMeminfo(PI4);
    expect(m).toEqual({
      total: 3884328 * 1024,
      free: 2690412 * 1024,
      available: 3343036 * 1024,
      buffers: 60872 * 1024,
      cached: 694592 * 1024,
      swapTotal: 102396 * 1024,
      swapFree: 98300 * 1024,
    });
    expect(memoryReport(m)).toEqual({
      total: 3977551872,
      available: 3423268864,
      used: 554283008,
      used_percent: 13.9,
      swap_total: 104853504,
      swap_used: 4194304,
    });
  });

  test('Pi Zero 2 W (512 MB)', async () => {
    expect(memoryReport(await readMeminfo(PI_ZERO_2W))).toEqual({
      total: 450084864,
      available: 329846784,
      used: 120238080,
      used_percent: 26.7,
      swap_total: 104853504,
      swap_used: 0,
    });
  });
});

describe('malformed meminfo', () => {
  test('a missing file reads as all zeros, with 0% used rather than NaN', async () => {
    const report = memoryReport(await readMeminfo(makeRoot({})));
    expect(report).toEqual({ total: 0, available: 0, used: 0, used_percent: 0, swap_total: 0, swap_used: 0 });
  });

  test('empty and garbage text read as zeros', () => {
    for (const text of ['', '\n\n', 'garbage\n:::\nMemTotal: lots kB\nMemFree: -5 kB\nSwapTotal: 1e400 kB\n']) {
      expect(parseMeminfo(text)).toEqual({
        total: 0, free: 0, available: 0, buffers: 0, cached: 0, swapTotal: 0, swapFree: 0,
      });
    }
  });

  test('a kernel without MemAvailable (< 3.14): free + buffers + cached', () => {
    const m = parseMeminfo('MemTotal: 1000 kB\nMemFree: 300 kB\nBuffers: 50 kB\nCached: 150 kB\n');
    expect(m.available).toBe(500 * 1024);
    expect(memoryReport(m).used_percent).toBe(50);
  });

  test('available is capped at total and swap free at swap total', () => {
    const m = parseMeminfo('MemTotal: 100 kB\nMemAvailable: 900 kB\nSwapTotal: 10 kB\nSwapFree: 20 kB\n');
    expect(memoryReport(m)).toEqual({
      total: 102400, available: 102400, used: 0, used_percent: 0, swap_total: 10240, swap_used: 0,
    });
  });

  test('missing SwapFree means no swap in use', () => {
    expect(parseMeminfo('MemTotal: 100 kB\nSwapTotal: 10 kB\n').swapFree).toBe(10240);
  });
});
