// KeyboardEvent.code (the UI Events code spec, with Chromium's names where the spec has none) →
// HID usage on the Keyboard/Keypad page (0x07). One table, used by the Worker to refuse an unknown
// code before any device work, by the agent to build reports, and by the dashboard to know which
// keys it may send. Plain data with no imports, so every side (and the dashboard) can load it.
//
// Checked entry by entry against w3c/uievents-code (index-source.txt, 2023) and Chromium's
// ui/events/keycodes/dom/dom_code_data.inc: every code of the spec whose key has a usage on page
// 0x07 is here, with the usage Chromium gives it (NumpadHash, which Chromium leaves unmapped, takes
// HID's Keypad # 0xCC). Spec codes left out have no page-0x07 usage: the
// media and browser keys, Sleep and WakeUp live on the Consumer (0x0C) and Generic Desktop (0x01)
// pages, which these gadgets do not describe; Fn/FnLock never leave the keyboard; Hyper, Super,
// Turbo, Resume, Suspend and Unidentified have no usage; NumpadStar is a phone keypad's * with no
// usage of its own (a PC numpad's * is NumpadMultiply). Beyond the spec: IntlHash (the ISO #~ key,
// usage 0x32, which the spec folds into Backslash) and F13–F24, which the spec names only by
// example; browsers send both.

/** The eight modifier keys and their bit in byte 0 of the boot keyboard report. */
export const MODIFIER_BITS = {
  ControlLeft: 0x01,
  ShiftLeft: 0x02,
  AltLeft: 0x04,
  MetaLeft: 0x08,
  ControlRight: 0x10,
  ShiftRight: 0x20,
  AltRight: 0x40,
  MetaRight: 0x80,
} as const;
export type ModifierCode = keyof typeof MODIFIER_BITS;
export const MODIFIER_CODES = Object.keys(MODIFIER_BITS) as ModifierCode[];

/** Usage ids of page 0x07 by code; modifiers are E0–E7 (they travel as bits, never in k1..k6). */
export const HID_USAGES: Readonly<Record<string, number>> = {
  KeyA: 0x04, KeyB: 0x05, KeyC: 0x06, KeyD: 0x07, KeyE: 0x08, KeyF: 0x09, KeyG: 0x0a, KeyH: 0x0b,
  KeyI: 0x0c, KeyJ: 0x0d, KeyK: 0x0e, KeyL: 0x0f, KeyM: 0x10, KeyN: 0x11, KeyO: 0x12, KeyP: 0x13,
  KeyQ: 0x14, KeyR: 0x15, KeyS: 0x16, KeyT: 0x17, KeyU: 0x18, KeyV: 0x19, KeyW: 0x1a, KeyX: 0x1b,
  KeyY: 0x1c, KeyZ: 0x1d,
  Digit1: 0x1e, Digit2: 0x1f, Digit3: 0x20, Digit4: 0x21, Digit5: 0x22, Digit6: 0x23, Digit7: 0x24,
  Digit8: 0x25, Digit9: 0x26, Digit0: 0x27,
  Enter: 0x28, Escape: 0x29, Backspace: 0x2a, Tab: 0x2b, Space: 0x2c, Minus: 0x2d, Equal: 0x2e,
  BracketLeft: 0x2f, BracketRight: 0x30, Backslash: 0x31, IntlHash: 0x32, Semicolon: 0x33, Quote: 0x34,
  Backquote: 0x35, Comma: 0x36, Period: 0x37, Slash: 0x38, CapsLock: 0x39,
  F1: 0x3a, F2: 0x3b, F3: 0x3c, F4: 0x3d, F5: 0x3e, F6: 0x3f, F7: 0x40, F8: 0x41, F9: 0x42, F10: 0x43,
  F11: 0x44, F12: 0x45,
  PrintScreen: 0x46, ScrollLock: 0x47, Pause: 0x48, Insert: 0x49, Home: 0x4a, PageUp: 0x4b, Delete: 0x4c,
  End: 0x4d, PageDown: 0x4e, ArrowRight: 0x4f, ArrowLeft: 0x50, ArrowDown: 0x51, ArrowUp: 0x52,
  NumLock: 0x53, NumpadDivide: 0x54, NumpadMultiply: 0x55, NumpadSubtract: 0x56, NumpadAdd: 0x57,
  NumpadEnter: 0x58, Numpad1: 0x59, Numpad2: 0x5a, Numpad3: 0x5b, Numpad4: 0x5c, Numpad5: 0x5d,
  Numpad6: 0x5e, Numpad7: 0x5f, Numpad8: 0x60, Numpad9: 0x61, Numpad0: 0x62, NumpadDecimal: 0x63,
  IntlBackslash: 0x64, ContextMenu: 0x65, Power: 0x66, NumpadEqual: 0x67,
  F13: 0x68, F14: 0x69, F15: 0x6a, F16: 0x6b, F17: 0x6c, F18: 0x6d, F19: 0x6e, F20: 0x6f, F21: 0x70,
  F22: 0x71, F23: 0x72, F24: 0x73,
  Open: 0x74, Help: 0x75, Select: 0x77, Again: 0x79, Undo: 0x7a, Cut: 0x7b, Copy: 0x7c, Paste: 0x7d,
  Find: 0x7e, AudioVolumeMute: 0x7f, AudioVolumeUp: 0x80, AudioVolumeDown: 0x81,
  NumpadComma: 0x85, IntlRo: 0x87, KanaMode: 0x88, IntlYen: 0x89, Convert: 0x8a, NonConvert: 0x8b,
  Lang1: 0x90, Lang2: 0x91, Lang3: 0x92, Lang4: 0x93, Lang5: 0x94,
  // The spec's legacy names for dedicated Katakana/Hiragana keys: the same usages as Lang3/Lang4
  // (HID names LANG3 "Katakana" and LANG4 "Hiragana"), so KeyboardState treats them as one key.
  Katakana: 0x92, Hiragana: 0x93,
  Abort: 0x9b, Props: 0xa3,
  NumpadParenLeft: 0xb6, NumpadParenRight: 0xb7, NumpadBackspace: 0xbb, NumpadHash: 0xcc,
  NumpadMemoryStore: 0xd0, NumpadMemoryRecall: 0xd1, NumpadMemoryClear: 0xd2, NumpadMemoryAdd: 0xd3,
  NumpadMemorySubtract: 0xd4, NumpadClear: 0xd8, NumpadClearEntry: 0xd9,
  ControlLeft: 0xe0, ShiftLeft: 0xe1, AltLeft: 0xe2, MetaLeft: 0xe3,
  ControlRight: 0xe4, ShiftRight: 0xe5, AltRight: 0xe6, MetaRight: 0xe7,
};

export const KEY_CODES = Object.keys(HID_USAGES);

export function isKeyCode(code: string): boolean {
  return Object.hasOwn(HID_USAGES, code);
}

export function isModifier(code: string): code is ModifierCode {
  return Object.hasOwn(MODIFIER_BITS, code);
}

/** The modifier byte for a set of modifier codes. */
export function modifierBits(codes: Iterable<ModifierCode>): number {
  let bits = 0;
  for (const c of codes) bits |= MODIFIER_BITS[c];
  return bits;
}
