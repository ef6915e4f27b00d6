// The import rules of docs/architecture.md hold on the real tree (a violation fails `npm test`,
// and so CI), and the checker flags each form of import it claims to read — run on made-up files,
// so a checker that silently finds nothing cannot pass.
import { describe, expect, it } from 'bun:test';
import { builtinModules } from 'node:module';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { formatViolation, importsOf, violations, type Packages } from './import-rules.ts';

const ROOT = join(import.meta.dir, '../../..');
const FOLDERS = ['shared', 'agent', 'client', 'durable-objects', 'worker', 'dashboard'];

async function tsFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && /\.tsx?$/.test(e.name)).map((e) => join(e.parentPath, e.name));
}

async function realPackages(): Promise<Packages> {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
  return {
    dependencies: Object.keys(pkg.dependencies ?? {}),
    devDependencies: [...Object.keys(pkg.devDependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})],
    nodeBuiltins: builtinModules.filter((m) => !m.startsWith('node:')).map((m) => m.split('/')[0]!),
  };
}

const fake: Packages = { dependencies: ['zod', '@hono/zod-openapi'], devDependencies: ['undici'], nodeBuiltins: ['fs', 'net', 'path'] };

describe('import rules', () => {
  it('hold on the tree', async () => {
    const files = new Map<string, string>();
    for (const folder of FOLDERS) {
      for (const path of await tsFiles(join(ROOT, folder))) files.set(relative(ROOT, path).split(sep).join('/'), await readFile(path, 'utf8'));
    }
    expect(files.size).toBeGreaterThan(50);
    const found = violations(files, await realPackages()).map(formatViolation);
    if (found.length) console.error(`import-rule violations:\n${found.join('\n')}`);
    expect(found).toEqual([]);
  });

  it('reads every form of import, and skips comments', () => {
    const source = [
      `import { a,`,
      `  b } from './one.ts';`,
      `import type { T } from "../two.ts";`,
      `import './side-effect.ts';`,
      `export * from './three.ts';`,
      `export { c } from './four.ts';`,
      `export type { D } from './five.ts';`,
      `const m = await import('./six.ts');`,
      `type M = typeof import('./seven.ts');`,
      `/// <reference types="bun" />`,
      `// import { x } from './commented.ts';`,
      `/* import('./commented-too.ts') */`,
      ` * import y from './doc-comment.ts'`,
      `const s = 'import z from "./in-a-string"';`,
      `export const from = 'not-an-import';`,
    ].join('\n');
    expect(importsOf(source)).toEqual(['bun', './one.ts', '../two.ts', './side-effect.ts', './three.ts', './four.ts', './five.ts', './six.ts', './seven.ts']);
  });

  it('flags each rule, resolving relative paths to folders', () => {
    const files = new Map([
      ['shared/protocol/x.ts', `import { z } from 'zod';\nimport { y } from '../api/y.ts';\nimport { DurableObject } from 'cloudflare:workers';`],
      ['shared/a.ts', `import type { Socket } from 'bun';\nimport { readFile } from 'node:fs/promises';\nimport { join } from 'path';\nimport { e } from '../worker/errors.ts';\nimport { WebSocket } from 'undici';`],
      ['agent/tunnels/t.ts', `import type { Socket } from 'bun';\nimport { join } from 'node:path';\nimport { s } from '../../shared/s.ts';\nimport { h } from '../../durable-objects/hub.ts';`],
      ['agent/b.ts', `export { e } from '../worker/errors.ts';\nconst x = await import('../client/c.ts');\nimport { DurableObject } from 'cloudflare:workers';`],
      ['client/c.ts', `import http from 'node:http';\nimport net from 'net';\nconst u = await import('undici');\nimport { s } from '../shared/s.ts';\nimport { a } from '../agent/a.ts';`],
      ['durable-objects/hub/rpc.ts', `import { DurableObject } from 'cloudflare:workers';\nimport { s } from '../../shared/s.ts';\nimport type { Row } from '../../worker/db/schema.ts';`],
      ['durable-objects/d.ts', `import { n } from '../worker/env-vars.ts';\nimport { readFile } from 'node:fs';`],
      ['worker/routes/r.ts', `import { Hono } from '@hono/zod-openapi';\nimport type { H } from '../../durable-objects/device-hub.ts';\nimport { s } from '../../shared/s.ts';\nimport { a } from '../../agent/connection.ts';\nimport type { C } from '../../client/pirelay.ts';\nimport { x } from 'left-pad';`],
      ['worker/escape.ts', `import { x } from '../../outside.ts';`],
      ['dashboard/src/pages/p.tsx', `import { z } from 'zod';\nimport type { Me } from '../../../shared/api/auth.ts';\nimport { WebSocket } from 'undici';\nimport { e } from '../../../worker/errors.ts';\nimport { readFile } from 'node:fs';\nimport './p.css';`],
      ['scripts/free.ts', `import { a } from '../agent/a.ts';\nimport { w } from '../worker/app.ts';`],
    ]);
    const flagged = violations(files, fake).map((v) => `${v.file} → ${v.specifier}`);
    expect(flagged).toEqual([
      'agent/b.ts → ../worker/errors.ts',
      'agent/b.ts → ../client/c.ts',
      'agent/b.ts → cloudflare:workers',
      'agent/tunnels/t.ts → ../../durable-objects/hub.ts',
      'client/c.ts → ../agent/a.ts',
      'dashboard/src/pages/p.tsx → ../../../worker/errors.ts',
      'dashboard/src/pages/p.tsx → node:fs',
      'durable-objects/d.ts → ../worker/env-vars.ts',
      'durable-objects/d.ts → node:fs',
      'durable-objects/hub/rpc.ts → ../../worker/db/schema.ts',
      'shared/a.ts → bun',
      'shared/a.ts → node:fs/promises',
      'shared/a.ts → path',
      'shared/a.ts → ../worker/errors.ts',
      'shared/a.ts → undici',
      'shared/protocol/x.ts → cloudflare:workers',
      'worker/escape.ts → ../../outside.ts',
      'worker/routes/r.ts → ../../agent/connection.ts',
      'worker/routes/r.ts → ../../client/pirelay.ts',
      'worker/routes/r.ts → left-pad',
    ]);
  });

  it('prints a violation as file → import (rule)', () => {
    const [v] = violations(new Map([['durable-objects/x.ts', `import { n } from '../worker/env-vars.ts';`]]), fake);
    expect(formatViolation(v!)).toBe('durable-objects/x.ts → ../worker/env-vars.ts (durable-objects/: only durable-objects/, shared/, cloudflare:*, npm dependencies; never worker/)');
  });
});
