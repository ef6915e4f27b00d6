// The simulated screen: what `--simulate` and the tests look at instead of a capture card. It
// draws a test image (colour bars, a grid, the title) and, on top, what it saw the HID gadgets
// receive: the last characters typed (decoded from the keyboard reports as en-US), the keys and
// modifiers held, the pointer drawn where the mouse reports put it, how many reports it saw, a
// frame counter and the capture time. So a test (or a user) can tell that input reached the
// screen's side, and the benchmark can read each frame's capture time.
//
// No video signal while the file <hidDir>/no-signal exists, as if the HDMI cable were out: a test
// or a user can pull and replug it at run time. It is looked at no more than every 250 ms.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HID_USAGES, MODIFIER_BITS } from '../../../shared/hid/keycodes.ts';
import { ABSOLUTE_MAX } from '../../../shared/hid/reports.ts';
import { CELL_HEIGHT, CELL_WIDTH, drawText } from './font.ts';
import { createImage, downscale, fillRect, fitWithin, rgb, words, type RgbaImage } from './image.ts';
import { JpegRowEncoder } from './jpeg.ts';
import { encodePng } from './png.ts';
import type { CaptureOptions, Frame, ScreenSource, ScreenState } from './types.ts';

export const TITLE = 'pirelay simulated screen';
/** How many characters of what was typed the screen shows. */
export const TYPED_SHOWN = 40;
const SIGNAL_CHECK_MS = 250;
/** Row encoders kept (one per size and quality a viewer asks for). */
const ENCODERS_KEPT = 4;

const BACKGROUND = rgb(24, 28, 34);
const GRID = rgb(44, 50, 60);
const PANEL = rgb(10, 12, 16);
const TEXT = rgb(235, 235, 235);
const ACCENT = rgb(120, 200, 255);
const BARS = [rgb(235, 235, 235), rgb(235, 235, 16), rgb(16, 235, 235), rgb(16, 235, 16), rgb(235, 16, 235), rgb(235, 16, 16), rgb(16, 16, 235), rgb(16, 16, 16)];

const CODE_OF_USAGE = new Map<number, string>(Object.entries(HID_USAGES).map(([code, usage]) => [usage, code]));

// en-US: what a key types, unshifted and shifted.
const US_KEYS: Record<string, [string, string]> = {
  Space: [' ', ' '], Minus: ['-', '_'], Equal: ['=', '+'], BracketLeft: ['[', '{'], BracketRight: [']', '}'], Backslash: ['\\', '|'],
  IntlBackslash: ['\\', '|'], Semicolon: [';', ':'], Quote: ["'", '"'], Backquote: ['`', '~'], Comma: [',', '<'], Period: ['.', '>'], Slash: ['/', '?'],
  Digit1: ['1', '!'], Digit2: ['2', '@'], Digit3: ['3', '#'], Digit4: ['4', '$'], Digit5: ['5', '%'], Digit6: ['6', '^'], Digit7: ['7', '&'],
  Digit8: ['8', '*'], Digit9: ['9', '('], Digit0: ['0', ')'],
  NumpadDivide: ['/', '/'], NumpadMultiply: ['*', '*'], NumpadSubtract: ['-', '-'], NumpadAdd: ['+', '+'], NumpadDecimal: ['.', '.'], NumpadEqual: ['=', '='],
};
for (let i = 0; i < 26; i++) {
  const c = String.fromCharCode(97 + i);
  US_KEYS[`Key${c.toUpperCase()}`] = [c, c.toUpperCase()];
}
for (let i = 0; i < 10; i++) US_KEYS[`Numpad${i}`] = [String(i), String(i)];

const SHIFT = MODIFIER_BITS.ShiftLeft | MODIFIER_BITS.ShiftRight;
const CHORD_MODIFIERS: [number, string][] = [
  [MODIFIER_BITS.ControlLeft | MODIFIER_BITS.ControlRight, 'Ctrl'],
  [MODIFIER_BITS.AltLeft | MODIFIER_BITS.AltRight, 'Alt'],
  [MODIFIER_BITS.MetaLeft | MODIFIER_BITS.MetaRight, 'Meta'],
];

/** What a newly pressed key shows as: its character, or its name in angle brackets (with a chord's modifiers). */
export function keyText(code: string, modifiers: number): string {
  const chord = CHORD_MODIFIERS.filter(([bits]) => modifiers & bits).map(([, name]) => name);
  const chars = US_KEYS[code];
  if (chars && chord.length === 0) return chars[modifiers & SHIFT ? 1 : 0];
  return `<${[...chord, code].join('+')}>`;
}

export interface SimulatedOptions {
  width?: number;
  height?: number;
  /** no-signal lives here; without it the signal is always on. */
  hidDir?: string;
  /** The clock (ms since the epoch); tests pass their own. */
  now?: () => number;
}

export class SimulatedScreen implements ScreenSource {
  readonly name = 'simulated';
  readonly width: number;
  readonly height: number;
  private readonly hidDir: string | undefined;
  private readonly now: () => number;
  private readonly base: RgbaImage;
  private readonly canvas: RgbaImage;
  private readonly unit: number;
  private typed = '';
  private keys: number[] = [];
  private modifiers = 0;
  private pointer = { x: 0, y: 0, buttons: 0, wheel: 0 };
  private reports = 0;
  private frames = 0;
  private signal = true;
  private signalCheckedAt = -Infinity;
  private readonly encoders = new Map<string, JpegRowEncoder>();
  /** Where each line's value (typed, held, pointer, leds, reports, frame) was drawn: for tests reading the screen back. */
  readonly placed = new Map<string, { x: number; y: number; scale: number }>();

  constructor(options: SimulatedOptions = {}) {
    this.width = Math.max(64, Math.min(8192, Math.floor(options.width ?? 1280)));
    this.height = Math.max(64, Math.min(8192, Math.floor(options.height ?? 720)));
    this.hidDir = options.hidDir;
    this.now = options.now ?? (() => performance.timeOrigin + performance.now());
    this.unit = Math.max(1, Math.floor(Math.min(this.width / 640, this.height / 360)));
    this.base = this.drawBase();
    this.canvas = createImage(this.width, this.height);
  }

  observe(gadget: 'keyboard' | 'mouse', report: Uint8Array): void {
    this.reports++;
    if (gadget === 'keyboard' && report.length >= 8) {
      const modifiers = report[0]!;
      const keys = [...report.subarray(2, 8)].filter((u) => u !== 0);
      for (const usage of keys) {
        if (this.keys.includes(usage)) continue;
        this.typed = (this.typed + keyText(CODE_OF_USAGE.get(usage) ?? `0x${usage.toString(16)}`, modifiers)).slice(-TYPED_SHOWN);
      }
      this.keys = keys;
      this.modifiers = modifiers;
    } else if (gadget === 'mouse' && report.length >= 7) {
      this.pointer = {
        buttons: report[0]!,
        x: Math.min(ABSOLUTE_MAX, report[1]! | (report[2]! << 8)) / ABSOLUTE_MAX,
        y: Math.min(ABSOLUTE_MAX, report[3]! | (report[4]! << 8)) / ABSOLUTE_MAX,
        wheel: (report[5]! << 24) >> 24,
      };
    }
  }

  /** What the screen shows now, for tests. */
  shown(): { typed: string; held: string[]; pointer: { x: number; y: number; buttons: number; wheel: number }; reports: number; frames: number } {
    return { typed: this.typed, held: this.held(), pointer: { ...this.pointer }, reports: this.reports, frames: this.frames };
  }

  hasSignal(): boolean {
    if (!this.hidDir) return true;
    const now = Date.now();
    if (now - this.signalCheckedAt >= SIGNAL_CHECK_MS) {
      this.signalCheckedAt = now;
      this.signal = !existsSync(join(this.hidDir, 'no-signal'));
    }
    return this.signal;
  }

  async capture(options: CaptureOptions): Promise<Frame | null> {
    if (!this.hasSignal()) return null;
    const capturedAt = this.now();
    const full = this.render(capturedAt);
    const size = fitWithin(this.width, this.height, options.maxWidth, options.maxHeight);
    const image = downscale(full, size.width, size.height);
    if (options.format === 'png') return { contentType: 'image/png', bytes: encodePng(image), ...size, capturedAt };
    return { contentType: 'image/jpeg', bytes: this.encoder(size.width, size.height, options.quality).encode(image), ...size, capturedAt };
  }

  state(): ScreenState {
    const signal = this.hasSignal();
    return { backend: this.name, signal, width: signal ? this.width : null, height: signal ? this.height : null, ...(signal ? {} : { message: 'no signal (the no-signal file exists)' }) };
  }

  close(): void {
    this.encoders.clear();
  }

  /** Draws the current frame (counting it) into the canvas and returns it. */
  render(capturedAt = this.now()): RgbaImage {
    this.frames++;
    const u = this.unit;
    const image = this.canvas;
    image.data.set(this.base.data);
    const left = 16 * u;
    let y = Math.floor(this.height * 0.2) + 56 * u;
    const line = (label: string, value: string, scale: number) => {
      const w = drawText(image, left, y, label, scale, ACCENT, PANEL);
      this.placed.set(label.slice(0, -2), { x: left + w, y, scale });
      drawText(image, left + w, y, value, scale, TEXT, PANEL);
      y += (CELL_HEIGHT + 4) * scale;
    };
    line('typed: ', this.typed, u + 1);
    const held = this.held();
    line('held: ', held.length ? held.join(' ') : '(none)', u);
    const p = this.pointer;
    line('pointer: ', `${(p.x * 100).toFixed(1)}% ${(p.y * 100).toFixed(1)}%  buttons ${p.buttons}  wheel ${p.wheel}`, u);
    line('leds: ', 'none (a simulated host sends no LED report)', u);
    line('reports: ', String(this.reports), u);
    line('frame: ', `${this.frames}  captured ${capturedAt.toFixed(1)} ms`, u);
    this.drawPointer(image, Math.round(p.x * (this.width - 1)), Math.round(p.y * (this.height - 1)));
    return image;
  }

  private held(): string[] {
    const modifiers = Object.entries(MODIFIER_BITS).filter(([, bit]) => this.modifiers & bit).map(([code]) => code);
    return [...modifiers, ...this.keys.map((u) => CODE_OF_USAGE.get(u) ?? `0x${u.toString(16)}`)];
  }

  private encoder(width: number, height: number, quality: number): JpegRowEncoder {
    const key = `${width}x${height}q${quality}`;
    let encoder = this.encoders.get(key);
    if (encoder) {
      this.encoders.delete(key); // re-inserted below: the map's order is least recently used first
    } else {
      encoder = new JpegRowEncoder(quality);
      if (this.encoders.size >= ENCODERS_KEPT) this.encoders.delete(this.encoders.keys().next().value!);
    }
    this.encoders.set(key, encoder);
    return encoder;
  }

  private drawBase(): RgbaImage {
    const { width, height, unit: u } = this;
    const image = createImage(width, height);
    words(image).fill(BACKGROUND);
    const barsHeight = Math.floor(height * 0.2);
    for (let x = 0; x < width; x += 40 * u) fillRect(image, x, barsHeight, 1, height - barsHeight, GRID);
    for (let y = barsHeight; y < height; y += 40 * u) fillRect(image, 0, y, width, 1, GRID);
    const barWidth = width / BARS.length;
    BARS.forEach((color, i) => fillRect(image, Math.round(i * barWidth), 0, Math.round((i + 1) * barWidth) - Math.round(i * barWidth), barsHeight, color));
    drawText(image, 16 * u, barsHeight + 16 * u, TITLE, 2 * u, TEXT, PANEL);
    const size = `${width}x${height}`;
    drawText(image, width - (size.length + 1) * CELL_WIDTH * u, height - 2 * CELL_HEIGHT * u, size, u, TEXT, PANEL);
    return image;
  }

  /** An arrow, white with a black outline, its tip at (x, y). */
  private drawPointer(image: RgbaImage, x: number, y: number): void {
    const u = this.unit;
    const black = rgb(0, 0, 0);
    const white = rgb(255, 255, 255);
    ARROW.forEach((row, dy) => {
      for (let dx = 0; dx < row.length; dx++) {
        const c = row[dx];
        if (c === 'X') fillRect(image, x + dx * u, y + dy * u, u, u, black);
        else if (c === 'W') fillRect(image, x + dx * u, y + dy * u, u, u, white);
      }
    });
  }
}

const ARROW = [
  'X',
  'XX',
  'XWX',
  'XWWX',
  'XWWWX',
  'XWWWWX',
  'XWWWWWX',
  'XWWWWWWX',
  'XWWWWWWWX',
  'XWWWWWXXXX',
  'XWWXWWX',
  'XWX XWWX',
  'XX  XWWX',
  'X    XWWX',
  '     XWWX',
  '      XX',
];
