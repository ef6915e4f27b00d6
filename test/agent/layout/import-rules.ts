// The import rules of docs/architecture.md ("Import rules"), as a checker over a set of files, so a
// test can run it on the real tree and, separately, on made-up files that must be flagged (a
// checker that silently finds nothing would pass forever). Pure: the caller reads the files.
//
// Imports are found by regular expressions, not a TypeScript parser: static `import … from`,
// side-effect `import '…'`, `export … from`, `import type`, multi-line import lists, dynamic
// `import('…')` (also `typeof import('…')` in types) and `/// <reference types|path>`. Lines that
// are comments (starting with //, /* or *) are skipped, so prose about an import is not one.

/** The folders the rules speak about; every other top-level folder (scripts/, bench/, test/) is free. */
export type Folder = 'shared' | 'agent' | 'client' | 'durable-objects' | 'worker' | 'dashboard';

export interface Rule {
  /** Top-level folders whose files it may import by relative path. */
  folders: readonly string[];
  /** Bare specifiers of the runtime it may use (`node:` and bare Node built-ins count as `node:`). */
  runtime: (specifier: string) => boolean;
  /** Whether it may use npm packages from devDependencies too (tools bundled at build time). */
  devPackages: boolean;
  /** Said in a violation, so the reader knows which line of the docs was broken. */
  says: string;
}

const none = () => false;
const isNode = (s: string) => s.startsWith('node:');
const isBun = (s: string) => s === 'bun' || s.startsWith('bun:');
const isCloudflare = (s: string) => s.startsWith('cloudflare:');

export const RULES: Record<Folder, Rule> = {
  shared: {
    folders: ['shared'],
    runtime: none,
    devPackages: false,
    says: 'shared/: only shared/ and npm dependencies, no runtime API',
  },
  agent: {
    folders: ['agent', 'shared'],
    runtime: (s) => isBun(s) || isNode(s),
    devPackages: false,
    says: 'agent/: only agent/, shared/, Bun and Node APIs, npm dependencies',
  },
  client: {
    folders: ['client', 'shared'],
    runtime: (s) => isBun(s) || isNode(s),
    devPackages: true,
    says: 'client/: only client/, shared/, Node and Bun APIs, npm packages',
  },
  'durable-objects': {
    folders: ['durable-objects', 'shared'],
    runtime: isCloudflare,
    devPackages: false,
    says: 'durable-objects/: only durable-objects/, shared/, cloudflare:*, npm dependencies; never worker/',
  },
  worker: {
    folders: ['worker', 'durable-objects', 'shared'],
    runtime: isCloudflare,
    devPackages: false,
    says: 'worker/: only worker/, durable-objects/, shared/, cloudflare:*, npm dependencies; never agent/ or client/',
  },
  dashboard: {
    folders: ['dashboard', 'shared'],
    runtime: none,
    devPackages: true,
    says: 'dashboard/: only dashboard/, shared/ and npm packages (bundled at build); no runtime API, never worker/, durable-objects/ or agent/',
  },
};

export interface Packages {
  dependencies: readonly string[];
  devDependencies: readonly string[];
  /** Node's built-in module names without the `node:` prefix (`fs`, `path`…). */
  nodeBuiltins: readonly string[];
}

export interface Violation {
  file: string;
  specifier: string;
  rule: string;
}

export const formatViolation = (v: Violation) => `${v.file} → ${v.specifier} (${v.rule})`;

const STATIC = /^[ \t]*(?:import|export)\b(?:[^'"`;]*?\bfrom)?\s*['"]([^'"]+)['"]/gm;
const DYNAMIC = /\bimport\s*\(\s*['"`]([^'"`]+)['"`]\s*\)/g;
const REFERENCE = /^[ \t]*\/\/\/\s*<reference\s+(?:types|path)\s*=\s*['"]([^'"]+)['"]/gm;
const COMMENT_LINE = /^[ \t]*(?:\/\/(?!\/\s*<reference)|\/\*|\*).*$/gm;

/** Every module specifier `source` imports, in order of appearance, duplicates kept. */
export function importsOf(source: string): string[] {
  const code = source.replace(COMMENT_LINE, '');
  const found: { at: number; specifier: string }[] = [];
  for (const re of [STATIC, DYNAMIC]) for (const m of code.matchAll(re)) found.push({ at: m.index, specifier: m[1]! });
  for (const m of source.matchAll(REFERENCE)) found.push({ at: -1, specifier: m[1]! });
  return found.sort((a, b) => a.at - b.at).map((f) => f.specifier);
}

/** `a/b/c.ts` + `../../x/y.ts` → `x/y.ts`; null when the path climbs out of the repo. */
function resolveRelative(file: string, specifier: string): string | null {
  const parts = file.split('/').slice(0, -1);
  for (const piece of specifier.split('/')) {
    if (piece === '.' || piece === '') continue;
    if (piece === '..') {
      if (!parts.length) return null;
      parts.pop();
    } else parts.push(piece);
  }
  return parts.join('/');
}

/** The npm package a bare specifier names (`@scope/name/sub` → `@scope/name`). */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function folderOf(file: string): Folder | null {
  const top = file.split('/')[0]!;
  return top in RULES ? (top as Folder) : null;
}

/** Whether `file` (repo-relative, `/`-separated) may import `specifier`; the broken rule if not. */
function check(file: string, specifier: string, rule: Rule, packages: Packages): boolean {
  if (specifier.startsWith('.') || specifier.startsWith('/')) {
    const target = specifier.startsWith('/') ? null : resolveRelative(file, specifier);
    return target !== null && rule.folders.includes(target.split('/')[0]!);
  }
  if (rule.runtime(specifier)) return true;
  const name = packageOf(specifier);
  if (packages.nodeBuiltins.includes(name)) return rule.runtime(`node:${specifier}`);
  if (specifier.includes(':')) return false;
  return packages.dependencies.includes(name) || (rule.devPackages && packages.devDependencies.includes(name));
}

/** The violations in `files` (repo-relative path → source), in path order. */
export function violations(files: ReadonlyMap<string, string>, packages: Packages): Violation[] {
  const out: Violation[] = [];
  for (const file of [...files.keys()].sort()) {
    const folder = folderOf(file);
    if (!folder) continue;
    const rule = RULES[folder];
    for (const specifier of importsOf(files.get(file)!)) {
      if (!check(file, specifier, rule, packages)) out.push({ file, specifier, rule: rule.says });
    }
  }
  return out;
}
