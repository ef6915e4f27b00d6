// Typing a text on a target whose keyboard layout we know: every character becomes the keystrokes
// that produce it on that layout (AltGr and dead keys included), checked whole before the first
// key goes out, so a text is refused naming its first untypeable character rather than typed in
// part. Pure and zod-free: the Worker checks a text with it before any device work, the agent plans
// with it again (it trusts no one), and the dashboard may use it to warn early.
//
// The layouts are generated from xkeyboard-config (shared/hid/layouts/, scripts/gen-layouts.ts);
// each holds "key and level → character"; here it is turned around once per layout, on first use.
// The target's Caps Lock is assumed off (the agent can see it in the LED report).
import { MODIFIER_BITS } from './keycodes.ts';
import { LAYOUT_LIST } from './layout-list.ts';
import { DEAD_KEYS } from './layouts/dead-keys.ts';
import { KEYMAPS } from './layouts/index.ts';
import type { Keymap } from './layouts/types.ts';

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

export const LAYOUTS: readonly LayoutInfo[] = LAYOUT_LIST;

const SHIFT = MODIFIER_BITS.ShiftLeft;
const ALT_GR = MODIFIER_BITS.AltRight;

/**
 * Typographic characters typed as their ASCII forms, but only on a layout that lacks them (many
 * xkb layouts have “ ” ‘ ’ – — … on AltGr, and those type them as they are).
 */
export const ASCII_FORMS: Readonly<Record<string, string>> = {
  '\u2018': "'",
  '\u2019': "'",
  '\u201c': '"',
  '\u201d': '"',
  '\u2013': '-',
  '\u2014': '-',
  '\u2026': '...',
  '\u00a0': ' ',
};

/** The keys of the 102nd/Japanese/Brazilian positions, which not every target keyboard has. */
const SPARE_KEYS = new Set(['IntlBackslash', 'IntlRo', 'IntlYen']);

/** The modifier byte that selects `level` (0-based) on a key that lists `levels` levels. */
function modifiersFor(levels: number, level: number): number {
  if (levels === 1) return 0;
  return (level & 1 ? SHIFT : 0) | (level & 2 ? ALT_GR : 0);
}

/**
 * How much we would rather not use a stroke: AltGr least wanted, then a key not every keyboard
 * has, then Shift. Fewer strokes always win (a dead key costs a whole stroke more).
 */
function cost(s: Stroke): number {
  return (s.modifiers & ALT_GR ? 100 : 0) + (SPARE_KEYS.has(s.code) ? 10 : 0) + (s.modifiers & SHIFT ? 1 : 0);
}

interface Way {
  strokes: Stroke[];
  cost: number;
}

interface Built {
  plans: Map<string, CharPlan>;
  /** The characters of ASCII_FORMS this layout types as their ASCII forms. */
  substituted: Set<string>;
}

function build(keymap: Keymap): Built {
  const direct = new Map<string, Way>();
  const dead = new Map<string, Way>();
  for (const [code, levels] of Object.entries(keymap.keys)) {
    levels.forEach((c, level) => {
      if (c === '') return;
      const stroke = Object.freeze({ code, modifiers: modifiersFor(levels.length, level) });
      const way = { strokes: [stroke], cost: 1000 + cost(stroke) };
      const into = c.startsWith('dead_') ? dead : direct;
      if ((into.get(c)?.cost ?? Infinity) > way.cost) into.set(c, way);
    });
  }
  const composed = new Map<string, Way>();
  for (const [name, deadWay] of dead) {
    const pairs = [...(DEAD_KEYS[name] ?? '')];
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const base = direct.get(pairs[i]!);
      const result = pairs[i + 1]!;
      if (!base || direct.has(result)) continue;
      const way = { strokes: [...deadWay.strokes, ...base.strokes], cost: deadWay.cost + base.cost };
      if ((composed.get(result)?.cost ?? Infinity) > way.cost) composed.set(result, way);
    }
  }
  const plans = new Map<string, CharPlan>();
  for (const [char, way] of [...direct, ...composed]) plans.set(char, Object.freeze({ char, strokes: Object.freeze(way.strokes) as Stroke[] }));
  plans.set('\n', Object.freeze({ char: '\n', strokes: Object.freeze([Object.freeze({ code: 'Enter', modifiers: 0 })]) as Stroke[] }));
  plans.set('\t', Object.freeze({ char: '\t', strokes: Object.freeze([Object.freeze({ code: 'Tab', modifiers: 0 })]) as Stroke[] }));
  const substituted = new Set<string>();
  for (const [char, as] of Object.entries(ASCII_FORMS)) {
    if (plans.has(char)) continue;
    const parts = [...as].map((c) => plans.get(c));
    if (!parts.every((p) => p !== undefined)) continue;
    plans.set(char, Object.freeze({ char, strokes: Object.freeze(parts.flatMap((p) => p!.strokes)) as Stroke[] }));
    substituted.add(char);
  }
  return { plans, substituted };
}

const built = new Map<string, Built>();

/** Layout `id` turned around (built on first use), or undefined for an unknown layout. */
function layoutOf(id: string): Built | undefined {
  let b = built.get(id);
  if (!b) {
    if (!Object.hasOwn(KEYMAPS, id)) return undefined;
    b = build(KEYMAPS[id]!);
    built.set(id, b);
  }
  return b;
}

function describe(char: string): string {
  const cp = char.codePointAt(0)!;
  return `${JSON.stringify(char)} (U+${cp.toString(16).toUpperCase().padStart(4, '0')})`;
}

/**
 * The strokes for every character of `text` on `layout` ("\r\n" and "\r" are typed as "\n"), or
 * the reason it cannot be typed. `index` counts code points of `text` as given, from 0.
 */
export function planText(text: string, layout: string): TextPlan {
  const b = layoutOf(layout);
  if (!b) return { ok: false, code: 'UNKNOWN_LAYOUT', message: `no keyboard layout ${layout}; the layouts are ${LAYOUTS.map((l) => l.id).join(', ')}` };
  const name = KEYMAPS[layout]!.name;
  const chars: CharPlan[] = [];
  const substituted = new Map<string, number>();
  let index = 0;
  for (let i = 0; i < text.length; index++) {
    const unit = text.charCodeAt(i);
    let char = unit >= 0xd800 && unit <= 0xdbff ? String.fromCodePoint(text.codePointAt(i)!) : text[i]!;
    i += char.length;
    if (char === '\r') {
      char = '\n';
      if (text[i] === '\n') {
        i++;
        index++;
      }
    }
    const plan = b.plans.get(char);
    if (!plan) {
      return { ok: false, code: 'UNTYPEABLE_CHARACTER', message: `the ${name} (${layout}) layout cannot type ${describe(char)}, character ${index + 1} of the text`, index, char };
    }
    if (b.substituted.has(char)) substituted.set(char, (substituted.get(char) ?? 0) + 1);
    chars.push(plan);
  }
  const substitutions = [...substituted].map(([char, count]) => ({ char, as: ASCII_FORMS[char]!, count }));
  return { ok: true, layout, chars, substitutions };
}
