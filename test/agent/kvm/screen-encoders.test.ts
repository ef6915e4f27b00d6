// The screen's encoders: the JPEG decodes (with an independent decoder) to the picture within JPEG
// error, follows the standard tables, restarts at every MCU row, and its row cache gives the very
// bytes a full encode gives; the PNG decodes exactly. Also the image helpers every backend uses.
import { describe, expect, test } from 'bun:test';
import { createImage, downscale, fillRect, fitWithin, imageSize, rgb, words, type RgbaImage } from '../../../agent/kvm/screen/image.ts';
import { encodeJpeg, HUFFMAN, JpegRowEncoder } from '../../../agent/kvm/screen/jpeg.ts';
import { encodePng } from '../../../agent/kvm/screen/png.ts';
import { SimulatedScreen } from '../../../agent/kvm/screen/simulated.ts';
import { decodeJpeg, decodePng, meanError } from './screen-helpers.ts';

/** Smooth gradients with a few hard edges: what a desktop looks like to a codec. */
function testImage(width: number, height: number): RgbaImage {
  const image = createImage(width, height);
  const px = words(image);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) px[y * width + x] = rgb(Math.floor((x * 255) / width), Math.floor((y * 255) / height), 128);
  fillRect(image, width / 4, height / 4, width / 2, height / 8, rgb(250, 250, 250));
  fillRect(image, width / 3, height / 2, width / 5, height / 5, rgb(200, 20, 40));
  return image;
}

/** The JPEG's segments up to the scan (marker → payload), and where the entropy-coded data starts. */
function parse(jpeg: Uint8Array): { segments: { marker: number; body: Uint8Array }[]; scan: number } {
  const out: { marker: number; body: Uint8Array }[] = [];
  let i = 2;
  for (;;) {
    const marker = jpeg[i + 1]!;
    const length = (jpeg[i + 2]! << 8) | jpeg[i + 3]!;
    out.push({ marker, body: jpeg.subarray(i + 4, i + 2 + length) });
    i += 2 + length;
    if (marker === 0xda) return { segments: out, scan: i };
  }
}
const segments = (jpeg: Uint8Array) => parse(jpeg).segments;

describe('JPEG', () => {
  test('starts with SOI and a JFIF APP0, ends with EOI, and says its size in SOF0 (4:2:0)', () => {
    const jpeg = encodeJpeg(testImage(320, 200), 75);
    expect([...jpeg.subarray(0, 2)]).toEqual([0xff, 0xd8]);
    expect([...jpeg.subarray(-2)]).toEqual([0xff, 0xd9]);
    const segs = segments(jpeg);
    expect(segs[0]!.marker).toBe(0xe0);
    expect(String.fromCharCode(...segs[0]!.body.subarray(0, 4))).toBe('JFIF');
    const sof = segs.find((s) => s.marker === 0xc0)!.body;
    expect([sof[0], (sof[1]! << 8) | sof[2]!, (sof[3]! << 8) | sof[4]!, sof[5]]).toEqual([8, 200, 320, 3]);
    expect([sof[7], sof[10], sof[13]]).toEqual([0x22, 0x11, 0x11]);
    expect(imageSize(jpeg)).toEqual({ width: 320, height: 200 });
  });

  test('quality scales the Annex K tables as libjpeg does', () => {
    const dqt = (quality: number) => segments(encodeJpeg(testImage(16, 16), quality)).find((s) => s.marker === 0xdb)!.body;
    // Table 0 (luma) in zigzag order: Annex K.1 starts 16 11 12 14 12 10 16 14; table 1 (chroma) 17 18 18 24 21 24 47 26.
    const q50 = dqt(50);
    expect(q50[0]).toBe(0);
    expect([...q50.subarray(1, 9)]).toEqual([16, 11, 12, 14, 12, 10, 16, 14]);
    expect(q50[65]).toBe(1);
    expect([...q50.subarray(66, 74)]).toEqual([17, 18, 18, 24, 21, 24, 47, 26]);
    // q ≥ 50: scale 200 − 2q; q < 50: 5000/q; (v·scale + 50)/100, clamped to 1..255.
    expect([...dqt(75).subarray(1, 5)]).toEqual([8, 6, 6, 7]);
    expect([...dqt(10).subarray(1, 5)]).toEqual([80, 55, 60, 70]);
    expect([...dqt(100).subarray(1, 65)].every((v) => v === 1)).toBe(true);
    expect([...dqt(1).subarray(1, 65)].every((v) => v === 255)).toBe(true);
  });

  test('the Huffman tables are the standard ones, complete', () => {
    for (const table of Object.values(HUFFMAN)) expect(table.values.length).toBe(table.bits.reduce((a, b) => a + b, 0));
    expect(HUFFMAN.acLuma.values.length).toBe(162);
    expect(HUFFMAN.acChroma.values.length).toBe(162);
    const dht = segments(encodeJpeg(testImage(16, 16), 50)).find((s) => s.marker === 0xc4)!.body;
    expect(dht.length).toBe(4 * 17 + 12 + 162 + 12 + 162);
  });

  test('a restart marker ends every MCU row but the last, RST0..RST7 in turn', () => {
    const width = 100;
    const height = 200; // 7 MCU columns, 13 MCU rows
    const jpeg = encodeJpeg(testImage(width, height), 80);
    const dri = segments(jpeg).find((s) => s.marker === 0xdd)!.body;
    expect((dri[0]! << 8) | dri[1]!).toBe(7);
    const scanStart = parse(jpeg).scan;
    const markers: number[] = [];
    for (let i = scanStart; i < jpeg.length - 2; i++) if (jpeg[i] === 0xff && jpeg[i + 1]! >= 0xd0 && jpeg[i + 1]! <= 0xd7) markers.push(jpeg[i + 1]! - 0xd0);
    expect(markers).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3]);
  });

  test('decodes to the picture within JPEG error, and better at a higher quality', () => {
    const image = testImage(640, 360);
    const low = encodeJpeg(image, 30);
    const high = encodeJpeg(image, 95);
    const lowDecoded = decodeJpeg(low);
    const highDecoded = decodeJpeg(high);
    expect([highDecoded.width, highDecoded.height]).toEqual([640, 360]);
    expect(meanError(image, highDecoded)).toBeLessThan(2);
    expect(meanError(image, lowDecoded)).toBeLessThan(6);
    expect(meanError(image, highDecoded)).toBeLessThan(meanError(image, lowDecoded));
    expect(high.length).toBeGreaterThan(low.length);
  });

  test('the simulated screen at 1280×720 decodes within JPEG error', () => {
    const screen = new SimulatedScreen();
    const image = screen.render(1_000);
    const decoded = decodeJpeg(encodeJpeg(image, 85));
    expect([decoded.width, decoded.height]).toEqual([1280, 720]);
    expect(meanError(image, decoded)).toBeLessThan(1.5);
  });

  test('sizes that are not multiples of 16 (edges replicated) decode at their own size', () => {
    for (const [w, h] of [[1, 1], [17, 1], [33, 17], [15, 31], [250, 141]] as const) {
      const image = testImage(w, h);
      const decoded = decodeJpeg(encodeJpeg(image, 90));
      expect([decoded.width, decoded.height]).toEqual([w, h]);
      expect(meanError(image, decoded)).toBeLessThan(8);
    }
  });

  test('the row cache gives byte for byte what a full encode of the same frame gives', () => {
    const first = testImage(640, 360);
    const second = createImage(640, 360);
    second.data.set(first.data);
    fillRect(second, 300, 90, 40, 20, rgb(0, 255, 0)); // lines 90..109: MCU rows 5 and 6
    const cached = new JpegRowEncoder(80);
    const one = cached.encode(first);
    expect(cached.lastStats).toEqual({ rowsEncoded: 23, rowsReused: 0 });
    const two = cached.encode(second);
    expect(cached.lastStats).toEqual({ rowsEncoded: 2, rowsReused: 21 });
    expect(two).toEqual(new JpegRowEncoder(80).encode(second));
    expect(two).not.toEqual(one);
    // Unchanged again: every row reused; back to the first picture: the changed rows again.
    expect(cached.encode(second)).toEqual(two);
    expect(cached.lastStats.rowsEncoded).toBe(0);
    expect(cached.encode(first)).toEqual(one);
    expect(cached.lastStats.rowsEncoded).toBe(2);
    expect(decodeJpeg(two).data).toEqual(decodeJpeg(new JpegRowEncoder(80).encode(second)).data);
  });

  test('a new size starts over (no stale rows)', () => {
    const encoder = new JpegRowEncoder(70);
    encoder.encode(testImage(64, 64));
    const small = testImage(32, 48);
    expect(encoder.encode(small)).toEqual(encodeJpeg(small, 70));
    expect(encoder.lastStats).toEqual({ rowsEncoded: 3, rowsReused: 0 });
  });

  test('refuses an empty or oversized picture', () => {
    expect(() => encodeJpeg({ width: 0, height: 10, data: new Uint8Array(0) }, 50)).toThrow(RangeError);
    expect(() => encodeJpeg({ width: 70000, height: 1, data: new Uint8Array(70000 * 4) }, 50)).toThrow(RangeError);
  });
});

describe('PNG', () => {
  test('decodes to exactly the picture (RGB, every filter the encoder picks)', () => {
    const screen = new SimulatedScreen({ width: 640, height: 360 });
    for (const image of [testImage(101, 37), screen.render(5), testImage(1, 1)]) {
      const png = encodePng(image);
      const decoded = decodePng(png);
      expect([decoded.width, decoded.height]).toEqual([image.width, image.height]);
      expect(decoded.data).toEqual(image.data);
      expect(imageSize(png)).toEqual({ width: image.width, height: image.height });
    }
  });

  test('every chunk carries the right CRC-32', () => {
    const png = encodePng(testImage(50, 20));
    const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
    const types: string[] = [];
    for (let at = 8; at < png.length; ) {
      const length = view.getUint32(at);
      types.push(String.fromCharCode(...png.subarray(at + 4, at + 8)));
      expect(view.getUint32(at + 8 + length)).toBe(Bun.hash.crc32(png.subarray(at + 4, at + 8 + length)));
      at += 12 + length;
    }
    expect(types).toEqual(['IHDR', 'IDAT', 'IEND']);
  });
});

describe('image helpers', () => {
  test('fitWithin keeps the aspect ratio and never enlarges', () => {
    expect(fitWithin(1280, 720, 640)).toEqual({ width: 640, height: 360 });
    expect(fitWithin(1280, 720, undefined, 360)).toEqual({ width: 640, height: 360 });
    expect(fitWithin(1280, 720, 1000, 200)).toEqual({ width: 355, height: 200 });
    expect(fitWithin(1280, 720, 4000, 4000)).toEqual({ width: 1280, height: 720 });
    expect(fitWithin(1280, 720)).toEqual({ width: 1280, height: 720 });
  });

  test('downscale averages each box', () => {
    const image = createImage(4, 2);
    const px = words(image);
    px.set([rgb(0, 0, 0), rgb(200, 100, 40), rgb(10, 10, 10), rgb(10, 10, 10), rgb(200, 100, 40), rgb(0, 0, 0), rgb(10, 10, 10), rgb(10, 10, 10)]);
    const small = downscale(image, 2, 1);
    expect([...small.data]).toEqual([100, 50, 20, 255, 10, 10, 10, 255]);
  });

  test('imageSize reads JPEG and PNG headers and refuses anything else', () => {
    expect(imageSize(new TextEncoder().encode('<html>not an image</html>'))).toBeNull();
    expect(imageSize(new Uint8Array([0xff, 0xd8, 0xff]))).toBeNull();
    expect(imageSize(new Uint8Array(0))).toBeNull();
  });
});
