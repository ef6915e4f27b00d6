// A PNG encoder (8-bit RGB, no alpha: a screen is opaque) on node:zlib's deflate, for lossless
// screenshots of the simulated screen. Each line gets the filter among None, Sub and Up with the
// smallest sum of absolute values (libpng's heuristic): Sub suits the flat runs of a screen, Up its
// repeated lines.
import { crc32, deflateSync } from 'node:zlib';
import { joinBytes } from '../../../shared/bytes.ts';
import type { RgbaImage } from './image.ts';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

export function encodePng(image: RgbaImage, level = 6): Uint8Array {
  const { width, height, data } = image;
  if (width < 1 || height < 1) throw new RangeError(`cannot encode a ${width}×${height} PNG`);
  const line = width * 3;
  const raw = new Uint8Array((line + 1) * height);
  const current = new Uint8Array(line);
  const previous = new Uint8Array(line);
  const sub = new Uint8Array(line);
  const up = new Uint8Array(line);
  for (let y = 0; y < height; y++) {
    for (let x = 0, i = y * width * 4; x < width; x++, i += 4) {
      current[x * 3] = data[i]!;
      current[x * 3 + 1] = data[i + 1]!;
      current[x * 3 + 2] = data[i + 2]!;
    }
    let sumNone = 0;
    let sumSub = 0;
    let sumUp = 0;
    for (let i = 0; i < line; i++) {
      const v = current[i]!;
      const s = (v - (i >= 3 ? current[i - 3]! : 0)) & 0xff;
      const u = (v - previous[i]!) & 0xff;
      sub[i] = s;
      up[i] = u;
      // As signed bytes, so a small negative difference counts as small.
      sumNone += v < 128 ? v : 256 - v;
      sumSub += s < 128 ? s : 256 - s;
      sumUp += u < 128 ? u : 256 - u;
    }
    const at = y * (line + 1);
    if (sumSub <= sumUp && sumSub < sumNone) {
      raw[at] = 1;
      raw.set(sub, at + 1);
    } else if (sumUp < sumNone) {
      raw[at] = 2;
      raw.set(up, at + 1);
    } else {
      raw[at] = 0;
      raw.set(current, at + 1);
    }
    previous.set(current);
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8 bits, truecolour, deflate, adaptive filtering, no interlace
  const parts = [Uint8Array.from(SIGNATURE), chunk('IHDR', ihdr), chunk('IDAT', new Uint8Array(deflateSync(raw, { level }))), chunk('IEND', new Uint8Array(0))];
  return joinBytes(parts, parts.reduce((n, p) => n + p.length, 0));
}
