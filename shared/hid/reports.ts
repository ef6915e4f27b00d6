// The reports a USB host receives from our gadgets, byte for byte: the 8-byte boot keyboard report
// [modifiers, 0, k1..k6] with six keys at once (6KRO) and the 7-byte absolute mouse report
// [buttons, X lo, X hi, Y lo, Y hi, wheel, horizontal wheel], and the keyboard's LED output report.
// The descriptors in descriptors.ts describe exactly these; the agent writes them to /dev/hidg0
// and /dev/hidg1. Pure functions and one small state machine, no I/O.
import { HID_USAGES, isModifier, MODIFIER_BITS } from './keycodes.ts';

export const KEYBOARD_REPORT_SIZE = 8;
export const MOUSE_REPORT_SIZE = 7;
/** Keys (other than modifiers) a boot keyboard report holds at once. */
export const MAX_KEYS_HELD = 6;
/** The absolute axes run 0..ABSOLUTE_MAX (the logical maximum of the mouse descriptor). */
export const ABSOLUTE_MAX = 32767;

export function keyboardReport(modifiers: number, usages: readonly number[]): Uint8Array {
  if (usages.length > MAX_KEYS_HELD) throw new RangeError(`a boot report holds ${MAX_KEYS_HELD} keys, not ${usages.length}`);
  const r = new Uint8Array(KEYBOARD_REPORT_SIZE);
  r[0] = modifiers & 0xff;
  for (let i = 0; i < usages.length; i++) r[2 + i] = usages[i]!;
  return r;
}

export interface MouseState {
  /** Bit 0 left, 1 right, 2 middle, 3 back, 4 forward. */
  buttons: number;
  /** 0 (left edge) … 1 (right edge). */
  x: number;
  /** 0 (top) … 1 (bottom). */
  y: number;
  /** Vertical wheel, positive up; clamped to a signed byte. */
  wheel?: number;
  /** Horizontal wheel, positive right; clamped to a signed byte. */
  hwheel?: number;
}

function axis(relative: number): number {
  const v = Math.floor(Math.min(1, Math.max(0, relative)) * ABSOLUTE_MAX);
  return Number.isFinite(v) ? v : 0;
}

function signedByte(n: number | undefined): number {
  const v = Math.max(-127, Math.min(127, Math.trunc(n ?? 0)));
  return (Number.isFinite(v) ? v : 0) & 0xff;
}

export function mouseReport(m: MouseState): Uint8Array {
  const x = axis(m.x);
  const y = axis(m.y);
  return new Uint8Array([m.buttons & 0x1f, x & 0xff, x >> 8, y & 0xff, y >> 8, signedByte(m.wheel), signedByte(m.hwheel)]);
}

/** The keyboard's LED output report (one byte, HID LED page): what the host says its locks are. */
export interface Leds {
  num_lock: boolean;
  caps_lock: boolean;
  scroll_lock: boolean;
}

export function parseLeds(byte: number): Leds {
  return { num_lock: (byte & 0x01) !== 0, caps_lock: (byte & 0x02) !== 0, scroll_lock: (byte & 0x04) !== 0 };
}

export type KeyChange = { ok: true; report: Uint8Array; changed: boolean } | { ok: false; code: 'UNKNOWN_KEY' | 'TOO_MANY_KEYS'; message: string };

/**
 * The keys held on one keyboard and the report that says so. A seventh non-modifier key is refused
 * (TOO_MANY_KEYS) and the six stay held, rather than a report that silently drops one.
 */
export class KeyboardState {
  private modifiers = 0;
  private readonly keys: string[] = [];

  down(code: string): KeyChange {
    if (!Object.hasOwn(HID_USAGES, code)) return { ok: false, code: 'UNKNOWN_KEY', message: `${code} is not a key code` };
    if (isModifier(code)) {
      const before = this.modifiers;
      this.modifiers |= MODIFIER_BITS[code];
      return { ok: true, report: this.report(), changed: before !== this.modifiers };
    }
    // Two names of one key (Lang4 and Hiragana) are one key held, never a usage twice in a report.
    if (this.heldIndex(code) >= 0) return { ok: true, report: this.report(), changed: false };
    if (this.keys.length >= MAX_KEYS_HELD) {
      return { ok: false, code: 'TOO_MANY_KEYS', message: `${MAX_KEYS_HELD} keys are held already (${this.keys.join(', ')}); release one before pressing ${code}` };
    }
    this.keys.push(code);
    return { ok: true, report: this.report(), changed: true };
  }

  up(code: string): KeyChange {
    if (!Object.hasOwn(HID_USAGES, code)) return { ok: false, code: 'UNKNOWN_KEY', message: `${code} is not a key code` };
    if (isModifier(code)) {
      const before = this.modifiers;
      this.modifiers &= ~MODIFIER_BITS[code];
      return { ok: true, report: this.report(), changed: before !== this.modifiers };
    }
    const i = this.heldIndex(code);
    if (i < 0) return { ok: true, report: this.report(), changed: false };
    this.keys.splice(i, 1);
    return { ok: true, report: this.report(), changed: true };
  }

  /** Releases everything; the report is all zeros. */
  releaseAll(): Uint8Array {
    this.modifiers = 0;
    this.keys.length = 0;
    return this.report();
  }

  /** The codes held, modifiers first. */
  held(): string[] {
    const mods = Object.entries(MODIFIER_BITS)
      .filter(([, bit]) => (this.modifiers & bit) !== 0)
      .map(([code]) => code);
    return [...mods, ...this.keys];
  }

  private heldIndex(code: string): number {
    return this.keys.findIndex((k) => HID_USAGES[k] === HID_USAGES[code]);
  }

  report(): Uint8Array {
    return keyboardReport(
      this.modifiers,
      this.keys.map((k) => HID_USAGES[k]!),
    );
  }
}
