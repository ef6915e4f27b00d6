// Reads xkeyboard-config's symbols files the way libxkbcommon compiles them, as far as the characters
// of a layout's group 1 go: sections (the `default` one, or the first), include/augment/override/
// replace statements with "file(section)+file|file" strings, key definitions (`[ a, A, ae, AE ]` or
// `symbols[Group1]= […]`), `type[Group1]=…` and the `key.type` default, `name[Group1]`, and the
// merge rules (a later definition overrides level by level, NoSymbol never overrides, `augment`
// only fills gaps, `replace` replaces the key). Actions, modifier maps and virtual modifiers are
// read past: they decide no characters. Anything else it does not understand is an error, so a new
// xkb-data that changes the syntax fails the generator instead of producing a wrong layout.
import { readFileSync } from 'node:fs';

export type MergeMode = 'default' | 'augment' | 'override' | 'replace';

/** One key's group 1: its keysym names by level (undefined = NoSymbol) and its explicit type. */
export interface KeyDef {
  type?: string;
  syms: (string | undefined)[];
}

export interface Compiled {
  name?: string;
  keys: Map<string, KeyDef>;
}

type Token = { kind: 'ident' | 'string' | 'keyname' | 'punct'; text: string; line: number };

function tokenize(src: string, file: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) i++;
    else if (src.startsWith('//', i) || c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new Error(`${file}:${line}: unterminated comment`);
      line += src.slice(i, end).split('\n').length - 1;
      i = end + 2;
    } else if (c === '"') {
      const end = src.indexOf('"', i + 1);
      if (end < 0) throw new Error(`${file}:${line}: unterminated string`);
      tokens.push({ kind: 'string', text: src.slice(i + 1, end), line });
      i = end + 1;
    } else if (c === '<') {
      const end = src.indexOf('>', i + 1);
      tokens.push({ kind: 'keyname', text: src.slice(i + 1, end), line });
      i = end + 1;
    } else if (/[A-Za-z0-9_]/.test(c)) {
      const m = /^[A-Za-z0-9_]+/.exec(src.slice(i, i + 200))!;
      tokens.push({ kind: 'ident', text: m[0], line });
      i += m[0].length;
    } else {
      tokens.push({ kind: 'punct', text: c, line });
      i++;
    }
  }
  return tokens;
}

interface Section {
  name: string;
  isDefault: boolean;
  body: Token[];
}

/** The sections of one symbols file, their bodies kept as tokens until a layout needs them. */
function parseFile(tokens: Token[], file: string): Section[] {
  const sections: Section[] = [];
  let i = 0;
  while (i < tokens.length) {
    const flags: string[] = [];
    while (tokens[i]?.kind === 'ident' && tokens[i]!.text !== 'xkb_symbols') flags.push(tokens[i++]!.text);
    if (tokens[i]?.text !== 'xkb_symbols') throw new Error(`${file}:${tokens[i]?.line}: expected xkb_symbols`);
    const name = tokens[i + 1];
    if (name?.kind !== 'string' || tokens[i + 2]?.text !== '{') throw new Error(`${file}:${tokens[i]!.line}: expected xkb_symbols "name" {`);
    i += 3;
    const start = i;
    let depth = 1;
    while (i < tokens.length && depth > 0) {
      if (tokens[i]!.text === '{' && tokens[i]!.kind === 'punct') depth++;
      if (tokens[i]!.text === '}' && tokens[i]!.kind === 'punct') depth--;
      i++;
    }
    sections.push({ name: name.text, isDefault: flags.includes('default'), body: tokens.slice(start, i - 1) });
    if (tokens[i]?.text === ';') i++;
  }
  return sections;
}

const GROUP1 = new Set(['Group1', '1']);

export class SymbolsDir {
  private readonly files = new Map<string, Section[]>();
  private readonly compiled = new Map<string, Compiled>();

  /** Names xkb would not know as keysyms; like xkbcommon, they are read as NoSymbol. */
  readonly unknown = new Set<string>();

  /** `isKeysym` tells a keysym name from a typo (xkbcommon reads an unknown name as NoSymbol). */
  constructor(
    readonly dir: string,
    private readonly isKeysym: (name: string) => boolean,
    /** Key name aliases (<AC12> is <BKSL>), from the keycodes the rules pick. */
    private readonly aliases: ReadonlyMap<string, string> = new Map(),
  ) {}

  private sections(file: string): Section[] {
    let s = this.files.get(file);
    if (!s) {
      const path = `${this.dir}/${file}`;
      s = parseFile(tokenize(readFileSync(path, 'utf8'), path), path);
      this.files.set(file, s);
    }
    return s;
  }

  /** Compiles "file" or "file(section)" to its group 1 keys. */
  section(ref: string): Compiled {
    const m = /^([\w/.-]+)(?:\(([\w-]+)\))?$/.exec(ref);
    if (!m) throw new Error(`cannot read the symbols reference ${JSON.stringify(ref)}`);
    const sections = this.sections(m[1]!);
    const section = m[2] ? sections.find((s) => s.name === m[2]) : (sections.find((s) => s.isDefault) ?? sections[0]);
    if (!section) throw new Error(`no section ${ref} in ${this.dir}`);
    const key = `${m[1]}(${section.name})`;
    let c = this.compiled.get(key);
    if (!c) {
      c = this.compile(section, `${this.dir}/${m[1]}`);
      this.compiled.set(key, c);
    }
    return c;
  }

  /** Compiles an include string: "pc+de(basic)|extra"; the first part merges with `mode`. */
  include(spec: string, mode: MergeMode = 'default'): Compiled {
    const out: Compiled = { keys: new Map() };
    this.mergeInclude(out, spec, mode);
    return out;
  }

  private mergeInclude(into: Compiled, spec: string, mode: MergeMode): void {
    const parts = spec.split(/([+|])/);
    for (let p = 0; p < parts.length; p += 2) {
      const ref = parts[p]!;
      const partMode: MergeMode = p === 0 ? mode : parts[p - 1] === '|' ? 'augment' : 'override';
      // "file(section):2" puts a layout into another group; only group 1 matters here.
      const [target, group] = ref.split(':');
      if (group !== undefined && group !== '1') continue;
      merge(into, this.section(target!), partMode);
    }
  }

  private compile(section: Section, file: string): Compiled {
    const out: Compiled = { keys: new Map() };
    const t = section.body;
    let defaultType: string | undefined;
    let i = 0;
    const fail = (what: string): never => {
      throw new Error(`${file}:${t[i]?.line ?? '?'}: ${what} in section "${section.name}"`);
    };
    /** Skips to just past the `;` that ends the statement, over nested brackets. */
    const skipStatement = (): void => {
      let depth = 0;
      while (i < t.length) {
        const x = t[i++]!;
        if (x.kind !== 'punct') continue;
        if ('{[('.includes(x.text)) depth++;
        else if ('}])'.includes(x.text)) depth--;
        else if (x.text === ';' && depth === 0) return;
      }
    };
    /** Reads `[Group1]` if present: true when it names group 1 (or is absent). */
    const groupIndex = (): boolean => {
      if (t[i]?.text !== '[') return true;
      const g = t[i + 1]!.text;
      if (t[i + 2]?.text !== ']') fail('expected ]');
      i += 3;
      return GROUP1.has(g);
    };
    const symList = (): (string | undefined)[] => {
      if (t[i]?.text !== '[') fail('expected [');
      i++;
      const syms: (string | undefined)[] = [];
      while (t[i]?.text !== ']') {
        const x = t[i]!;
        if (x.kind === 'ident') {
          const known = x.text !== 'NoSymbol' && this.isKeysym(x.text);
          if (!known && x.text !== 'NoSymbol') this.unknown.add(`${x.text} (${file}:${x.line})`);
          syms.push(known ? x.text : undefined);
          i++;
        } else if (x.text === '{') fail('several keysyms on one level are not supported');
        else fail(`unexpected ${x.text} in a keysym list`);
        if (t[i]?.text === ',') i++;
      }
      i++;
      return syms;
    };
    while (i < t.length) {
      const x = t[i]!;
      let mode: MergeMode = 'default';
      if (x.kind === 'ident' && ['include', 'augment', 'override', 'replace'].includes(x.text) && t[i + 1]?.kind === 'string') {
        this.mergeInclude(out, t[i + 1]!.text, x.text === 'include' ? 'default' : (x.text as MergeMode));
        i += 2;
        if (t[i]?.text === ';') i++;
        continue;
      }
      if (x.kind === 'ident' && ['augment', 'override', 'replace'].includes(x.text)) {
        mode = x.text as MergeMode;
        i++;
      }
      const head = t[i]!;
      if (head.text === 'key' && t[i + 1]?.kind === 'keyname') {
        const keyName = this.aliases.get(t[i + 1]!.text) ?? t[i + 1]!.text;
        i += 2;
        if (t[i]?.text !== '{') fail('expected { after the key name');
        i++;
        const def: KeyDef = { syms: [] };
        let type: string | undefined;
        let group = 0;
        while (t[i]?.text !== '}') {
          const y = t[i]!;
          if (y.text === '[') {
            group++;
            const syms = symList();
            if (group === 1) def.syms = syms;
          } else if (y.kind === 'ident') {
            i++;
            const g1 = groupIndex();
            if (t[i]?.text !== '=') fail(`expected = after ${y.text}`);
            i++;
            if (y.text === 'type') {
              if (t[i]?.kind !== 'string') fail('expected a type name');
              if (g1) type = t[i]!.text;
              i++;
            } else if (y.text === 'symbols') {
              const syms = symList();
              if (g1) def.syms = syms;
            } else {
              // actions, virtualMods, repeat, locks…: values that decide no characters.
              let depth = 0;
              while (i < t.length && !(depth === 0 && (t[i]!.text === ',' || t[i]!.text === '}'))) {
                if ('[('.includes(t[i]!.text)) depth++;
                if ('])'.includes(t[i]!.text)) depth--;
                i++;
              }
            }
          } else fail(`unexpected ${y.text} in a key`);
          if (t[i]?.text === ',') i++;
        }
        i++;
        if (t[i]?.text === ';') i++;
        const explicit = type ?? defaultType;
        if (explicit !== undefined) def.type = explicit;
        mergeKey(out, keyName, def, mode);
        continue;
      }
      if (head.text === 'key' && t[i + 1]?.text === '.') {
        const field = t[i + 2]!.text;
        i += 3;
        const g1 = groupIndex();
        if (field === 'type' && t[i]?.text === '=' && t[i + 1]?.kind === 'string') {
          if (g1) defaultType = t[i + 1]!.text;
          i += 2;
          if (t[i]?.text === ';') i++;
        } else skipStatement();
        continue;
      }
      if (head.text === 'name') {
        i++;
        const g1 = groupIndex();
        if (t[i]?.text !== '=' || t[i + 1]?.kind !== 'string') fail('expected name[Group1] = "…"');
        if (g1) out.name = t[i + 1]!.text;
        i += 2;
        if (t[i]?.text === ';') i++;
        continue;
      }
      if (['modifier_map', 'modmap', 'mod_map', 'virtual_modifiers'].includes(head.text)) {
        skipStatement();
        continue;
      }
      fail(`unexpected ${head.text}`);
    }
    return out;
  }
}

function mergeKey(into: Compiled, name: string, from: KeyDef, mode: MergeMode): void {
  const old = into.keys.get(name);
  if (!old || mode === 'replace') {
    into.keys.set(name, { ...from, syms: [...from.syms] });
    return;
  }
  const clobber = mode !== 'augment';
  const syms: (string | undefined)[] = [];
  for (let l = 0; l < Math.max(old.syms.length, from.syms.length); l++) {
    const a = old.syms[l];
    const b = from.syms[l];
    syms.push(b !== undefined && (clobber || a === undefined) ? b : a);
  }
  const type = from.type !== undefined && (clobber || old.type === undefined) ? from.type : old.type;
  into.keys.set(name, type !== undefined ? { type, syms } : { syms });
}

function merge(into: Compiled, from: Compiled, mode: MergeMode): void {
  for (const [name, def] of from.keys) mergeKey(into, name, def, mode);
  if (from.name !== undefined && (into.name === undefined || mode !== 'augment')) into.name = from.name;
}
