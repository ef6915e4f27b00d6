// The layouts against the real thing: libxkbcommon (what a Wayland or X11 Linux host runs) compiles
// the same xkb-data and X11 Compose table, and we feed it our HID reports as the host's kernel would
// (the USB usage's evdev key pressed with the modifier keys the report's bits hold). What it types
// must be our text, for every character of every layout; and every key at every level must be
// what our generated table says. Nothing of ours (not the symbols parser, not the keysym table, not
// the key-name table) is on this side. Skipped, saying why, where libxkbcommon is not installed.
import { describe, expect, it } from 'bun:test';
import { dlopen, FFIType, ptr, type Pointer } from 'bun:ffi';
import { existsSync } from 'node:fs';
import { HID_USAGES, MODIFIER_BITS } from '../../../shared/hid/keycodes.ts';
import { LAYOUT_LIST } from '../../../shared/hid/layout-list.ts';
import { DEAD_KEYS } from '../../../shared/hid/layouts/dead-keys.ts';
import { KEYMAPS } from '../../../shared/hid/layouts/index.ts';
import type { Keymap } from '../../../shared/hid/layouts/types.ts';
import { keyboardReport } from '../../../shared/hid/reports.ts';
import { planText, type CharPlan } from '../../../shared/hid/typing.ts';

/**
 * HID usage → Linux input key (include/uapi/linux/input-event-codes.h, as drivers/hid/hid-input.c
 * maps page 0x07), for the keys the layouts use; xkb's keycode is that plus 8.
 */
const EVDEV: Readonly<Record<string, number>> = {
  Backquote: 41, Digit1: 2, Digit2: 3, Digit3: 4, Digit4: 5, Digit5: 6, Digit6: 7, Digit7: 8, Digit8: 9,
  Digit9: 10, Digit0: 11, Minus: 12, Equal: 13, IntlYen: 124,
  KeyQ: 16, KeyW: 17, KeyE: 18, KeyR: 19, KeyT: 20, KeyY: 21, KeyU: 22, KeyI: 23, KeyO: 24, KeyP: 25,
  BracketLeft: 26, BracketRight: 27,
  KeyA: 30, KeyS: 31, KeyD: 32, KeyF: 33, KeyG: 34, KeyH: 35, KeyJ: 36, KeyK: 37, KeyL: 38,
  Semicolon: 39, Quote: 40, Backslash: 43, IntlBackslash: 86,
  KeyZ: 44, KeyX: 45, KeyC: 46, KeyV: 47, KeyB: 48, KeyN: 49, KeyM: 50, Comma: 51, Period: 52, Slash: 53,
  IntlRo: 89, Space: 57, Enter: 28, Tab: 15, ShiftLeft: 42, AltRight: 100,
};
const CODE_OF = new Map(Object.entries(HID_USAGES).map(([code, usage]) => [usage, code]));

const LIB = ['/usr/lib/x86_64-linux-gnu/libxkbcommon.so.0', '/usr/lib/aarch64-linux-gnu/libxkbcommon.so.0', '/usr/lib/libxkbcommon.so.0'].find((p) => existsSync(p));
const COMPOSE_DIR = '/usr/share/X11/locale/compose.dir';
const why = !LIB ? 'libxkbcommon0 is not installed' : !existsSync(COMPOSE_DIR) ? `${COMPOSE_DIR} is missing (libx11-data)` : !existsSync('/usr/share/X11/xkb/rules/evdev') ? 'xkb-data is not installed' : '';
if (why) console.warn(`skipping the libxkbcommon layout tests: ${why}`);

function open() {
  return dlopen(LIB!, {
    xkb_context_new: { args: [FFIType.i32], returns: FFIType.ptr },
    xkb_keymap_new_from_names: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.ptr },
    xkb_state_new: { args: [FFIType.ptr], returns: FFIType.ptr },
    xkb_state_unref: { args: [FFIType.ptr], returns: FFIType.void },
    xkb_state_update_key: { args: [FFIType.ptr, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
    xkb_state_key_get_one_sym: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.u32 },
    xkb_keysym_to_utf32: { args: [FFIType.u32], returns: FFIType.u32 },
    xkb_keysym_get_name: { args: [FFIType.u32, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
    xkb_compose_table_new_from_locale: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.ptr },
    xkb_compose_state_new: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.ptr },
    xkb_compose_state_unref: { args: [FFIType.ptr], returns: FFIType.void },
    xkb_compose_state_feed: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    xkb_compose_state_get_status: { args: [FFIType.ptr], returns: FFIType.i32 },
    xkb_compose_state_get_utf8: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
    xkb_compose_state_reset: { args: [FFIType.ptr], returns: FFIType.void },
  }).symbols;
}

const DOWN = 1;
const UP = 0;
const COMPOSING = 1;
const COMPOSED = 2;
const CANCELLED = 3;

function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}

/** A host's keyboard: libxkbcommon's keymap for rules evdev, model pc105 and the layout. */
class Host {
  private readonly keep: Buffer[] = [];
  readonly keymap: Pointer;
  constructor(
    private readonly x: ReturnType<typeof open>,
    private readonly ctx: Pointer,
    private readonly composeTable: Pointer,
    xkb: string,
  ) {
    const m = /^(\w+)(?:\((\w+)\))?$/.exec(xkb)!;
    const parts = ['evdev', 'pc105', m[1]!, m[2] ?? '', ''].map(cstr);
    this.keep.push(...parts);
    const names = new BigUint64Array(parts.map((b) => BigInt(ptr(b))));
    const keymap = x.xkb_keymap_new_from_names(ctx, ptr(names), 0) as Pointer | null;
    if (!keymap) throw new Error(`libxkbcommon cannot compile ${xkb}`);
    this.keymap = keymap;
  }

  private name(sym: number): string {
    const buf = Buffer.alloc(64);
    const n = this.x.xkb_keysym_get_name(sym, ptr(buf), 64);
    return buf.subarray(0, Math.max(0, n)).toString('utf8');
  }

  /** What `code` types with these modifier bits held: a character, a dead key's name, or ''. */
  level(code: string, modifiers: number): string {
    const state = this.x.xkb_state_new(this.keymap) as Pointer;
    try {
      const held = this.press(state, modifiers);
      const sym = this.x.xkb_state_key_get_one_sym(state, EVDEV[code]! + 8);
      for (const k of held) this.x.xkb_state_update_key(state, k, UP);
      return this.symbol(sym);
    } finally {
      this.x.xkb_state_unref(state);
    }
  }

  private symbol(sym: number): string {
    if (sym === 0) return '';
    const name = this.name(sym);
    if (name.startsWith('dead_')) return name;
    const cp = this.x.xkb_keysym_to_utf32(sym);
    return cp >= 0x20 && !(cp >= 0x7f && cp < 0xa0) ? String.fromCodePoint(cp) : '';
  }

  private press(state: Pointer, modifiers: number): number[] {
    const held: number[] = [];
    if (modifiers & MODIFIER_BITS.ShiftLeft) held.push(EVDEV.ShiftLeft! + 8);
    if (modifiers & MODIFIER_BITS.AltRight) held.push(EVDEV.AltRight! + 8);
    for (const k of held) this.x.xkb_state_update_key(state, k, DOWN);
    return held;
  }

  /** Feeds boot keyboard reports to the keymap and Compose, as a Linux host would; the text typed. */
  type(reports: readonly Uint8Array[]): string {
    const state = this.x.xkb_state_new(this.keymap) as Pointer;
    const compose = this.x.xkb_compose_state_new(this.composeTable, 0) as Pointer;
    const buf = Buffer.alloc(64);
    let text = '';
    try {
      for (const r of reports) {
        const usage = r[2]!;
        if (usage === 0) continue; // the release: nothing is held between our reports
        const code = CODE_OF.get(usage)!;
        const kc = EVDEV[code];
        if (kc === undefined) throw new Error(`no evdev key for ${code}`);
        const held = this.press(state, r[0]!);
        const sym = this.x.xkb_state_key_get_one_sym(state, kc + 8);
        this.x.xkb_state_update_key(state, kc + 8, DOWN);
        this.x.xkb_state_update_key(state, kc + 8, UP);
        for (const k of held) this.x.xkb_state_update_key(state, k, UP);
        this.x.xkb_compose_state_feed(compose, sym);
        const status = this.x.xkb_compose_state_get_status(compose);
        if (status === COMPOSING) continue;
        if (status === CANCELLED) throw new Error(`the dead key sequence ending in ${this.name(sym)} composes nothing`);
        if (status === COMPOSED) {
          const n = this.x.xkb_compose_state_get_utf8(compose, ptr(buf), 64);
          text += buf.subarray(0, n).toString('utf8');
          this.x.xkb_compose_state_reset(compose);
          continue;
        }
        const name = this.name(sym);
        text += name === 'Return' ? '\n' : name === 'Tab' ? '\t' : this.symbol(sym);
      }
      if (this.x.xkb_compose_state_get_status(compose) === COMPOSING) throw new Error('the text ends in a dead key');
      return text;
    } finally {
      this.x.xkb_compose_state_unref(compose);
      this.x.xkb_state_unref(state);
    }
  }
}

function reportsOf(chars: readonly CharPlan[]): Uint8Array[] {
  return chars.flatMap((c) => c.strokes.flatMap((s) => [keyboardReport(s.modifiers, [HID_USAGES[s.code]!]), keyboardReport(0, [])]));
}

function typeable(keymap: Keymap): string[] {
  const direct = new Set<string>();
  const dead = new Set<string>();
  for (const levels of Object.values(keymap.keys)) for (const c of levels) if (c !== '') (c.startsWith('dead_') ? dead : direct).add(c);
  const all = new Set(direct);
  for (const d of dead) {
    const pairs = [...(DEAD_KEYS[d] ?? '')];
    for (let i = 0; i < pairs.length; i += 2) if (direct.has(pairs[i]!)) all.add(pairs[i + 1]!);
  }
  return [...all];
}

describe.skipIf(why !== '')('layouts against libxkbcommon', () => {
  const x = why ? undefined : open();
  const ctx = x?.xkb_context_new(0) as Pointer | null | undefined;
  const locale = cstr('en_US.UTF-8');
  const composeTable = ctx ? (x!.xkb_compose_table_new_from_locale(ctx, ptr(locale), 0) as Pointer | null) : null;

  it('has a context and the en_US.UTF-8 Compose table', () => {
    expect(ctx).toBeTruthy();
    expect(composeTable).toBeTruthy();
  });

  for (const { id } of LAYOUT_LIST) {
    it(`${id}: every key at every level is what libxkbcommon makes of ${KEYMAPS[id]!.xkb}`, () => {
      const keymap = KEYMAPS[id]!;
      const host = new Host(x!, ctx!, composeTable!, keymap.xkb);
      for (const code of Object.keys(EVDEV)) {
        if (['Enter', 'Tab', 'ShiftLeft', 'AltRight'].includes(code)) continue;
        const levels = keymap.keys[code];
        const combos = keymap.levels === 4 ? [0, 0x02, 0x40, 0x42] : [0, 0x02];
        for (const mods of combos) {
          const theirs = host.level(code, mods);
          const ours = !levels ? '' : levels.length === 1 ? levels[0]! : levels.length === 2 ? levels[mods & 0x02 ? 1 : 0]! : levels[(mods & 0x02 ? 1 : 0) + (mods & 0x40 ? 2 : 0)]!;
          expect(`${code}+${mods.toString(16)}: ${ours}`).toBe(`${code}+${mods.toString(16)}: ${theirs}`);
        }
      }
    });

    it(`${id}: libxkbcommon types every character of the layout back from our reports`, () => {
      const keymap = KEYMAPS[id]!;
      const host = new Host(x!, ctx!, composeTable!, keymap.xkb);
      const text = `${typeable(keymap).join('')}\n\t`;
      const plan = planText(text, id);
      if (!plan.ok) throw new Error(plan.message);
      expect(host.type(reportsOf(plan.chars))).toBe(text);
    });
  }
});
