// The shape of a generated keyboard layout (the other modules here are written by
// scripts/gen-layouts.ts from xkeyboard-config). Plain data: the Worker, the agent and the tests
// read it; only typing.ts turns it around into "character → keystrokes".

export interface Keymap {
  /** Our id, a BCP 47 tag such as de-DE. */
  id: string;
  /** xkeyboard-config's name for it, e.g. "German". */
  name: string;
  /** The xkb symbols it was generated from, e.g. "de" or "ch(fr)". */
  xkb: string;
  /** 4 when the right Alt is AltGr (levels 3 and 4), 2 when it is a plain Alt. */
  levels: 2 | 4;
  /**
   * KeyboardEvent.code → what each level types: one character, a dead key's keysym name
   * ("dead_acute"), or '' for nothing. A key lists 1 level (Shift changes nothing), 2 (Shift is
   * level 2, AltGr changes nothing) or 4 (level 1 + Shift + 2 × AltGr).
   */
  keys: Readonly<Record<string, readonly string[]>>;
}
