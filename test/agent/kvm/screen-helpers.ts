// Tools for the screen tests: decoders written independently of the encoders under test (JPEG via
// jpeg-js, PNG by inflating and unfiltering here), reading text back off a picture with the font's
// glyph table, and splitting a multipart/x-mixed-replace body into its parts.
import { inflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { CELL_WIDTH, GLYPH_HEIGHT, GLYPH_WIDTH, glyph } from '../../../agent/kvm/screen/font.ts';
import type { RgbaImage } from '../../../agent/kvm/screen/image.ts';

export function decodeJpeg(bytes: Uint8Array): RgbaImage {
  const d = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
  return { width: d.width, height: d.height, data: d.data };
}

/** PNG (8-bit RGB or RGBA, no interlace) → RGBA, by the book: chunks, CRC-free inflate, the five filters. */
export function decodePng(bytes: Uint8Array): RgbaImage {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  sig.forEach((b, i) => {
    if (bytes[i] !== b) throw new Error('not a PNG');
  });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (at < bytes.length) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      if (data[8] !== 8 || data[12] !== 0) throw new Error('only 8-bit non-interlaced');
      channels = data[9] === 2 ? 3 : data[9] === 6 ? 4 : 0;
      if (!channels) throw new Error(`colour type ${data[9]}`);
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') ended = true;
    at += 12 + length;
  }
  if (!ended) throw new Error('no IEND');
  const raw = inflateSync(Buffer.concat(idat));
  const line = width * channels;
  const out = new Uint8Array(width * height * 4);
  let prev = new Uint8Array(line);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (line + 1)]!;
    const src = raw.subarray(y * (line + 1) + 1, (y + 1) * (line + 1));
    const cur = new Uint8Array(line);
    for (let i = 0; i < line; i++) {
      const a = i >= channels ? cur[i - channels]! : 0;
      const b = prev[i]!;
      const c = i >= channels ? prev[i - channels]! : 0;
      let v = src[i]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`filter ${filter}`);
      cur[i] = v & 0xff;
    }
    for (let x = 0; x < width; x++) {
      out.set(cur.subarray(x * channels, x * channels + 3), (y * width + x) * 4);
      out[(y * width + x) * 4 + 3] = channels === 4 ? cur[x * channels + 3]! : 255;
    }
    prev = cur;
  }
  return { width, height, data: out };
}

/** Reads `count` characters drawn at (x, y) with `scale`: light pixels are ink. Unknown cells read as '\uFFFD'. */
export function readText(image: RgbaImage, x: number, y: number, scale: number, count: number): string {
  let text = '';
  for (let i = 0; i < count; i++) {
    const cx = x + i * CELL_WIDTH * scale;
    const columns: number[] = [];
    for (let col = 0; col < GLYPH_WIDTH; col++) {
      let bits = 0;
      for (let row = 0; row < GLYPH_HEIGHT; row++) {
        const px = cx + col * scale + (scale >> 1);
        const py = y + row * scale + (scale >> 1);
        const o = (py * image.width + px) * 4;
        const luma = 0.299 * image.data[o]! + 0.587 * image.data[o + 1]! + 0.114 * image.data[o + 2]!;
        if (luma > 128) bits |= 1 << row;
      }
      columns.push(bits);
    }
    let found = '\uFFFD';
    for (let c = 0x20; c <= 0x7e; c++) {
      const g = glyph(String.fromCharCode(c));
      if (columns.every((v, k) => v === g[k])) {
        found = String.fromCharCode(c);
        break;
      }
    }
    text += found;
  }
  return text;
}

/** Mean absolute difference of the RGB channels. */
export function meanError(a: RgbaImage, b: RgbaImage): number {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`sizes differ: ${a.width}×${a.height} vs ${b.width}×${b.height}`);
  let sum = 0;
  for (let i = 0; i < a.data.length; i += 4) sum += Math.abs(a.data[i]! - b.data[i]!) + Math.abs(a.data[i + 1]! - b.data[i + 1]!) + Math.abs(a.data[i + 2]! - b.data[i + 2]!);
  return sum / (a.width * a.height * 3);
}

export interface Part {
  headers: Record<string, string>;
  body: Uint8Array;
}

/**
 * Splits a multipart/x-mixed-replace body into complete parts, strictly: `--boundary CRLF` opens
 * it, and each part is `headers CRLF CRLF body(Content-Length) CRLF --boundary CRLF`. Returns the
 * parts and how many bytes are left over (an incomplete last part).
 */
export function parseMultipart(data: Uint8Array, boundary: string): { parts: Part[]; rest: number } {
  const parts: Part[] = [];
  const latin1 = (b: Uint8Array) => String.fromCharCode(...b);
  const opening = `--${boundary}\r\n`;
  const delimiter = `\r\n--${boundary}\r\n`;
  if (data.length < opening.length) return { parts, rest: data.length };
  if (latin1(data.subarray(0, opening.length)) !== opening) throw new Error(`the body does not open with ${JSON.stringify(opening)}`);
  let at = opening.length;
  for (;;) {
    const headEnd = indexOf(data, [13, 10, 13, 10], at);
    if (headEnd < 0) break;
    const headers: Record<string, string> = {};
    for (const line of latin1(data.subarray(at, headEnd)).split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`a malformed part header ${JSON.stringify(line)}`);
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length']);
    if (!Number.isInteger(length)) throw new Error('a part without Content-Length');
    const start = headEnd + 4;
    if (start + length + delimiter.length > data.length) break;
    if (latin1(data.subarray(start + length, start + length + delimiter.length)) !== delimiter) throw new Error('a part not followed by the delimiter');
    parts.push({ headers, body: data.subarray(start, start + length) });
    at = start + length + delimiter.length;
  }
  return { parts, rest: data.length - at };
}

function indexOf(data: Uint8Array, needle: number[], from: number): number {
  outer: for (let i = from; i <= data.length - needle.length; i++) {
    for (let k = 0; k < needle.length; k++) if (data[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}
