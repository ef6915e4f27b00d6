import { afterEach, describe, expect, test } from 'bun:test';
import { formatMac, parseDefaultRouteInterface, readPrimaryMac } from '../../../agent/system/network.ts';
import { makeRoot, PI4, PI_ZERO_2W, removeTempRoots } from './helpers.ts';

afterEach(removeTempRoots);

const HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';

describe('readPrimaryMac on the fixtures', () => {
  test('Pi 4: eth0 (metric 100) wins over wlan0 (metric 600), listed first', async () => {
    expect(await readPrimaryMac(PI4)).toBe('DCA6321A2B3C');
  });
  test('Pi Zero 2 W: wlan0', async () => {
    expect(await readPrimaryMac(PI_ZERO_2W)).toBe('B827EB4C5D6E');
  });
});

describe('parseDefaultRouteInterface', () => {
  test('ignores non-default routes and routes that are down', () => {
    const text =
      HEADER +
      'eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n' +
      'usb0\t00000000\t0101A8C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n' +
      'wlan0\t00000000\t0101A8C0\t0003\t0\t0\t300\t00000000\t0\t0\t0\n';
    expect(parseDefaultRouteInterface(text)).toBe('wlan0');
  });
  test('no default route, empty or garbage: null', () => {
    expect(parseDefaultRouteInterface(HEADER + 'eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n')).toBeNull();
    expect(parseDefaultRouteInterface('')).toBeNull();
    expect(parseDefaultRouteInterface('garbage\nmore garbage\n')).toBeNull();
  });
});

test('formatMac', () => {
  expect(formatMac('dc:a6:32:1a:2b:3c\n')).toBe('DCA6321A2B3C');
  expect(formatMac('B8-27-EB-2A-7F-C1')).toBe('B827EB2A7FC1');
  expect(formatMac('00:00:00:00:00:00')).toBeNull();
  expect(formatMac('')).toBeNull();
  expect(formatMac('de:ad:be:ef')).toBeNull();
});

describe('fallbacks', () => {
  test('no default route: the first non-loopback interface by name', async () => {
    const root = makeRoot({
      'proc/net/route': HEADER,
      'sys/class/net/lo/address': '00:00:00:00:00:00\n',
      'sys/class/net/wlan0/address': 'dc:a6:32:00:00:02\n',
      'sys/class/net/eth0/address': 'dc:a6:32:00:00:01\n',
    });
    expect(await readPrimaryMac(root)).toBe('DCA632000001');
  });
  test('default route over a tunnel without a MAC (wg0): falls back to a real interface', async () => {
    const root = makeRoot({
      'proc/net/route': HEADER + 'wg0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n',
      'sys/class/net/wg0/type': '65534\n',
      'sys/class/net/eth0/address': 'dc:a6:32:00:00:01\n',
    });
    expect(await readPrimaryMac(root)).toBe('DCA632000001');
  });
  test('no /proc/net/route and no interfaces: ""', async () => {
    expect(await readPrimaryMac(makeRoot({}))).toBe('');
  });
});
