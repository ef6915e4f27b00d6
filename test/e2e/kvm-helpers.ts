// What the KVM end-to-end tests and benchmark need to judge the relay's answers without trusting
// the code under test: the HID report files an agent writes under --hid-dir read back as reports,
// keyboard reports decoded to text the way a host with an en-US or de-DE layout would (written out
// here independently of shared/hid/), JPEG and PNG sizes read from their headers, and the parts of
// an MJPEG (multipart/x-mixed-replace) live view read off the wire.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';

export const KEYBOARD_REPORT = 8;
export const MOUSE_REPORT = 7;

export const hex = (r: Uint8Array) => [...r].map((b) => b.toString(16).padStart(2, '0')).join(' ');
export const ZEROS = '00 00 00 00 00 00 00 00';
export const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

/** DIR/hidg0 (keyboard) and DIR/hidg1 (mouse) as an agent run with --hid-dir DIR appends them. */
export class HidFiles {
  constructor(readonly dir: string) {}

  path(gadget: 'keyboard' | 'mouse') {
    return join(this.dir, gadget === 'keyboard' ? 'hidg0' : 'hidg1');
  }

  size(gadget: 'keyboard' | 'mouse'): number {
    try {
      return statSync(this.path(gadget)).size;
    } catch {
      return 0;
    }
  }

  /** Where each file ends now, to read only what comes after. */
  mark() {
    return { keyboard: this.size('keyboard'), mouse: this.size('mouse') };
  }

  /** The whole reports written since `from` (bytes), as Uint8Arrays; a torn tail is an error. */
  reports(gadget: 'keyboard' | 'mouse', from = 0): Uint8Array[] {
    const size = gadget === 'keyboard' ? KEYBOARD_REPORT : MOUSE_REPORT;
    const path = this.path(gadget);
    const all = existsSync(path) ? readFileSync(path) : Buffer.alloc(0);
    const bytes = all.subarray(from);
    if (bytes.length % size !== 0) throw new Error(`${path}: ${bytes.length} bytes since ${from} is not a whole number of ${size}-byte reports`);
    const out: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += size) out.push(new Uint8Array(bytes.subarray(i, i + size)));
    return out;
  }

  hexSince(gadget: 'keyboard' | 'mouse', from = 0): string[] {
    return this.reports(gadget, from).map(hex);
  }
}

/** A host's view of a keyboard report stream: each key that goes down, with the modifiers it goes down with. */
export function keyPresses(reports: Uint8Array[]): { usage: number; modifiers: number }[] {
  const presses: { usage: number; modifiers: number }[] = [];
  let held = new Set<number>();
  for (const r of reports) {
    if (r[1] !== 0) throw new Error(`reserved byte is ${r[1]} in ${hex(r)}`);
    const now = new Set([...r.subarray(2)].filter((u) => u !== 0));
    for (const u of now) if (!held.has(u)) presses.push({ usage: u, modifiers: r[0]! });
    held = now;
  }
  return presses;
}

// en-US (the pc105 "us" layout): usage → [plain, shifted].
const US: Record<number, [string, string]> = { 0x28: ['\n', '\n'], 0x2b: ['\t', '\t'], 0x2c: [' ', ' '] };
for (let i = 0; i < 26; i++) US[0x04 + i] = [String.fromCharCode(97 + i), String.fromCharCode(65 + i)];
'1234567890'.split('').forEach((d, i) => (US[0x1e + i] = [d, '!@#$%^&*()'[i]!]));
const US_PUNCT: [number, string, string][] = [
  [0x2d, '-', '_'], [0x2e, '=', '+'], [0x2f, '[', '{'], [0x30, ']', '}'], [0x31, '\\', '|'], [0x33, ';', ':'],
  [0x34, "'", '"'], [0x35, '`', '~'], [0x36, ',', '<'], [0x37, '.', '>'], [0x38, '/', '?'],
];
for (const [u, a, b] of US_PUNCT) US[u] = [a, b];

const SHIFT = 0x02 | 0x20;
const ALTGR = 0x40;
const CTRL_ALT = 0x01 | 0x04;

/** What an en-US host types from these reports; any key it has no character for (or Ctrl/Alt/Meta held) throws. */
export function decodeUs(reports: Uint8Array[]): string {
  let text = '';
  for (const { usage, modifiers } of keyPresses(reports)) {
    if (modifiers & ~SHIFT) throw new Error(`modifiers ${modifiers.toString(16)} with usage ${usage.toString(16)} after ${JSON.stringify(text.slice(-20))}`);
    const c = US[usage];
    if (!c) throw new Error(`usage ${usage.toString(16)} types nothing on en-US (after ${JSON.stringify(text.slice(-20))})`);
    text += c[modifiers & SHIFT ? 1 : 0];
  }
  return text;
}

// de-DE (xkb "de", the default variant with dead keys): usage → [plain, shift, AltGr]; '' = none.
const DEAD_ACUTE = '\u0301';
const DEAD_GRAVE = '\u0300';
const DEAD_CIRCUMFLEX = '\u0302';
const DE: Record<number, [string, string, string]> = { 0x28: ['\n', '\n', ''], 0x2b: ['\t', '\t', ''], 0x2c: [' ', ' ', ' '] };
for (let i = 0; i < 26; i++) DE[0x04 + i] = [String.fromCharCode(97 + i), String.fromCharCode(65 + i), ''];
DE[0x1c] = ['z', 'Z', '←']; // KeyY
DE[0x1d] = ['y', 'Y', '»']; // KeyZ
DE[0x14] = ['q', 'Q', '@'];
DE[0x08] = ['e', 'E', '€'];
DE[0x10] = ['m', 'M', 'µ'];
DE[0x05] = ['b', 'B', '“'];
DE[0x11] = ['n', 'N', '”'];
const DE_ROW: [number, string, string, string][] = [
  [0x1e, '1', '!', '¹'], [0x1f, '2', '"', '²'], [0x20, '3', '§', '³'], [0x21, '4', '$', '¼'], [0x22, '5', '%', '½'],
  [0x23, '6', '&', '¬'], [0x24, '7', '/', '{'], [0x25, '8', '(', '['], [0x26, '9', ')', ']'], [0x27, '0', '=', '}'],
  [0x2d, 'ß', '?', '\\'], [0x2e, DEAD_ACUTE, DEAD_GRAVE, ''], [0x2f, 'ü', 'Ü', ''], [0x30, '+', '*', '~'],
  [0x31, '#', "'", ''], [0x32, '#', "'", ''], [0x33, 'ö', 'Ö', ''], [0x34, 'ä', 'Ä', ''], [0x35, DEAD_CIRCUMFLEX, '°', ''],
  [0x36, ',', ';', ''], [0x37, '.', ':', ''], [0x38, '-', '_', ''], [0x64, '<', '>', '|'],
];
for (const [u, a, b, c] of DE_ROW) DE[u] = [a, b, c];
const SPACING: Record<string, string> = { [DEAD_ACUTE]: '´', [DEAD_GRAVE]: '`', [DEAD_CIRCUMFLEX]: '^' };

/** What a de-DE host types from these reports (AltGr as RightAlt or Ctrl+Alt; a dead key composes with the next character, or gives its own with Space). */
export function decodeDe(reports: Uint8Array[]): string {
  let text = '';
  let dead = '';
  for (const { usage, modifiers } of keyPresses(reports)) {
    const altgr = (modifiers & ALTGR) !== 0 || (modifiers & CTRL_ALT) === CTRL_ALT;
    const rest = modifiers & ~(SHIFT | ALTGR | (altgr ? CTRL_ALT : 0));
    if (rest) throw new Error(`modifiers ${modifiers.toString(16)} with usage ${usage.toString(16)} after ${JSON.stringify(text.slice(-20))}`);
    const c = DE[usage]?.[altgr ? 2 : modifiers & SHIFT ? 1 : 0];
    if (!c) throw new Error(`usage ${usage.toString(16)} (modifiers ${modifiers.toString(16)}) types nothing on de-DE (after ${JSON.stringify(text.slice(-20))})`);
    if (c in SPACING && !dead) {
      dead = c;
      continue;
    }
    if (dead) {
      text += c === ' ' ? SPACING[dead] : (c + dead).normalize('NFC');
      dead = '';
    } else text += c;
  }
  if (dead) throw new Error(`a dead key (${SPACING[dead]}) was left pending at the end`);
  return text;
}

/** A deterministic mixed text: words, digits, every shifted US symbol, spaces and newlines, `length` characters. */
export function mixedText(length: number, seed = 14): string {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const pick = (str: string) => str[Math.floor(rnd() * str.length)]!;
  const lower = 'abcdefghijklmnopqrstuvwxyz';
  const symbols = '!@#$%^&*()_+{}|:"<>?~-=[]\\;\',./`';
  let out = '';
  while (out.length < length) {
    const r = rnd();
    if (r < 0.55) out += pick(lower);
    else if (r < 0.65) out += pick(lower.toUpperCase());
    else if (r < 0.72) out += pick('0123456789');
    else if (r < 0.85) out += pick(symbols);
    else if (r < 0.97) out += ' ';
    else out += '\n';
  }
  return out.slice(0, length);
}

/** Width and height from a JPEG's SOF0/SOF1/SOF2 segment, after checking it starts with SOI and ends with EOI. */
export function jpegSize(b: Uint8Array): { width: number; height: number; progressive: boolean } {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) throw new Error('no SOI (FF D8) at the start');
  if (b[b.length - 2] !== 0xff || b[b.length - 1] !== 0xd9) throw new Error(`no EOI (FF D9) at the end (ends ${hex(b.subarray(-4))})`);
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) throw new Error(`not a marker at ${i}: ${b[i]}`);
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    if (marker === 0xc0 || marker === 0xc1 || marker === 0xc2) {
      return { height: (b[i + 5]! << 8) | b[i + 6]!, width: (b[i + 7]! << 8) | b[i + 8]!, progressive: marker === 0xc2 };
    }
    if (marker === 0xda) break; // start of scan before any frame header
    i += 2 + len;
  }
  throw new Error('no SOF0/SOF1/SOF2 frame header before the scan');
}

/**
 * A baseline JPEG's entropy-coded data split at its restart markers (RST0–RST7): each piece codes
 * a fixed run of MCUs from a reset predictor, so with the same tables a piece's bytes change only
 * when the pixels it covers do. Lets a test tell which part of a frame changed without decoding it.
 */
export function scanSegments(b: Uint8Array): Uint8Array[] {
  jpegSize(b);
  let i = 2;
  while (i + 4 <= b.length) {
    const marker = b[i + 1]!;
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    if (marker === 0xda) {
      i += 2 + len;
      break;
    }
    i += 2 + len;
  }
  const segments: Uint8Array[] = [];
  let start = i;
  for (let j = i; j + 1 < b.length; j++) {
    if (b[j] !== 0xff) continue;
    const m = b[j + 1]!;
    if (m === 0x00) continue; // a stuffed 0xFF data byte
    if ((m >= 0xd0 && m <= 0xd7) || m === 0xd9) {
      segments.push(b.subarray(start, j));
      start = j + 2;
      if (m === 0xd9) break;
    }
    j++;
  }
  return segments;
}

/** The indexes of the restart segments in which two frames of the same size differ. */
export function changedSegments(a: Uint8Array, b: Uint8Array): number[] {
  const sa = scanSegments(a);
  const sb = scanSegments(b);
  if (sa.length !== sb.length) throw new Error(`frames with ${sa.length} and ${sb.length} restart segments`);
  return sa.flatMap((s, i) => (sameBytes(s, sb[i]!) ? [] : [i]));
}

/** Width and height from a PNG's IHDR, after checking its signature. */
export function pngSize(b: Uint8Array): { width: number; height: number } {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (!sig.every((v, i) => b[i] === v)) throw new Error('no PNG signature');
  if (String.fromCharCode(...b.subarray(12, 16)) !== 'IHDR') throw new Error('first chunk is not IHDR');
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { width: dv.getUint32(16), height: dv.getUint32(20) };
}

export interface MjpegPart {
  headers: Record<string, string>;
  bytes: Uint8Array;
  /** Date.now() when its last byte arrived. */
  arrivedAt: number;
}

/**
 * Reads the parts of a multipart/x-mixed-replace body: the boundary line, the part's headers, then
 * exactly Content-Length bytes (every part must say its length).
 */
export class MjpegReader {
  private buf = new Uint8Array(0);
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly boundary: Uint8Array;

  constructor(res: Response) {
    const type = res.headers.get('content-type') ?? '';
    const m = /^multipart\/x-mixed-replace\s*;.*boundary="?([^";]+)"?/i.exec(type);
    if (!m) throw new Error(`not multipart/x-mixed-replace with a boundary: ${type}`);
    this.boundary = new TextEncoder().encode(`--${m[1]}`);
    this.reader = res.body!.getReader();
  }

  private async more(): Promise<void> {
    const { value, done } = await this.reader.read();
    if (done) throw new Error('the live view ended');
    const next = new Uint8Array(this.buf.length + value.length);
    next.set(this.buf);
    next.set(value, this.buf.length);
    this.buf = next;
  }

  private indexOf(needle: Uint8Array, from = 0): number {
    outer: for (let i = from; i + needle.length <= this.buf.length; i++) {
      for (let j = 0; j < needle.length; j++) if (this.buf[i + j] !== needle[j]) continue outer;
      return i;
    }
    return -1;
  }

  async next(): Promise<MjpegPart> {
    let at: number;
    while ((at = this.indexOf(this.boundary)) < 0) await this.more();
    const crlf2 = new TextEncoder().encode('\r\n\r\n');
    let end: number;
    while ((end = this.indexOf(crlf2, at)) < 0) await this.more();
    const head = new TextDecoder().decode(this.buf.subarray(at + this.boundary.length, end));
    const headers: Record<string, string> = {};
    for (const line of head.split('\r\n')) {
      const c = line.indexOf(':');
      if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
    }
    const length = Number(headers['content-length']);
    if (!Number.isInteger(length) || length <= 0) throw new Error(`a part without a Content-Length: ${JSON.stringify(head)}`);
    const start = end + 4;
    while (this.buf.length < start + length) await this.more();
    const bytes = this.buf.slice(start, start + length);
    this.buf = this.buf.slice(start + length);
    return { headers, bytes, arrivedAt: Date.now() };
  }

  async cancel() {
    await this.reader.cancel().catch(() => {});
  }
}

/** The status a WebSocket upgrade request gets (101 when it is accepted), without speaking WebSocket after it. */
export function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { ...headers, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}
