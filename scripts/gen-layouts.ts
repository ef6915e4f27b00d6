// Generates the keyboard layouts the agent types texts with (shared/hid/layouts/) from
// xkeyboard-config's symbols, the database every Linux desktop uses, rather than tables typed by
// hand. Debian ships it as xkb-data; that is the only package this needs (keysym characters and the
// dead-key compositions come from the small tables in scripts/xkb/, extracted from X11 once).
//   npx tsx scripts/gen-layouts.ts [--xkb /usr/share/X11/xkb]
// A layout is what the X server builds for "pc+<symbols>" (the rules' pc105 model): group 1, with
// Shift as level 2 and, when the layout puts ISO_Level3_Shift on the right Alt, AltGr as level 3 and
// AltGr+Shift as level 4. Caps Lock is assumed off. The numeric keypad is left out: what it types
// depends on the target's Num Lock, and the main keys type the same characters.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SymbolsDir, type KeyDef } from './xkb/symbols.ts';
import { readDeadKeys, readKeysyms, ruleCodePoint } from './xkb/x11-tables.ts';

/** The layouts we ship: our id (a BCP 47 tag, as TinyPilot names them) and the xkb symbols. */
export const LAYOUT_SOURCES: readonly { id: string; xkb: string }[] = [
  { id: 'en-US', xkb: 'us' },
  { id: 'en-US-intl', xkb: 'us(intl)' },
  { id: 'en-GB', xkb: 'gb' },
  { id: 'de-DE', xkb: 'de' },
  { id: 'de-CH', xkb: 'ch' },
  { id: 'fr-FR', xkb: 'fr' },
  { id: 'fr-BE', xkb: 'be' },
  { id: 'fr-CH', xkb: 'ch(fr)' },
  { id: 'es-ES', xkb: 'es' },
  { id: 'it-IT', xkb: 'it' },
  { id: 'pt-BR', xkb: 'br' },
  { id: 'pt-PT', xkb: 'pt' },
  { id: 'sv-SE', xkb: 'se' },
  { id: 'nb-NO', xkb: 'no' },
  { id: 'da-DK', xkb: 'dk' },
  { id: 'fi-FI', xkb: 'fi' },
  { id: 'nl-NL', xkb: 'nl' },
  { id: 'pl-PL', xkb: 'pl' },
  { id: 'cs-CZ', xkb: 'cz' },
  { id: 'hu-HU', xkb: 'hu' },
  { id: 'tr-TR', xkb: 'tr' },
  { id: 'de-AT', xkb: 'at' },
  { id: 'es-419', xkb: 'latam' },
  { id: 'fr-CA', xkb: 'ca' },
  { id: 'is-IS', xkb: 'is' },
  { id: 'et-EE', xkb: 'ee' },
  { id: 'lv-LV', xkb: 'lv' },
  { id: 'lt-LT', xkb: 'lt' },
  { id: 'sk-SK', xkb: 'sk' },
  { id: 'sl-SI', xkb: 'si' },
  { id: 'hr-HR', xkb: 'hr' },
  { id: 'ro-RO', xkb: 'ro' },
  { id: 'ja-JP', xkb: 'jp' },
];

/**
 * xkb key names of the main block → KeyboardEvent.code (shared/hid/keycodes.ts), in the order the
 * generated tables list them. <BKSL> is both the ANSI key above Enter and the ISO key left of Enter
 * (one evdev keycode; HID 0x31 and 0x32 reach the host as the same key), so Backslash.
 */
const KEY_CODES: readonly [string, string][] = [
  ['TLDE', 'Backquote'],
  ...Array.from({ length: 10 }, (_, i) => [`AE${String(i + 1).padStart(2, '0')}`, `Digit${(i + 1) % 10}`] as [string, string]),
  ['AE11', 'Minus'],
  ['AE12', 'Equal'],
  ['AE13', 'IntlYen'],
  ...[...'QWERTYUIOP'].map((k, i) => [`AD${String(i + 1).padStart(2, '0')}`, `Key${k}`] as [string, string]),
  ['AD11', 'BracketLeft'],
  ['AD12', 'BracketRight'],
  ...[...'ASDFGHJKL'].map((k, i) => [`AC${String(i + 1).padStart(2, '0')}`, `Key${k}`] as [string, string]),
  ['AC10', 'Semicolon'],
  ['AC11', 'Quote'],
  ['BKSL', 'Backslash'],
  ['LSGT', 'IntlBackslash'],
  ...[...'ZXCVBNM'].map((k, i) => [`AB${String(i + 1).padStart(2, '0')}`, `Key${k}`] as [string, string]),
  ['AB08', 'Comma'],
  ['AB09', 'Period'],
  ['AB10', 'Slash'],
  ['AB11', 'IntlRo'],
  ['SPCE', 'Space'],
];

/** Levels Shift and AltGr reach on a key of each xkb type, with Caps Lock off (types/ in xkb-data). */
const TYPE_LEVELS: Readonly<Record<string, 1 | 2 | 4>> = {
  ONE_LEVEL: 1,
  // Level 2 is Alt or Control there (Print/Sys_Req, Japanese Zenkaku/Kanji), never Shift or AltGr.
  PC_ALT_LEVEL2: 1,
  PC_CONTROL_LEVEL2: 1,
  TWO_LEVEL: 2,
  ALPHABETIC: 2,
  FOUR_LEVEL: 4,
  FOUR_LEVEL_ALPHABETIC: 4,
  FOUR_LEVEL_SEMIALPHABETIC: 4,
  FOUR_LEVEL_PLUS_LOCK: 4,
  EIGHT_LEVEL: 4,
  EIGHT_LEVEL_ALPHABETIC: 4,
  EIGHT_LEVEL_SEMIALPHABETIC: 4,
  EIGHT_LEVEL_LEVEL_FIVE_LOCK: 4,
  EIGHT_LEVEL_ALPHABETIC_LEVEL_FIVE_LOCK: 4,
};

/** A key with no explicit type gets one from its number of levels, as xkbcomp does. */
function levelsOf(def: KeyDef, where: string): 1 | 2 | 4 {
  if (def.type !== undefined) {
    const n = TYPE_LEVELS[def.type];
    if (n === undefined) throw new Error(`${where}: key type ${def.type} is not supported`);
    return n;
  }
  let last = def.syms.length;
  while (last > 0 && def.syms[last - 1] === undefined) last--;
  return last <= 1 ? 1 : last === 2 ? 2 : 4;
}

/**
 * The dead keys whose "dead key, space" we use to type the accent itself: the ones where X11,
 * Windows and macOS agree (^ ` ~). X11 makes dead_acute+space an apostrophe and dead_diaeresis+space
 * a quotation mark where Windows gives ´ and ¨, so those we never type that way.
 */
const SPACE_DEAD_KEYS = new Set(['dead_circumflex', 'dead_grave', 'dead_tilde']);

/**
 * The compositions we type with: a dead key then a Latin letter, giving a letter of Latin-1 or
 * Latin Extended-A (é, ñ, ç, ő, ę…). X11's Compose table has many more (superscripts after ^,
 * combining marks after a no-break space, ≠ after a stroke), which Windows' dead keys do not
 * compose; typing those would garble the text on such a target, so they are refused instead.
 */
function composable(dead: string, base: string, result: string): boolean {
  if (base === ' ') return SPACE_DEAD_KEYS.has(dead);
  const cp = result.codePointAt(0)!;
  return /^[A-Za-z]$/.test(base) && cp >= 0xc0 && cp <= 0x17f;
}

export interface Generated {
  version: string;
  /** Repository-relative path → contents. */
  files: Map<string, string>;
  warnings: string[];
}

function literal(s: string): string {
  // Invisible and combining characters as escapes, so the tables can be read and reviewed.
  let out = "'";
  for (const ch of s) {
    if (ch === "'" || ch === '\\') out += `\\${ch}`;
    else if (/[\p{Z}\p{M}\p{C}]/u.test(ch) && ch !== ' ') out += `\\u{${ch.codePointAt(0)!.toString(16)}}`;
    else out += ch;
  }
  return `${out}'`;
}

function ident(id: string): string {
  return id.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()).replace(/^\w/, (c) => c.toLowerCase());
}

export function xkbVersion(xkbDir: string): string {
  const pc = `${xkbDir}/../../pkgconfig/xkeyboard-config.pc`;
  let text: string;
  try {
    text = readFileSync(pc, 'utf8');
  } catch {
    throw new Error(`cannot tell the xkeyboard-config version: ${pc} is missing (install xkb-data)`);
  }
  const m = /^Version:\s*(\S+)/m.exec(text);
  if (!m) throw new Error(`no Version in ${pc}`);
  return m[1]!;
}

/**
 * The key name aliases of the keycodes the evdev rules use ("evdev+aliases(qwerty)"): symbols may
 * name a key <AC12> or <HZTG>, which are <BKSL> and <TLDE>.
 */
function readAliases(xkbDir: string): Map<string, string> {
  const qwerty = /xkb_keycodes "qwerty" \{([^}]*)\}/.exec(readFileSync(`${xkbDir}/keycodes/aliases`, 'utf8'))?.[1] ?? '';
  const aliases = new Map<string, string>();
  for (const text of [readFileSync(`${xkbDir}/keycodes/evdev`, 'utf8'), qwerty]) {
    for (const m of text.replace(/\/\/.*$/gm, '').matchAll(/alias\s*<(\w+)>\s*=\s*<(\w+)>\s*;/g)) aliases.set(m[1]!, m[2]!);
  }
  return aliases;
}

export function generateLayouts(xkbDir = '/usr/share/X11/xkb'): Generated {
  const version = xkbVersion(xkbDir);
  const keysyms = readKeysyms();
  const isKeysym = (name: string): boolean => keysyms.has(name) || ruleCodePoint(name) !== undefined || /^0x[0-9a-fA-F]+$/.test(name);
  const symbols = new SymbolsDir(`${xkbDir}/symbols`, isKeysym, readAliases(xkbDir));
  const compose = readDeadKeys();
  const warnings: string[] = [];
  const files = new Map<string, string>();
  const header = (what: string): string =>
    `// GENERATED by scripts/gen-layouts.ts from xkeyboard-config ${version} (Debian package xkb-data)${what}.\n` +
    '// Do not edit by hand: change the generator and run `npx tsx scripts/gen-layouts.ts`.\n';

  const charOf = (sym: string | undefined): string => {
    if (sym === undefined || sym === 'VoidSymbol') return '';
    if (sym.startsWith('dead_')) return sym;
    const cp = keysyms.get(sym) ?? ruleCodePoint(sym);
    if (cp === undefined || cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return '';
    return String.fromCodePoint(cp);
  };

  const layouts: { id: string; xkb: string; name: string; levels: 2 | 4; keys: [string, string[]][] }[] = [];
  for (const { id, xkb } of LAYOUT_SOURCES) {
    const compiled = symbols.include(`pc+${xkb}`);
    if (!compiled.name) throw new Error(`${xkb} has no name[Group1]`);
    const altGr = compiled.keys.get('RALT')?.syms[0] === 'ISO_Level3_Shift';
    const keys: [string, string[]][] = [];
    for (const [xkbKey, code] of KEY_CODES) {
      const def = compiled.keys.get(xkbKey);
      if (!def) continue;
      const n = Math.min(levelsOf(def, `${xkb} <${xkbKey}>`), altGr ? 4 : 2);
      const levels = Array.from({ length: n }, (_, l) => charOf(def.syms[l]));
      for (let l = 0; l < n; l++) {
        const sym = def.syms[l];
        if (levels[l] === '' && sym !== undefined && sym !== 'VoidSymbol' && !/^(ISO_|Mode_switch|Multi_key)/.test(sym)) warnings.push(`${id}: <${xkbKey}> level ${l + 1} ${sym} types no character`);
      }
      if (levels.some((c) => c !== '')) keys.push([code, levels]);
    }
    layouts.push({ id, xkb, name: compiled.name, levels: altGr ? 4 : 2, keys });
  }

  for (const u of symbols.unknown) warnings.push(`${u} is no keysym; read as NoSymbol, as xkb does`);

  // The dead-key compositions the layouts can use: dead keys some layout has, bases some layout
  // types with one key.
  const deadKeys = new Set<string>();
  const direct = new Set<string>();
  for (const l of layouts) for (const [, levels] of l.keys) for (const c of levels) (c.startsWith('dead_') ? deadKeys : direct).add(c);
  const deadLines: string[] = [];
  for (const dead of [...deadKeys].sort()) {
    const bases = compose.get(dead);
    if (!bases) {
      warnings.push(`${dead} composes nothing in the Compose table; it is left unused`);
      continue;
    }
    let pairs = '';
    for (const [base, result] of [...bases].sort(([a], [b]) => a.codePointAt(0)! - b.codePointAt(0)!)) {
      if (!direct.has(base) || !composable(dead, base, result)) continue;
      pairs += base + result;
    }
    if (pairs !== '') deadLines.push(`  ${dead}: ${literal(pairs)},`);
  }
  files.set(
    'shared/hid/layouts/dead-keys.ts',
    header(' and X11\'s en_US.UTF-8 Compose (scripts/xkb/dead-keys.txt)') +
      '// What each dead key composes with the next character typed: a string of pairs, base then result.\n' +
      '// Only a Latin letter after a dead key (giving a letter of Latin-1 or Latin Extended-A), and a\n' +
      '// space after ^ ` ~ for the accent itself: what X11, Windows and macOS compose alike.\n' +
      `export const DEAD_KEYS: Readonly<Record<string, string>> = {\n${deadLines.join('\n')}\n};\n`,
  );

  for (const l of layouts) {
    const body = l.keys.map(([code, levels]) => `    ${code}: [${levels.map(literal).join(', ')}],`).join('\n');
    files.set(
      `shared/hid/layouts/${l.id}.ts`,
      header(`,\n// symbols "pc+${l.xkb}", group 1`) +
        "import type { Keymap } from './types.ts';\n\n" +
        `export const ${ident(l.id)}: Keymap = {\n  id: ${literal(l.id)},\n  name: ${literal(l.name)},\n  xkb: ${literal(l.xkb)},\n  levels: ${l.levels},\n  keys: {\n${body}\n  },\n};\n`,
    );
  }
  files.set(
    'shared/hid/layouts/index.ts',
    header('') +
      '// Every layout by id; the Worker and the agent bundle these, the dashboard needs only ../layout-list.ts.\n' +
      "import type { Keymap } from './types.ts';\n" +
      layouts.map((l) => `import { ${ident(l.id)} } from './${l.id}.ts';\n`).join('') +
      `\nexport const KEYMAPS: Readonly<Record<string, Keymap>> = {\n${layouts.map((l) => `  ${literal(l.id)}: ${ident(l.id)},`).join('\n')}\n};\n`,
  );
  files.set(
    'shared/hid/layout-list.ts',
    header('') +
      '// The layouts a text can be typed in, by id and name: tiny, so a page can offer the choice\n' +
      '// without loading the tables (shared/hid/layouts/).\n' +
      `export const LAYOUT_LIST: readonly { id: string; name: string }[] = [\n${layouts.map((l) => `  { id: ${literal(l.id)}, name: ${literal(l.name)} },`).join('\n')}\n];\n`,
  );
  return { version, files, warnings };
}

function main(): void {
  const i = process.argv.indexOf('--xkb');
  const xkbDir = i > 0 ? process.argv[i + 1]! : '/usr/share/X11/xkb';
  const root = fileURLToPath(new URL('..', import.meta.url));
  const { version, files, warnings } = generateLayouts(xkbDir);
  mkdirSync(`${root}shared/hid/layouts`, { recursive: true });
  for (const [path, text] of files) writeFileSync(`${root}${path}`, text);
  for (const w of warnings) console.warn(`warning: ${w}`);
  console.log(`${files.size} files from xkeyboard-config ${version} (${[...files.values()].reduce((n, t) => n + Buffer.byteLength(t), 0)} bytes)`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
