import { afterEach, describe, expect, test } from 'bun:test';
import {
  osVersion,
  parseOsRelease,
  readHostname,
  readKernel,
  readLoadavg,
  readOsRelease,
  readUptime,
  unameArch,
} from '../../../agent/system/os.ts';
import { makeRoot, PI4, PI_ZERO_2W, removeTempRoots } from './helpers.ts';

afterEach(removeTempRoots);

describe('Pi 4 (bookworm, arm64)', () => {
  test('hostname, kernel, uptime, load', async () => {
    expect(await readHostname(PI4)).toBe('pi4-lab');
    expect(await readKernel(PI4)).toBe('6.6.51+rpt-rpi-v8');
    expect(await readUptime(PI4)).toBe(186432.57);
    expect(await readLoadavg(PI4)).toEqual([0.42, 0.31, 0.27]);
  });
  test('os-release', async () => {
    const release = await readOsRelease(PI4);
    expect(release.ID).toBe('debian');
    expect(release.VERSION_CODENAME).toBe('bookworm');
    expect(osVersion(release)).toBe('Debian GNU/Linux 12 (bookworm)');
  });
});

describe('Pi Zero 2 W (bullseye, armhf)', () => {
  test('hostname, kernel, uptime, load', async () => {
    expect(await readHostname(PI_ZERO_2W)).toBe('zero2w');
    expect(await readKernel(PI_ZERO_2W)).toBe('6.1.21-v7+');
    expect(await readUptime(PI_ZERO_2W)).toBe(3614.82);
    expect(await readLoadavg(PI_ZERO_2W)).toEqual([0.08, 0.12, 0.09]);
  });
  test('os-release', async () => {
    const release = await readOsRelease(PI_ZERO_2W);
    expect(release.ID_LIKE).toBe('debian');
    expect(osVersion(release)).toBe('Raspbian GNU/Linux 11 (bullseye)');
  });
});

describe('os-release parsing', () => {
  test('quotes, escapes, comments and blank lines', () => {
    const release = parseOsRelease(
      '# comment\n\nNAME="Foo \\"Bar\\" OS"\nID=foo\nVERSION=\'1.0 LTS\'\nBROKEN LINE\n',
    );
    expect(release).toEqual({ NAME: 'Foo "Bar" OS', ID: 'foo', VERSION: '1.0 LTS' });
  });
  test('without PRETTY_NAME: NAME + VERSION, NAME + VERSION_ID, NAME, then "Linux"', () => {
    expect(osVersion({ NAME: 'Ubuntu', VERSION: '18.04 bionic' })).toBe('Ubuntu 18.04 bionic');
    expect(osVersion({ NAME: 'Alpine Linux', VERSION_ID: '3.20.1' })).toBe('Alpine Linux 3.20.1');
    expect(osVersion({ NAME: 'Arch Linux' })).toBe('Arch Linux');
    expect(osVersion({})).toBe('Linux');
  });
  test('falls back to /usr/lib/os-release', async () => {
    const root = makeRoot({ 'usr/lib/os-release': 'PRETTY_NAME="Fedora Linux 40"\n' });
    expect(osVersion(await readOsRelease(root))).toBe('Fedora Linux 40');
  });
});

describe('missing or garbled files give sane defaults', () => {
  test('an empty root', async () => {
    const root = makeRoot({});
    expect(await readHostname(root)).toBe('');
    expect(await readKernel(root)).toBe('');
    expect(await readUptime(root)).toBe(0);
    expect(await readLoadavg(root)).toEqual([0, 0, 0]);
    expect(await readOsRelease(root)).toEqual({});
  });
  test('garbage uptime and loadavg', async () => {
    const root = makeRoot({ 'proc/uptime': 'not a number\n', 'proc/loadavg': '0.5 x\n' });
    expect(await readUptime(root)).toBe(0);
    expect(await readLoadavg(root)).toEqual([0.5, 0, 0]);
  });
});

test('architecture names follow uname -m', () => {
  expect(unameArch('x64')).toBe('x86_64');
  expect(unameArch('arm64')).toBe('aarch64');
  expect(unameArch('arm')).toBe('armv7l');
  expect(unameArch('ia32')).toBe('i686');
  expect(unameArch('mips')).toBe('mips');
});
