import { afterEach, describe, expect, test } from 'bun:test';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { readHardwareModel, readSerial } from '../../../agent/system/hardware.ts';
import { makeRoot, PI1_MODEL_B, PI4, PI_ZERO_2W, removeTempRoots } from './helpers.ts';

afterEach(removeTempRoots);

const X86_CPUINFO = 'processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Celeron(R) N5105 @ 2.00GHz\n\n';

describe('readHardwareModel', () => {
  test('Pi 4: decoded from Revision c03114 as PiTunnel names it, not the device-tree string', async () => {
    expect(await readHardwareModel(PI4)).toBe('Pi4 Model B');
  });
  test('an undecodable revision with a device-tree model: the device-tree string', async () => {
    const root = makeRoot({ 'proc/cpuinfo': 'processor\t: 0\nRevision\t: 0000\n', 'proc/device-tree/model': 'Raspberry Pi 9 Model Z Rev 1.0\0' });
    expect(await readHardwareModel(root)).toBe('Raspberry Pi 9 Model Z Rev 1.0');
  });
  test('Pi Zero 2 W without a device-tree model: decoded from Revision 902120', async () => {
    expect(await readHardwareModel(PI_ZERO_2W)).toBe('Pi Zero 2 W');
  });
  test('Pi 1 Model B: old-style Revision 000e', async () => {
    expect(await readHardwareModel(PI1_MODEL_B)).toBe('Pi Model B');
  });
  test('x86: DMI product_name', async () => {
    const root = makeRoot({
      'proc/cpuinfo': X86_CPUINFO,
      'sys/class/dmi/id/product_name': 'OptiPlex 7050\n',
    });
    expect(await readHardwareModel(root)).toBe('OptiPlex 7050');
  });
  test('x86 with a placeholder DMI name: the CPU model name', async () => {
    const root = makeRoot({
      'proc/cpuinfo': X86_CPUINFO,
      'sys/class/dmi/id/product_name': 'To Be Filled By O.E.M.\n',
    });
    expect(await readHardwareModel(root)).toBe('Intel(R) Celeron(R) N5105 @ 2.00GHz');
  });
  test('a revision that is not a Pi code falls through to the CPU model name', async () => {
    const root = makeRoot({ 'proc/cpuinfo': `${X86_CPUINFO}Revision\t: 0000\n` });
    expect(await readHardwareModel(root)).toBe('Intel(R) Celeron(R) N5105 @ 2.00GHz');
  });
  test('nothing known: "Unknown"', async () => {
    expect(await readHardwareModel(makeRoot({}))).toBe('Unknown');
    expect(await readHardwareModel(makeRoot({ 'proc/cpuinfo': 'garbage\n\0\0' }))).toBe('Unknown');
  });
});

describe('readSerial', () => {
  test('Pi 4: cpuinfo Serial, upper-cased as PiTunnel shows it', async () => {
    expect(await readSerial(PI4)).toBe('10000000389253E6');
  });
  test('Pi Zero 2 W: cpuinfo Serial', async () => {
    expect(await readSerial(PI_ZERO_2W)).toBe('00000000A3F1B2C4');
  });
  test('no cpuinfo Serial: the device tree serial-number', async () => {
    const root = makeRoot({
      'proc/cpuinfo': 'processor\t: 0\n',
      'proc/device-tree/serial-number': 'f1e2d3c4b5a69788\0',
    });
    expect(await readSerial(root)).toBe('F1E2D3C4B5A69788');
  });
  test('an all-zero cpuinfo Serial is not a serial', async () => {
    const root = makeRoot({
      'proc/cpuinfo': 'Serial\t\t: 0000000000000000\n',
      'etc/machine-id': '3d1219c7c4c5404aaa1f6d2a48adfda4\n',
    });
    expect(await readSerial(root)).toBe('3D1219C7C4C5404A');
  });
  test('x86: DMI product_serial when readable, skipping placeholders', async () => {
    const root = makeRoot({
      'proc/cpuinfo': X86_CPUINFO,
      'sys/class/dmi/id/product_serial': '5CG1234XYZ\n',
      'etc/machine-id': '3d1219c7c4c5404aaa1f6d2a48adfda4\n',
    });
    expect(await readSerial(root)).toBe('5CG1234XYZ');
    const placeholder = makeRoot({
      'sys/class/dmi/id/product_serial': 'System Serial Number\n',
      'etc/machine-id': '3d1219c7c4c5404aaa1f6d2a48adfda4\n',
    });
    expect(await readSerial(placeholder)).toBe('3D1219C7C4C5404A');
  });
  test('x86 as non-root: product_serial is 0400 root-only, so machine-id', async () => {
    const root = makeRoot({
      'proc/cpuinfo': X86_CPUINFO,
      'sys/class/dmi/id/product_serial': '5CG1234XYZ\n',
      'etc/machine-id': '3d1219c7c4c5404aaa1f6d2a48adfda4\n',
    });
    // Root reads through 0000 permissions, so stand in for "unreadable" with a directory.
    const unreadable = makeRoot({
      'sys/class/dmi/id/product_serial/x': '',
      'etc/machine-id': '3d1219c7c4c5404aaa1f6d2a48adfda4\n',
    });
    chmodSync(join(root, 'sys/class/dmi/id/product_serial'), 0o000);
    const expected = process.getuid?.() === 0 ? '5CG1234XYZ' : '3D1219C7C4C5404A';
    expect(await readSerial(root)).toBe(expected);
    expect(await readSerial(unreadable)).toBe('3D1219C7C4C5404A');
  });
  test('nothing at all: ""', async () => {
    expect(await readSerial(makeRoot({}))).toBe('');
  });
});
