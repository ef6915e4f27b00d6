// The compiled agent carries the emulator's thread: `npm run build:agent` lists its entrypoint
// (a compiled executable holds only the entrypoints it was given, and a Worker is one), and an
// executable built the same way opens a terminal session whose screen the thread keeps — a
// second viewer's redraw shows what the first one printed. Built without the entrypoint, the
// session still works, without a kept screen (the thread could not be started).
import { afterAll, describe, expect, it } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dir, '../../..');
const WORKER = 'agent/terminal/screen-worker.ts';
const dir = mkdtempSync(join(tmpdir(), 'pirelay-compiled-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function compileAndRun(entrypoints: string[], name: string) {
  const out = join(dir, name);
  const built = Bun.spawnSync([process.execPath, 'build', '--compile', '--root', '.', ...entrypoints, '--outfile', out], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' });
  if (built.exitCode !== 0) throw new Error(`bun build --compile failed: ${built.stderr}`);
  // From another folder, so nothing is loaded from the source tree.
  const r = Bun.spawnSync([out], { cwd: dir, stdout: 'pipe', stderr: 'pipe' });
  return JSON.parse(r.stdout.toString()) as { main: string; redrawn: boolean; live: boolean };
}

describe('terminal: the compiled agent', () => {
  it('npm run build:agent compiles the emulator thread in, for both targets, from the repository root', () => {
    const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['build:agent']!;
    const builds = script.split('&&').map((s) => s.trim());
    expect(builds.length).toBe(2);
    for (const b of builds) {
      expect(b).toContain('--compile --root . ');
      expect(b).toContain(` agent/main.ts ${WORKER} `);
    }
  });

  it(
    'built like that, a session keeps its screen on the thread; built without it, the session still runs',
    () => {
      const probe = 'test/agent/terminal/compiled-probe.ts';
      const withThread = compileAndRun([probe, WORKER], 'with-thread');
      expect(withThread.main.startsWith('/$bunfs/')).toBe(true);
      expect(withThread.redrawn).toBe(true);
      expect(withThread.live).toBe(true);
      const without = compileAndRun([probe], 'without-thread');
      expect(without.redrawn).toBe(false);
      expect(without.live).toBe(true);
    },
    { timeout: 120_000 },
  );
});
