// The reports a USB host receives, byte for byte: every code of keycodes.ts against the HID Usage
// Tables (page 0x07) transcribed here independently, the keystroke report of each, 6KRO with a
// seventh key refused, the two mouse vectors, wheel sign and clamping, and the LED byte.
import { describe, expect, it } from 'bun:test';
import { HID_USAGES, isModifier, MODIFIER_BITS, MODIFIER_CODES, modifierBits } from '../../../shared/hid/keycodes.ts';
import { KEYBOARD_REPORT_SIZE, keyboardReport, KeyboardState, MAX_KEYS_HELD, MOUSE_REPORT_SIZE, mouseReport, parseLeds } from '../../../shared/hid/reports.ts';

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');

/** HID Usage Tables 1.5, Keyboard/Keypad page (0x07), by KeyboardEvent.code. */
function expectedUsages(): Record<string, number> {
  const t: Record<string, number> = {};
  const run = (codes: string[], first: number) => codes.forEach((c, i) => (t[c] = first + i));
  run([...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'].map((l) => `Key${l}`), 0x04);
  run([...'1234567890'].map((d) => `Digit${d}`), 0x1e);
  run(['Enter', 'Escape', 'Backspace', 'Tab', 'Space', 'Minus', 'Equal', 'BracketLeft', 'BracketRight', 'Backslash', 'IntlHash', 'Semicolon', 'Quote', 'Backquote', 'Comma', 'Period', 'Slash', 'CapsLock'], 0x28);
  run(Array.from({ length: 12 }, (_, i) => `F${i + 1}`), 0x3a);
  run(['PrintScreen', 'ScrollLock', 'Pause', 'Insert', 'Home', 'PageUp', 'Delete', 'End', 'PageDown', 'ArrowRight', 'ArrowLeft', 'ArrowDown', 'ArrowUp'], 0x46);
  run(['NumLock', 'NumpadDivide', 'NumpadMultiply', 'NumpadSubtract', 'NumpadAdd', 'NumpadEnter'], 0x53);
  run([...'1234567890'].map((d) => `Numpad${d}`), 0x59);
  run(['NumpadDecimal', 'IntlBackslash', 'ContextMenu', 'Power', 'NumpadEqual'], 0x63);
  run(Array.from({ length: 12 }, (_, i) => `F${i + 13}`), 0x68);
  run(['Open', 'Help'], 0x74); // Execute, Help
  t.Select = 0x77;
  run(['Again', 'Undo', 'Cut', 'Copy', 'Paste', 'Find', 'AudioVolumeMute', 'AudioVolumeUp', 'AudioVolumeDown'], 0x79);
  t.NumpadComma = 0x85;
  run(['IntlRo', 'KanaMode', 'IntlYen', 'Convert', 'NonConvert'], 0x87); // International1–5
  run(['Lang1', 'Lang2', 'Lang3', 'Lang4', 'Lang5'], 0x90);
  t.Katakana = 0x92; // LANG3
  t.Hiragana = 0x93; // LANG4
  t.Abort = 0x9b; // Cancel
  t.Props = 0xa3; // CrSel/Props
  run(['NumpadParenLeft', 'NumpadParenRight'], 0xb6);
  t.NumpadBackspace = 0xbb;
  t.NumpadHash = 0xcc;
  run(['NumpadMemoryStore', 'NumpadMemoryRecall', 'NumpadMemoryClear', 'NumpadMemoryAdd', 'NumpadMemorySubtract'], 0xd0);
  run(['NumpadClear', 'NumpadClearEntry'], 0xd8);
  run(['ControlLeft', 'ShiftLeft', 'AltLeft', 'MetaLeft', 'ControlRight', 'ShiftRight', 'AltRight', 'MetaRight'], 0xe0);
  return t;
}

describe('keycodes', () => {
  it('maps exactly the codes of the HID usage table, each to its usage', () => {
    expect({ ...HID_USAGES }).toEqual(expectedUsages());
  });

  it('has the modifier bits of the boot report, in usage order E0..E7', () => {
    expect(MODIFIER_BITS).toEqual({ ControlLeft: 0x01, ShiftLeft: 0x02, AltLeft: 0x04, MetaLeft: 0x08, ControlRight: 0x10, ShiftRight: 0x20, AltRight: 0x40, MetaRight: 0x80 });
    for (const c of MODIFIER_CODES) expect<number>(MODIFIER_BITS[c]).toBe(1 << (HID_USAGES[c]! - 0xe0));
    expect(modifierBits(['ShiftLeft', 'AltRight'])).toBe(0x42);
  });

  it('does not take inherited names for codes', () => {
    for (const c of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) expect(Object.hasOwn(HID_USAGES, c)).toBe(false);
  });
});

describe('keyboard reports', () => {
  for (const [code, usage] of Object.entries(HID_USAGES)) {
    it(`${code}: pressed then released`, () => {
      const k = new KeyboardState();
      const down = k.down(code);
      if (!down.ok) throw new Error(down.message);
      const want = new Uint8Array(8);
      if (isModifier(code)) want[0] = MODIFIER_BITS[code];
      else want[2] = usage;
      expect(hex(down.report)).toBe(hex(want));
      expect(down.changed).toBe(true);
      const up = k.up(code);
      expect(up.ok && hex(up.report)).toBe('00 00 00 00 00 00 00 00');
    });
  }

  it('writes a keystroke with modifiers as bits and the key in k1', () => {
    expect(hex(keyboardReport(MODIFIER_BITS.ShiftLeft | MODIFIER_BITS.ControlRight, [HID_USAGES.KeyH!]))).toBe('12 00 0b 00 00 00 00 00');
    expect(KEYBOARD_REPORT_SIZE).toBe(8);
  });

  it('holds six keys and refuses a seventh, keeping the six', () => {
    const k = new KeyboardState();
    const six = ['KeyA', 'KeyB', 'KeyC', 'KeyD', 'KeyE', 'KeyF'];
    k.down('ShiftLeft');
    for (const c of six) expect(k.down(c).ok).toBe(true);
    const full = hex(k.report());
    expect(full).toBe('02 00 04 05 06 07 08 09');
    const seventh = k.down('KeyG');
    expect(seventh).toMatchObject({ ok: false, code: 'TOO_MANY_KEYS' });
    expect(hex(k.report())).toBe(full);
    expect(k.held()).toEqual(['ShiftLeft', ...six]);
    // A modifier still goes in: it is a bit, not one of the six slots.
    const ctrl = k.down('ControlLeft');
    expect(ctrl.ok && hex(ctrl.report)).toBe('03 00 04 05 06 07 08 09');
    // Releasing one frees a slot for the seventh.
    k.up('KeyC');
    const g = k.down('KeyG');
    expect(g.ok && hex(g.report)).toBe('03 00 04 05 07 08 09 0a');
    expect(MAX_KEYS_HELD).toBe(6);
  });

  it('refuses an unknown code without touching what is held', () => {
    const k = new KeyboardState();
    k.down('KeyA');
    expect(k.down('KeyÄ')).toMatchObject({ ok: false, code: 'UNKNOWN_KEY' });
    expect(k.up('toString')).toMatchObject({ ok: false, code: 'UNKNOWN_KEY' });
    expect(hex(k.report())).toBe('00 00 04 00 00 00 00 00');
  });

  it('treats two names of one key (Lang4, Hiragana) as one key held', () => {
    const k = new KeyboardState();
    k.down('Lang4');
    expect(k.down('Hiragana')).toMatchObject({ ok: true, changed: false });
    expect(hex(k.report())).toBe('00 00 93 00 00 00 00 00');
    const up = k.up('Hiragana');
    expect(up.ok && hex(up.report)).toBe('00 00 00 00 00 00 00 00');
  });

  it('releases everything at once', () => {
    const k = new KeyboardState();
    k.down('MetaRight');
    k.down('F24');
    expect(hex(k.releaseAll())).toBe('00 00 00 00 00 00 00 00');
    expect(k.held()).toEqual([]);
  });
});

describe('mouse reports', () => {
  it('matches the issue vectors', () => {
    expect(hex(mouseReport({ buttons: 1, x: 0.5, y: 0.75 }))).toBe('01 ff 3f ff 5f 00 00');
    expect(hex(mouseReport({ buttons: 0, x: 0, y: 1.0 }))).toBe('00 00 00 ff 7f 00 00');
    expect(MOUSE_REPORT_SIZE).toBe(7);
  });

  it('writes the wheels as signed bytes, clamped to ±127', () => {
    const wheels = (wheel: number, hwheel: number) => hex(mouseReport({ buttons: 0, x: 0, y: 0, wheel, hwheel }).subarray(5));
    expect(wheels(1, -1)).toBe('01 ff');
    expect(wheels(-127, 127)).toBe('81 7f');
    expect(wheels(-1000, 1000)).toBe('81 7f');
    expect(wheels(2.9, -2.9)).toBe('02 fe');
    expect(wheels(Number.NaN, Number.POSITIVE_INFINITY)).toBe('00 7f');
  });

  it('clamps the axes and keeps five buttons', () => {
    expect(hex(mouseReport({ buttons: 0xff, x: 2, y: -1 }))).toBe('1f ff 7f 00 00 00 00');
    expect(hex(mouseReport({ buttons: 0, x: Number.NaN, y: 1e-9 }))).toBe('00 00 00 00 00 00 00');
  });
});

describe('LED report', () => {
  it('reads Num, Caps and Scroll Lock from bits 0..2', () => {
    expect(parseLeds(0x00)).toEqual({ num_lock: false, caps_lock: false, scroll_lock: false });
    expect(parseLeds(0x01)).toEqual({ num_lock: true, caps_lock: false, scroll_lock: false });
    expect(parseLeds(0x02)).toEqual({ num_lock: false, caps_lock: true, scroll_lock: false });
    expect(parseLeds(0x04)).toEqual({ num_lock: false, caps_lock: false, scroll_lock: true });
    // Compose and Kana (bits 3, 4) are not shown.
    expect(parseLeds(0x1b)).toEqual({ num_lock: true, caps_lock: true, scroll_lock: false });
  });
});
