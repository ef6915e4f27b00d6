// Typing a text on a target whose keyboard layout we know: every character becomes the keystrokes
// that produce it on that layout (AltGr and dead keys included), checked whole before the first
// key goes out, so a text is refused naming its first untypeable character rather than typed in
// part. Pure and zod-free: the Worker checks a text with it before any device work, the agent plans
// with it again (it trusts no one), and the dashboard may use it to warn early.
//
// FOUNDATION STUB: en-US only, ASCII only. The layouts work replaces this with the layouts
// generated from xkeyboard-config (shared/hid/layouts/), keeping these signatures.
import { MODIFIER_BITS } from './keycodes.ts';

/** One keystroke: `code` pressed with the modifier byte `modifiers`, then everything released. */
export interface Stroke {
  code: string;
  modifiers: number;
}

/** A character and the strokes that type it (two or more for a dead key). */
export interface CharPlan {
  char: string;
  strokes: Stroke[];
}

export interface Substitution {
  char: string;
  as: string;
  count: number;
}

export type TextPlan =
  | { ok: true; layout: string; chars: CharPlan[]; substitutions: Substitution[] }
  | { ok: false; code: 'UNKNOWN_LAYOUT' | 'UNTYPEABLE_CHARACTER'; message: string; index?: number; char?: string };

export interface LayoutInfo {
  id: string;
  name: string;
}

export const LAYOUTS: readonly LayoutInfo[] = [{ id: 'en-US', name: 'English (US)' }];

const SHIFT = MODIFIER_BITS.ShiftLeft;
const US: Record<string, Stroke> = { ' ': { code: 'Space', modifiers: 0 }, '\n': { code: 'Enter', modifiers: 0 }, '\t': { code: 'Tab', modifiers: 0 } };
for (let i = 0; i < 26; i++) {
  const c = String.fromCharCode(97 + i);
  US[c] = { code: `Key${c.toUpperCase()}`, modifiers: 0 };
  US[c.toUpperCase()] = { code: `Key${c.toUpperCase()}`, modifiers: SHIFT };
}
'1234567890'.split('').forEach((d, i) => (US[d] = { code: `Digit${d}`, modifiers: 0 }) && (US['!@#$%^&*()'[i]!] = { code: `Digit${d}`, modifiers: SHIFT }));
for (const [code, plain, shifted] of [['Minus', '-', '_'], ['Equal', '=', '+'], ['BracketLeft', '[', '{'], ['BracketRight', ']', '}'], ['Backslash', '\\', '|'], ['Semicolon', ';', ':'], ['Quote', "'", '"'], ['Backquote', '`', '~'], ['Comma', ',', '<'], ['Period', '.', '>'], ['Slash', '/', '?']] as const) {
  US[plain] = { code, modifiers: 0 };
  US[shifted] = { code, modifiers: SHIFT };
}

export function planText(text: string, layout: string): TextPlan {
  if (layout !== 'en-US') return { ok: false, code: 'UNKNOWN_LAYOUT', message: `no keyboard layout ${layout}` };
  const chars: CharPlan[] = [];
  let index = 0;
  for (const char of text.replace(/\r\n?/g, '\n')) {
    const stroke = US[char];
    if (!stroke) return { ok: false, code: 'UNTYPEABLE_CHARACTER', message: `the ${layout} layout cannot type ${JSON.stringify(char)} (character ${index + 1})`, index, char };
    chars.push({ char, strokes: [stroke] });
    index++;
  }
  return { ok: true, layout, chars, substitutions: [] };
}
