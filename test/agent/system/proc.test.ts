import { afterEach, describe, expect, test } from 'bun:test';
import {
  isFile,
  listDir,
  parseColonFields,
  readLine,
  readText,
  resolvePath,
  round,
  toNumber,
} from '../../../agent/system/proc.ts';
import { makeRoot, PI4, removeTempRoots } from './helpers.ts';

afterEach(removeTempRoots);

describe('resolvePath', () => {
  test('the live root leaves paths alone', () => {
    expect(resolvePath('/', '/proc/stat')).toBe('/proc/stat');
  });
  test('a fixture root is prefixed, with or without trailing slash', () => {
    expect(resolvePath('/tmp/snap', '/proc/stat')).toBe('/tmp/snap/proc/stat');
    expect(resolvePath('/tmp/snap/', '/proc/stat')).toBe('/tmp/snap/proc/stat');
  });
});

describe('file readers never throw', () => {
  test('readText returns the content, or null for a missing file or a directory', async () => {
    expect(await readText(PI4, '/proc/loadavg')).toBe('0.42 0.31 0.27 2/213 4312\n');
    expect(await readText(PI4, '/proc/nope')).toBeNull();
    expect(await readText(PI4, '/proc')).toBeNull();
  });
  test('readLine strips the device tree NUL terminator', async () => {
    expect(await readLine(PI4, '/proc/device-tree/model')).toBe('Raspberry Pi 4 Model B Rev 1.4');
  });
  test('readLine gives null for an empty or whitespace-only file', async () => {
    const root = makeRoot({ 'a': '', 'b': ' \n\n', 'c': '\0' });
    expect(await readLine(root, '/a')).toBeNull();
    expect(await readLine(root, '/b')).toBeNull();
    expect(await readLine(root, '/c')).toBeNull();
  });
  test('listDir lists, or gives [] for a missing directory', async () => {
    expect((await listDir(PI4, '/sys/class/net')).sort()).toEqual(['eth0', 'lo', 'wlan0']);
    expect(await listDir(PI4, '/sys/class/nope')).toEqual([]);
  });
  test('isFile tells files from directories and missing paths', async () => {
    expect(await isFile(PI4, '/usr/bin/vcgencmd')).toBe(true);
    expect(await isFile(PI4, '/usr/bin')).toBe(false);
    expect(await isFile(PI4, '/usr/bin/nope')).toBe(false);
  });
});

describe('parseColonFields', () => {
  test('trims tab-padded keys and keeps the first of repeated keys', () => {
    const fields = parseColonFields('processor\t: 0\nSerial\t\t: abc\nprocessor\t: 1\nCPU architecture: 8\n');
    expect(fields.get('processor')).toBe('0');
    expect(fields.get('Serial')).toBe('abc');
    expect(fields.get('CPU architecture')).toBe('8');
  });
  test('ignores lines without a key', () => {
    expect([...parseColonFields(':x\n\ngarbage\n').keys()]).toEqual([]);
  });
});

test('toNumber accepts finite non-negative numbers only', () => {
  expect(toNumber('12.5')).toBe(12.5);
  expect(toNumber('abc', 7)).toBe(7);
  expect(toNumber('-1', 7)).toBe(7);
  expect(toNumber(undefined, 3)).toBe(3);
  expect(toNumber('Infinity', 3)).toBe(3);
});

test('round', () => {
  expect(round(13.93528, 1)).toBe(13.9);
  expect(round(62.16353, 1)).toBe(62.2);
  expect(round(0.052724, 2)).toBe(0.05);
});
