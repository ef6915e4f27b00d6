// A baseline JPEG encoder in plain TypeScript, so the simulated screen (and the "no signal" frame)
// needs no native library. Choices, and why:
// - 4:2:0 chroma subsampling: half the blocks of 4:4:4, which is what makes a 1280×720 frame cheap
//   enough for a 15 fps live view on a shared 2-core machine; text stays sharp because its edges
//   are in luma, which is kept at full resolution. It is also what MJPEG viewers expect.
// - The standard tables of ITU-T T.81 Annex K (quantisation scaled by `quality` exactly as
//   libjpeg's jpeg_quality_scaling does, and the standard Huffman tables), so no optimisation pass.
// - A restart marker (DRI) after every MCU row: each row's entropy-coded segment is then
//   independent of the others, so JpegRowEncoder keeps every row's bytes and re-encodes only the
//   rows whose pixels changed since the last frame (the simulated screen changes a few lines per
//   frame: the counter, the clock, the pointer, the typed text).
// - Flat 8×8 blocks (most of a screen) skip the DCT: only their DC term is non-zero.
import { joinBytes } from '../../../shared/bytes.ts';
import type { RgbaImage } from './image.ts';

// Zigzag position k → the natural (row-major) index of that coefficient.
/** End of image. */
const EOI = new Uint8Array([0xff, 0xd9]);

const ZIGZAG = new Uint8Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57,
  50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]);

// Annex K.1, natural order.
const LUMA_QUANT = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56,
  68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_QUANT = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
  ...new Array<number>(32).fill(99),
];

interface HuffmanTable {
  /** How many codes of each length 1..16. */
  bits: readonly number[];
  /** The symbols, in code order. */
  values: readonly number[];
}

// Annex K.3.
export const HUFFMAN: Record<'dcLuma' | 'dcChroma' | 'acLuma' | 'acChroma', HuffmanTable> = {
  dcLuma: { bits: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], values: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] },
  dcChroma: { bits: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], values: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] },
  acLuma: {
    bits: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
    values: [
      0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08,
      0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
      0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
      0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
      0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
      0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
      0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ],
  },
  acChroma: {
    bits: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
    values: [
      0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91,
      0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
      0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
      0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
      0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
      0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
      0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ],
  },
};

interface HuffmanCodes {
  code: Uint16Array;
  size: Uint8Array;
}

/** Annex C: canonical codes from the counts per length. */
function huffmanCodes(table: HuffmanTable): HuffmanCodes {
  const code = new Uint16Array(256);
  const size = new Uint8Array(256);
  let next = 0;
  let k = 0;
  for (let length = 1; length <= 16; length++) {
    for (let i = 0; i < table.bits[length - 1]!; i++) {
      const symbol = table.values[k++]!;
      code[symbol] = next++;
      size[symbol] = length;
    }
    next <<= 1;
  }
  return { code, size };
}

const DC_LUMA = huffmanCodes(HUFFMAN.dcLuma);
const DC_CHROMA = huffmanCodes(HUFFMAN.dcChroma);
const AC_LUMA = huffmanCodes(HUFFMAN.acLuma);
const AC_CHROMA = huffmanCodes(HUFFMAN.acChroma);

/** libjpeg's jpeg_quality_scaling and jpeg_add_quant_table (baseline: clamped to 1..255). */
export function quantTable(base: readonly number[], quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? Math.floor(5000 / q) : 200 - q * 2;
  return Uint8Array.from(base, (v) => Math.min(255, Math.max(1, Math.floor((v * scale + 50) / 100))));
}

// The AAN DCT's output is scaled per row and column; dividing by these folds the scale into the
// quantisation step (jfdctflt.c's convention).
const AAN_SCALE = [1.0, 1.387039845, 1.306562965, 1.175875602, 1.0, 0.785694958, 0.5411961, 0.275899379];

function divisors(quant: Uint8Array): Float32Array {
  const out = new Float32Array(64);
  for (let row = 0; row < 8; row++) for (let col = 0; col < 8; col++) out[row * 8 + col] = 1 / (quant[row * 8 + col]! * AAN_SCALE[row]! * AAN_SCALE[col]! * 8);
  return out;
}

/** Entropy-coded bytes with 0xFF stuffing, in a buffer that grows as needed. */
class BitWriter {
  buf = new Uint8Array(1 << 16);
  length = 0;
  private acc = 0;
  private count = 0;

  reset(): void {
    this.length = 0;
    this.acc = 0;
    this.count = 0;
  }

  /** n ≤ 16 bits of `value`. */
  put(value: number, n: number): void {
    let acc = (this.acc << n) | (value & ((1 << n) - 1));
    let count = this.count + n;
    while (count >= 8) {
      count -= 8;
      const byte = (acc >>> count) & 0xff;
      if (this.length + 2 > this.buf.length) this.grow();
      this.buf[this.length++] = byte;
      if (byte === 0xff) this.buf[this.length++] = 0;
    }
    this.acc = acc & ((1 << count) - 1);
    this.count = count;
  }

  /** Pads the last byte with 1-bits (T.81 F.1.2.3), as a segment must end byte-aligned. */
  flush(): void {
    if (this.count > 0) this.put(0x7f, 8 - this.count);
  }

  /** A marker, written as is (never stuffed). */
  marker(code: number): void {
    if (this.length + 2 > this.buf.length) this.grow();
    this.buf[this.length++] = 0xff;
    this.buf[this.length++] = code;
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }

  private grow(): void {
    const bigger = new Uint8Array(this.buf.length * 2);
    bigger.set(this.buf.subarray(0, this.length));
    this.buf = bigger;
  }
}

export interface JpegStats {
  /** MCU rows (16 pixel lines each) encoded for this frame, and reused from the last one. */
  rowsEncoded: number;
  rowsReused: number;
}

/**
 * Encodes frames of one size at one quality, re-encoding only the MCU rows that changed since the
 * previous frame. encode() returns a complete JPEG each time.
 */
export class JpegRowEncoder {
  readonly quality: number;
  private readonly lumaDiv: Float32Array;
  private readonly chromaDiv: Float32Array;
  private readonly lumaQuant: Uint8Array;
  private readonly chromaQuant: Uint8Array;
  private width = 0;
  private height = 0;
  private header: Uint8Array | null = null;
  private rows: (Uint8Array | null)[] = [];
  private previous: Uint32Array | null = null;
  private readonly writer = new BitWriter();
  private planeY = new Float32Array(0);
  private planeCb = new Float32Array(0);
  private planeCr = new Float32Array(0);
  private readonly block = new Float32Array(64);
  private readonly coef = new Int32Array(64);
  private predY = 0;
  private predCb = 0;
  private predCr = 0;
  lastStats: JpegStats = { rowsEncoded: 0, rowsReused: 0 };

  constructor(quality: number) {
    this.quality = Math.min(100, Math.max(1, Math.round(quality)));
    this.lumaQuant = quantTable(LUMA_QUANT, this.quality);
    this.chromaQuant = quantTable(CHROMA_QUANT, this.quality);
    this.lumaDiv = divisors(this.lumaQuant);
    this.chromaDiv = divisors(this.chromaQuant);
  }

  encode(image: RgbaImage): Uint8Array {
    const { width, height } = image;
    if (width < 1 || height < 1 || width > 65535 || height > 65535) throw new RangeError(`cannot encode a ${width}×${height} JPEG`);
    if (width !== this.width || height !== this.height) this.resize(width, height);
    const pixels = new Uint32Array(image.data.buffer, image.data.byteOffset, width * height);
    const rowCount = this.rows.length;
    let encoded = 0;
    for (let r = 0; r < rowCount; r++) {
      const start = r * 16 * width;
      const end = Math.min(height, (r + 1) * 16) * width;
      if (this.rows[r] && sameWords(pixels, this.previous!, start, end)) continue;
      this.previous!.set(pixels.subarray(start, end), start);
      this.rows[r] = this.encodeRow(image, r, r === rowCount - 1 ? -1 : r % 8);
      encoded++;
    }
    this.lastStats = { rowsEncoded: encoded, rowsReused: rowCount - encoded };
    const parts = [this.header!, ...(this.rows as Uint8Array[]), EOI];
    return joinBytes(parts, parts.reduce((n, p) => n + p.length, 0));
  }

  private resize(width: number, height: number): void {
    this.width = width;
    this.height = height;
    const mcuCols = Math.ceil(width / 16);
    this.rows = new Array<Uint8Array | null>(Math.ceil(height / 16)).fill(null);
    this.previous = new Uint32Array(width * height);
    this.planeY = new Float32Array(mcuCols * 16 * 16);
    this.planeCb = new Float32Array(mcuCols * 8 * 8);
    this.planeCr = new Float32Array(mcuCols * 8 * 8);
    this.header = this.headerBytes(mcuCols);
  }

  private headerBytes(mcuCols: number): Uint8Array {
    const out: number[] = [0xff, 0xd8];
    const segment = (marker: number, body: number[]) => out.push(0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 255, ...body);
    // JFIF APP0: version 1.1, no density units, 1:1, no thumbnail.
    segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
    const zigzag = (q: Uint8Array) => Array.from(ZIGZAG, (natural) => q[natural]!);
    segment(0xdb, [0, ...zigzag(this.lumaQuant), 1, ...zigzag(this.chromaQuant)]);
    const { width, height } = this;
    // SOF0: 8-bit, three components; Y sampled 2×2, Cb and Cr 1×1 (4:2:0).
    segment(0xc0, [8, height >> 8, height & 255, width >> 8, width & 255, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    const dht = (cls: number, id: number, t: HuffmanTable) => [(cls << 4) | id, ...t.bits, ...t.values];
    segment(0xc4, [...dht(0, 0, HUFFMAN.dcLuma), ...dht(1, 0, HUFFMAN.acLuma), ...dht(0, 1, HUFFMAN.dcChroma), ...dht(1, 1, HUFFMAN.acChroma)]);
    segment(0xdd, [mcuCols >> 8, mcuCols & 255]);
    segment(0xda, [3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
    return Uint8Array.from(out);
  }

  /** One MCU row's entropy-coded segment, then its RSTn marker (none after the last row). */
  private encodeRow(image: RgbaImage, r: number, restart: number): Uint8Array {
    this.fillPlanes(image, r);
    const w = this.writer;
    w.reset();
    this.predY = this.predCb = this.predCr = 0;
    const mcuCols = this.planeCb.length / 64;
    const stride = mcuCols * 16;
    const cstride = mcuCols * 8;
    for (let m = 0; m < mcuCols; m++) {
      const x = m * 16;
      this.predY = this.encodeBlock(this.planeY, x, stride, this.lumaDiv, this.predY, DC_LUMA, AC_LUMA);
      this.predY = this.encodeBlock(this.planeY, x + 8, stride, this.lumaDiv, this.predY, DC_LUMA, AC_LUMA);
      this.predY = this.encodeBlock(this.planeY, 8 * stride + x, stride, this.lumaDiv, this.predY, DC_LUMA, AC_LUMA);
      this.predY = this.encodeBlock(this.planeY, 8 * stride + x + 8, stride, this.lumaDiv, this.predY, DC_LUMA, AC_LUMA);
      this.predCb = this.encodeBlock(this.planeCb, m * 8, cstride, this.chromaDiv, this.predCb, DC_CHROMA, AC_CHROMA);
      this.predCr = this.encodeBlock(this.planeCr, m * 8, cstride, this.chromaDiv, this.predCr, DC_CHROMA, AC_CHROMA);
    }
    w.flush();
    if (restart >= 0) w.marker(0xd0 + restart);
    return w.bytes();
  }

  /** JFIF YCbCr, level-shifted, for the 16 lines of MCU row r; edges replicate the last pixel. */
  private fillPlanes(image: RgbaImage, r: number): void {
    const { width, height, data } = image;
    const stride = (this.planeCb.length / 64) * 16;
    const Y = this.planeY;
    const Cb = this.planeCb;
    const Cr = this.planeCr;
    for (let cy = 0; cy < 8; cy++) {
      const y0 = Math.min(height - 1, r * 16 + cy * 2);
      const y1 = Math.min(height - 1, y0 + 1);
      const row0 = y0 * width * 4;
      const row1 = y1 * width * 4;
      for (let cx = 0; cx < stride / 2; cx++) {
        const x0 = Math.min(width - 1, cx * 2) * 4;
        const x1 = Math.min(width - 1, cx * 2 + 1) * 4;
        let rs = 0;
        let gs = 0;
        let bs = 0;
        for (let k = 0; k < 4; k++) {
          const i = (k < 2 ? row0 : row1) + ((k & 1) === 0 ? x0 : x1);
          const R = data[i]!;
          const G = data[i + 1]!;
          const B = data[i + 2]!;
          Y[(cy * 2 + (k >> 1)) * stride + cx * 2 + (k & 1)] = 0.299 * R + 0.587 * G + 0.114 * B - 128;
          rs += R;
          gs += G;
          bs += B;
        }
        Cb[cy * (stride / 2) + cx] = (-0.168736 * rs - 0.331264 * gs + 0.5 * bs) / 4;
        Cr[cy * (stride / 2) + cx] = (0.5 * rs - 0.418688 * gs - 0.081312 * bs) / 4;
      }
    }
  }

  /** DCT, quantisation and Huffman coding of the 8×8 block at `offset`; returns its DC (the next predictor). */
  private encodeBlock(plane: Float32Array, offset: number, stride: number, div: Float32Array, pred: number, dc: HuffmanCodes, ac: HuffmanCodes): number {
    const d = this.block;
    const first = plane[offset]!;
    let flat = true;
    for (let row = 0; row < 8; row++) {
      const o = offset + row * stride;
      for (let col = 0; col < 8; col++) {
        const v = plane[o + col]!;
        d[row * 8 + col] = v;
        if (v !== first) flat = false;
      }
    }
    const w = this.writer;
    if (flat) {
      const value = Math.round(64 * first * div[0]!);
      putCoefficient(w, value - pred, dc);
      w.put(ac.code[0]!, ac.size[0]!); // EOB
      return value;
    }
    forwardDct(d);
    const coef = this.coef;
    for (let k = 0; k < 64; k++) {
      const n = ZIGZAG[k]!;
      coef[k] = Math.round(d[n]! * div[n]!);
    }
    putCoefficient(w, coef[0]! - pred, dc);
    let run = 0;
    for (let k = 1; k < 64; k++) {
      const v = coef[k]!;
      if (v === 0) {
        run++;
        continue;
      }
      while (run > 15) {
        w.put(ac.code[0xf0]!, ac.size[0xf0]!); // ZRL: sixteen zeros
        run -= 16;
      }
      const a = v < 0 ? -v : v;
      const category = 32 - Math.clz32(a);
      const symbol = (run << 4) | category;
      w.put(ac.code[symbol]!, ac.size[symbol]!);
      w.put(v < 0 ? v - 1 : v, category);
      run = 0;
    }
    if (run > 0) w.put(ac.code[0]!, ac.size[0]!);
    return coef[0]!;
  }
}

function putCoefficient(w: BitWriter, diff: number, dc: HuffmanCodes): void {
  const a = diff < 0 ? -diff : diff;
  const category = a === 0 ? 0 : 32 - Math.clz32(a);
  w.put(dc.code[category]!, dc.size[category]!);
  if (category) w.put(diff < 0 ? diff - 1 : diff, category);
}

function sameWords(a: Uint32Array, b: Uint32Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The AAN (Arai, Agui, Nakajima) float forward DCT, in place, rows then columns. */
function forwardDct(d: Float32Array): void {
  for (let pass = 0; pass < 2; pass++) {
    const step = pass === 0 ? 1 : 8;
    const next = pass === 0 ? 8 : 1;
    for (let line = 0; line < 8; line++) {
      const o = line * next;
      const i0 = o;
      const i1 = o + step;
      const i2 = o + 2 * step;
      const i3 = o + 3 * step;
      const i4 = o + 4 * step;
      const i5 = o + 5 * step;
      const i6 = o + 6 * step;
      const i7 = o + 7 * step;
      const t0 = d[i0]! + d[i7]!;
      const t7 = d[i0]! - d[i7]!;
      const t1 = d[i1]! + d[i6]!;
      const t6 = d[i1]! - d[i6]!;
      const t2 = d[i2]! + d[i5]!;
      const t5 = d[i2]! - d[i5]!;
      const t3 = d[i3]! + d[i4]!;
      const t4 = d[i3]! - d[i4]!;
      // Even part.
      const t10 = t0 + t3;
      const t13 = t0 - t3;
      const t11 = t1 + t2;
      const t12 = t1 - t2;
      d[i0] = t10 + t11;
      d[i4] = t10 - t11;
      const z1 = (t12 + t13) * 0.707106781;
      d[i2] = t13 + z1;
      d[i6] = t13 - z1;
      // Odd part.
      const u10 = t4 + t5;
      const u11 = t5 + t6;
      const u12 = t6 + t7;
      const z5 = (u10 - u12) * 0.382683433;
      const z2 = 0.5411961 * u10 + z5;
      const z4 = 1.306562965 * u12 + z5;
      const z3 = u11 * 0.707106781;
      const z11 = t7 + z3;
      const z13 = t7 - z3;
      d[i5] = z13 + z2;
      d[i3] = z13 - z2;
      d[i1] = z11 + z4;
      d[i7] = z11 - z4;
    }
  }
}

/** One image, no row cache. */
export function encodeJpeg(image: RgbaImage, quality: number): Uint8Array {
  return new JpegRowEncoder(quality).encode(image);
}
