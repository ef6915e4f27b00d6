// The two facts about X11 keysyms that the layout generator needs and xkb-data does not ship: the
// keysym names and the Unicode character of each (X11's keysymdef.h and XF86keysym.h, Debian
// package x11proto-dev; xkb reads a name it does not know as NoSymbol, so we must know them) and what a
// dead key followed by a second key composes to (X11's en_US.UTF-8 Compose file, libx11-data). We
// extract both once into small committed text files next to this module, so generating the layouts
// (and checking that in CI) needs only xkb-data. Re-extract, on a machine with both packages, with
//   npx tsx scripts/xkb/x11-tables.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));
export const KEYSYMS_FILE = `${HERE}keysyms.txt`;
export const DEAD_KEYS_FILE = `${HERE}dead-keys.txt`;
const KEYSYMDEF = '/usr/include/X11/keysymdef.h';
const XF86KEYSYM = '/usr/include/X11/XF86keysym.h';
const COMPOSE = '/usr/share/X11/locale/en_US.UTF-8/Compose';

/** Keysym name → its Unicode code point, or undefined for a keysym that types no character. */
export function readKeysyms(file = KEYSYMS_FILE): Map<string, number | undefined> {
  const map = new Map<string, number | undefined>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\S+)(?: ([0-9a-f]+))?$/.exec(line);
    if (m) map.set(m[1]!, m[2] !== undefined ? parseInt(m[2], 16) : undefined);
  }
  return map;
}

/** Dead keysym name → (base character → composed character), as X11's Compose file says. */
export function readDeadKeys(file = DEAD_KEYS_FILE): Map<string, Map<string, string>> {
  const map = new Map<string, Map<string, string>>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(dead_\w+) ([0-9a-f]+) ([0-9a-f]+)$/.exec(line);
    if (!m) continue;
    let bases = map.get(m[1]!);
    if (!bases) map.set(m[1]!, (bases = new Map()));
    bases.set(String.fromCodePoint(parseInt(m[2]!, 16)), String.fromCodePoint(parseInt(m[3]!, 16)));
  }
  return map;
}

/** The keysym naming rules that need no table: Uxxxx and 0x01xxxxxx name a code point directly. */
export function ruleCodePoint(name: string): number | undefined {
  let m = /^U([0-9A-Fa-f]{4,6})$/.exec(name);
  if (m) return parseInt(m[1]!, 16);
  m = /^0x0*1([0-9A-Fa-f]{6})$/.exec(name);
  if (m) return parseInt(m[1]!, 16);
  return undefined;
}

function extract(): void {
  // keysymdef.h writes "U+00E9" for an exact character and "(U+2329 …)" for a close one, where
  // libX11 and libxkbcommon do not always agree (leftanglebracket is U+27E8 to the latter): we take
  // only the exact ones, and a key with a close one types nothing for us.
  const byName = new Map<string, number | undefined>();
  for (const line of readFileSync(KEYSYMDEF, 'utf8').split('\n')) {
    const m = /^#define XK_(\w+)\s+0x[0-9a-fA-F]+\s*(?:\/\*\s*U\+([0-9A-Fa-f]{4,6})\b)?/.exec(line);
    if (m) byName.set(m[1]!, m[2] !== undefined ? parseInt(m[2], 16) : undefined);
  }
  for (const line of readFileSync(XF86KEYSYM, 'utf8').split('\n')) {
    // libX11 names the server keysyms 0x1008FExx "XF86_…" (XF86_Switch_VT_1), the others "XF86…".
    const m = /^#define XF86XK_(\w+)\s+0x([0-9a-fA-F]+)/.exec(line);
    if (m) byName.set(/^1008fe/i.test(m[2]!) ? `XF86_${m[1]}` : `XF86${m[1]}`, undefined);
  }
  const keysyms = [...byName].map(([name, cp]) => (cp === undefined ? name : `${name} ${cp.toString(16)}`));
  const codePoint = (name: string): number | undefined => byName.get(name) ?? ruleCodePoint(name);
  // Two-key sequences only: <dead_x> <key> : "c" — one dead key then one character.
  const dead = new Set<string>();
  for (const line of readFileSync(COMPOSE, 'utf8').split('\n')) {
    const m = /^<(dead_\w+)>\s+<(\w+)>\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(line);
    if (!m) continue;
    const base = codePoint(m[2]!);
    const result = [...m[3]!.replace(/\\(.)/g, '$1')];
    if (base === undefined || result.length !== 1) continue;
    dead.add(`${m[1]} ${base.toString(16)} ${result[0]!.codePointAt(0)!.toString(16)}`);
  }
  writeFileSync(KEYSYMS_FILE, `${keysyms.sort().join('\n')}\n`);
  writeFileSync(DEAD_KEYS_FILE, `${[...dead].sort().join('\n')}\n`);
  console.log(`${KEYSYMS_FILE}: ${keysyms.length} keysyms; ${DEAD_KEYS_FILE}: ${dead.size} dead-key sequences`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) extract();
