import { describe, expect, test } from 'bun:test';
import { decodeRevision } from '../../../agent/system/revision.ts';

describe('new-style revision codes', () => {
  const cases: [string, string, string, number, string, string][] = [
    // code, model, PCB revision, MB, manufacturer, processor
    ['c03114', 'Pi4 Model B', '1.4', 4096, 'Sony UK', 'BCM2711'],
    ['a03111', 'Pi4 Model B', '1.1', 1024, 'Sony UK', 'BCM2711'],
    ['b03112', 'Pi4 Model B', '1.2', 2048, 'Sony UK', 'BCM2711'],
    ['d03114', 'Pi4 Model B', '1.4', 8192, 'Sony UK', 'BCM2711'],
    ['902120', 'Pi Zero 2 W', '1.0', 512, 'Sony UK', 'BCM2837'],
    ['a02082', 'Pi3 Model B', '1.2', 1024, 'Sony UK', 'BCM2837'],
    ['a22082', 'Pi3 Model B', '1.2', 1024, 'Embest', 'BCM2837'],
    ['a32082', 'Pi3 Model B', '1.2', 1024, 'Sony Japan', 'BCM2837'],
    ['a020d3', 'Pi3 Model B+', '1.3', 1024, 'Sony UK', 'BCM2837'],
    ['9020e0', 'Pi3 Model A+', '1.0', 512, 'Sony UK', 'BCM2837'],
    ['a01041', 'Pi2 Model B', '1.1', 1024, 'Sony UK', 'BCM2836'],
    ['a21041', 'Pi2 Model B', '1.1', 1024, 'Embest', 'BCM2836'],
    ['900092', 'Pi Zero', '1.2', 512, 'Sony UK', 'BCM2835'],
    ['9000c1', 'Pi Zero W', '1.1', 512, 'Sony UK', 'BCM2835'],
    ['900021', 'Pi Model A+', '1.1', 512, 'Sony UK', 'BCM2835'],
    ['900032', 'Pi Model B+', '1.2', 512, 'Sony UK', 'BCM2835'],
    ['a020a0', 'Pi Compute Module 3', '1.0', 1024, 'Sony UK', 'BCM2837'],
    ['a02100', 'Pi Compute Module 3+', '1.0', 1024, 'Sony UK', 'BCM2837'],
    ['c03130', 'Pi 400', '1.0', 4096, 'Sony UK', 'BCM2711'],
    ['b03140', 'Pi Compute Module 4', '1.0', 2048, 'Sony UK', 'BCM2711'],
    ['c04170', 'Pi5 Model B', '1.0', 4096, 'Sony UK', 'BCM2712'],
    ['d04170', 'Pi5 Model B', '1.0', 8192, 'Sony UK', 'BCM2712'],
    ['e04171', 'Pi5 Model B', '1.1', 16384, 'Sony UK', 'BCM2712'],
  ];
  for (const [code, model, revision, memoryMb, manufacturer, processor] of cases) {
    test(`${code} → ${model} rev ${revision}, ${memoryMb} MB`, () => {
      expect(decodeRevision(code)).toEqual({ model, revision, memoryMb, manufacturer, processor });
    });
  }

  test('warranty / over-voltage bits do not change the model', () => {
    expect(decodeRevision('2a02082')?.model).toBe('Pi3 Model B');
    expect(decodeRevision('82a02082')?.model).toBe('Pi3 Model B');
  });

  test('an unknown board type still says it is a Pi', () => {
    expect(decodeRevision('c04ff0')?.model).toBe('Pi (type 0xff)');
  });
});

describe('old-style revision codes', () => {
  const cases: [string, string, string, number, string][] = [
    ['0002', 'Pi Model B', '1.0', 256, 'Egoman'],
    ['0003', 'Pi Model B', '1.0', 256, 'Egoman'],
    ['0004', 'Pi Model B', '2.0', 256, 'Sony UK'],
    ['0005', 'Pi Model B', '2.0', 256, 'Qisda'],
    ['0006', 'Pi Model B', '2.0', 256, 'Egoman'],
    ['0007', 'Pi Model A', '2.0', 256, 'Egoman'],
    ['0008', 'Pi Model A', '2.0', 256, 'Sony UK'],
    ['0009', 'Pi Model A', '2.0', 256, 'Qisda'],
    ['000d', 'Pi Model B', '2.0', 512, 'Egoman'],
    ['000e', 'Pi Model B', '2.0', 512, 'Sony UK'],
    ['000f', 'Pi Model B', '2.0', 512, 'Egoman'],
    ['0010', 'Pi Model B+', '1.2', 512, 'Sony UK'],
    ['0011', 'Pi Compute Module 1', '1.0', 512, 'Sony UK'],
    ['0012', 'Pi Model A+', '1.1', 256, 'Sony UK'],
    ['0013', 'Pi Model B+', '1.2', 512, 'Embest'],
    ['0014', 'Pi Compute Module 1', '1.0', 512, 'Embest'],
    ['0015', 'Pi Model A+', '1.1', 256, 'Embest'],
  ];
  for (const [code, model, revision, memoryMb, manufacturer] of cases) {
    test(`${code} → ${model} rev ${revision}`, () => {
      expect(decodeRevision(code)).toEqual({ model, revision, memoryMb, manufacturer, processor: 'BCM2835' });
    });
  }

  test('the "1000" over-volted prefix is ignored', () => {
    expect(decodeRevision('1000000e')?.model).toBe('Pi Model B');
    expect(decodeRevision('10000002')?.revision).toBe('1.0');
  });
});

test('things that are not revision codes', () => {
  for (const code of ['', 'zz', '0000', '0001', '000a', '0016', '123456789', 'c03114 extra']) {
    expect(decodeRevision(code)).toBeNull();
  }
});

test('tolerates whitespace, upper case and a 0x prefix', () => {
  expect(decodeRevision(' 0xC03114 \n')?.model).toBe('Pi4 Model B');
});
