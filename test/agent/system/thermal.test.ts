import { afterEach, describe, expect, test } from 'bun:test';
import {
  findCpuThermalZone,
  GpuTempReader,
  parseVcgencmdTemp,
  readCpuTemp,
} from '../../../agent/system/thermal.ts';
import { fakeVcgencmd, makeRoot, manualClock, PI4, PI_ZERO_2W, removeTempRoots } from './helpers.ts';

afterEach(removeTempRoots);

describe('CPU temperature', () => {
  test('Pi 4: cpu-thermal 54768 m°C → 54.768 °C (unrounded, like PiTunnel)', async () => {
    const zone = await findCpuThermalZone(PI4);
    expect(zone).toBe('/sys/class/thermal/thermal_zone0/temp');
    expect(await readCpuTemp(PI4, zone)).toBe(54.768);
  });
  test('Pi Zero 2 W: 48.312 °C', async () => {
    expect(await readCpuTemp(PI_ZERO_2W, await findCpuThermalZone(PI_ZERO_2W))).toBe(48.312);
  });
  test('prefers x86_pkg_temp over other zones, whatever their order', async () => {
    const root = makeRoot({
      'sys/class/thermal/thermal_zone0/type': 'acpitz\n',
      'sys/class/thermal/thermal_zone0/temp': '27800\n',
      'sys/class/thermal/thermal_zone1/type': 'INT3400 Thermal\n',
      'sys/class/thermal/thermal_zone1/temp': '20000\n',
      'sys/class/thermal/thermal_zone10/type': 'x86_pkg_temp\n',
      'sys/class/thermal/thermal_zone10/temp': '45000\n',
    });
    expect(await readCpuTemp(root, await findCpuThermalZone(root))).toBe(45);
  });
  test('no preferred type: the lowest-numbered zone', async () => {
    const root = makeRoot({
      'sys/class/thermal/thermal_zone2/type': 'soc-thermal\n',
      'sys/class/thermal/thermal_zone2/temp': '40000\n',
      'sys/class/thermal/thermal_zone10/type': 'gpu-thermal\n',
      'sys/class/thermal/thermal_zone10/temp': '41000\n',
    });
    expect(await findCpuThermalZone(root)).toBe('/sys/class/thermal/thermal_zone2/temp');
  });
  test('no zones, or an unreadable/garbled temp: null', async () => {
    const none = makeRoot({});
    expect(await findCpuThermalZone(none)).toBeNull();
    expect(await readCpuTemp(none, null)).toBeNull();
    const garbled = makeRoot({
      'sys/class/thermal/thermal_zone0/type': 'cpu-thermal\n',
      'sys/class/thermal/thermal_zone0/temp': 'N/A\n',
    });
    expect(await readCpuTemp(garbled, await findCpuThermalZone(garbled))).toBeNull();
    expect(await readCpuTemp(garbled, '/sys/class/thermal/thermal_zone9/temp')).toBeNull();
  });
});

test('parseVcgencmdTemp', () => {
  expect(parseVcgencmdTemp("temp=55.3'C\n")).toBe(55.3);
  expect(parseVcgencmdTemp("temp=48'C")).toBe(48);
  expect(parseVcgencmdTemp("temp=-2.1'C")).toBe(-2.1);
  expect(parseVcgencmdTemp('VCHI initialization failed\n')).toBeNull();
  expect(parseVcgencmdTemp('')).toBeNull();
});

describe('GpuTempReader', () => {
  test('runs vcgencmd measure_temp where it is installed', async () => {
    const run = fakeVcgencmd("temp=55.3'C\n");
    const reader = new GpuTempReader({ root: PI4, runCommand: run });
    expect(await reader.read()).toBe(55.3);
    expect(run.calls).toEqual([['/usr/bin/vcgencmd', 'measure_temp']]);
  });

  test('without vcgencmd: null, and nothing is spawned', async () => {
    const run = fakeVcgencmd("temp=55.3'C\n");
    const reader = new GpuTempReader({ root: makeRoot({ 'proc/cpuinfo': '' }), runCommand: run });
    expect(await reader.read()).toBeNull();
    expect(run.calls).toEqual([]);
  });

  test('finds the legacy /opt/vc/bin location', async () => {
    const run = fakeVcgencmd("temp=50.0'C\n");
    const reader = new GpuTempReader({ root: makeRoot({ 'opt/vc/bin/vcgencmd': '' }), runCommand: run });
    expect(await reader.read()).toBe(50);
    expect(run.calls).toEqual([['/opt/vc/bin/vcgencmd', 'measure_temp']]);
  });

  test('a failing or unparsable vcgencmd gives null', async () => {
    expect(await new GpuTempReader({ root: PI4, runCommand: fakeVcgencmd(new Error('exit 255')) }).read()).toBeNull();
    expect(await new GpuTempReader({ root: PI4, runCommand: fakeVcgencmd('VCHI initialization failed') }).read()).toBeNull();
  });

  test('cached for 5 s, then returned stale while a background refresh runs', async () => {
    const clock = manualClock();
    let output = "temp=55.3'C\n";
    const calls: string[][] = [];
    const reader = new GpuTempReader({
      root: PI4,
      now: clock.now,
      runCommand: async (argv) => {
        calls.push([...argv]);
        return output;
      },
    });
    expect(await reader.read()).toBe(55.3);
    output = "temp=60.1'C\n";
    clock.advance(4999);
    expect(await reader.read()).toBe(55.3);
    expect(calls.length).toBe(1);
    clock.advance(1);
    // Stale: this call answers at once with the old value and starts a refresh.
    expect(await reader.read()).toBe(55.3);
    await Bun.sleep(1);
    expect(calls.length).toBe(2);
    expect(await reader.read()).toBe(60.1);
  });

  test('tick() refreshes only a stale reading', async () => {
    const clock = manualClock();
    const run = fakeVcgencmd("temp=55.3'C\n");
    const reader = new GpuTempReader({ root: PI4, now: clock.now, runCommand: run });
    reader.tick();
    await Bun.sleep(1);
    expect(run.calls.length).toBe(1);
    reader.tick();
    await Bun.sleep(1);
    expect(run.calls.length).toBe(1);
    clock.advance(5000);
    reader.tick();
    await Bun.sleep(1);
    expect(run.calls.length).toBe(2);
  });

  test('concurrent first reads spawn once', async () => {
    const run = fakeVcgencmd("temp=55.3'C\n");
    const reader = new GpuTempReader({ root: PI4, runCommand: run });
    expect(await Promise.all([reader.read(), reader.read(), reader.read()])).toEqual([55.3, 55.3, 55.3]);
    expect(run.calls.length).toBe(1);
  });
});
