// `npm test`: every suite, one after another — workers tests in workerd, agent tests in Bun, the
// shared protocol under Deno, end-to-end tests against the real relay and agents — then one line
// "N passed, N failed" that counts them all. A suite that crashes counts as one failure.
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './dev-env.ts';
import { ensureDashboard } from './dashboard.ts';

interface Counts {
  passed: number;
  failed: number;
  skipped?: number;
}

const OUT = join(ROOT, '.pirelay', 'test-results');
const bin = (name: string) => join(ROOT, 'node_modules/.bin', name);

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const tee = (d: Buffer) => {
      output += d;
      process.stdout.write(d);
    };
    child.stdout.on('data', tee);
    child.stderr.on('data', tee);
    child.on('exit', (code) => resolve({ code: code ?? 1, output }));
  });
}

async function vitest(config: string, name: string): Promise<Counts> {
  const file = join(OUT, `${name}.json`);
  const { code } = await run(bin('vitest'), ['run', '--config', config, '--reporter=default', '--reporter=json', `--outputFile.json=${file}`]);
  try {
    const r = JSON.parse(await readFile(file, 'utf8')) as { numPassedTests: number; numFailedTests: number; numPendingTests: number; numTodoTests: number };
    const failed = r.numFailedTests + (code !== 0 && r.numFailedTests === 0 ? 1 : 0);
    return { passed: r.numPassedTests, failed, skipped: r.numPendingTests + r.numTodoTests };
  } catch {
    return { passed: 0, failed: 1 };
  }
}

async function bunTest(dir: string): Promise<Counts> {
  const { code, output } = await run(bin('bun'), ['test', dir]);
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const passed = Number(/^\s*(\d+) pass\b/m.exec(plain)?.[1] ?? 0);
  const failed = Number(/^\s*(\d+) fail\b/m.exec(plain)?.[1] ?? 0);
  const skipped = Number(/^\s*(\d+) skip\b/m.exec(plain)?.[1] ?? 0);
  return { passed, failed: failed + (code !== 0 && failed === 0 ? 1 : 0), skipped };
}

async function denoTest(pattern: string): Promise<Counts> {
  // The Deno binary from npm (@deno/linux-x64-glibc): the `deno` wrapper package also lists
  // other platforms' builds, which the registry this project uses does not carry, so `npm ci`
  // could not lock it.
  const deno = join(ROOT, 'node_modules/@deno/linux-x64-glibc/deno');
  const { code, output } = await run(deno, ['test', '--no-check', '--allow-read', '--node-modules-dir=manual', pattern], { NO_COLOR: '1' });
  const m = /(ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/.exec(output);
  const passed = Number(m?.[2] ?? 0);
  const failed = Number(m?.[3] ?? 0);
  return { passed, failed: failed + (code !== 0 && failed === 0 ? 1 : 0) };
}

await rm(OUT, { recursive: true, force: true });
await mkdir(OUT, { recursive: true });
const only = process.argv.slice(2);
const suites: [string, () => Promise<Counts>][] = [
  ['workers', () => vitest('vitest.workers.config.ts', 'workers')],
  ['agent', () => bunTest('test/agent')],
  ['shared-deno', () => denoTest('test/shared/')],
  ['e2e', () => vitest('vitest.e2e.config.ts', 'e2e')],
  ['browser', () => vitest('vitest.browser.config.ts', 'browser')],
];
// The workers tests load wrangler.toml, whose [assets] directory is the built dashboard.
await ensureDashboard((m) => console.log(`[pirelay] ${m}`));
const total = { passed: 0, failed: 0, skipped: 0 };
const lines: string[] = [];
for (const [name, fn] of suites) {
  if (only.length && !only.includes(name)) continue;
  console.log(`\n=== ${name} ===`);
  const started = Date.now();
  const c = await fn();
  total.passed += c.passed;
  total.failed += c.failed;
  total.skipped += c.skipped ?? 0;
  lines.push(`${name.padEnd(12)} ${String(c.passed).padStart(4)} passed ${String(c.failed).padStart(3)} failed ${String(c.skipped ?? 0).padStart(2)} skipped  ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
console.log(`\n${lines.join('\n')}`);
console.log(`${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}`);
process.exit(total.failed ? 1 : 0);
