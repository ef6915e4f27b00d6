// .ci/run with npm and apt-get replaced by stand-ins on PATH: its logs go to fresh temporary
// paths under $TMPDIR (never the fixed /tmp/npm-ci.log and friends another run or user may own),
// it still ends with npm test's "N passed, N failed" line, and it exits with npm test's status.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../scripts/dev-env.ts';
import { tempDir } from './harness.ts';

const FIXED = ['/tmp/apt.log', '/tmp/npm-ci.log', '/tmp/pirelay-test.log'];
const stamp = (p: string) => (existsSync(p) ? statSync(p).mtimeMs : null);

async function runCi(testExit: number) {
  const bin = await tempDir('ci-bin');
  const tmp = await tempDir('ci-tmp');
  const fake = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  fake('npm', `case "$1" in
  ci) echo "fake npm ci ran"; exit 0 ;;
  run) exit 0 ;;
  test) echo "fake tests"; echo "7 passed, ${testExit} failed"; exit ${testExit} ;;
esac
exit 3`);
  fake('apt-get', 'echo "fake apt-get $*"; exit 0');
  const before = FIXED.map(stamp);
  const r = spawnSync('bash', [join(ROOT, '.ci/run')], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, TMPDIR: tmp } });
  return { ...r, tmp, before, after: FIXED.map(stamp) };
}

describe('.ci/run', () => {
  for (const testExit of [0, 1]) {
    it(`logs to fresh temporary files and ends with npm test's line and status (${testExit})`, async () => {
      const r = await runCi(testExit);
      expect(r.status).toBe(testExit);
      expect(r.stdout.trimEnd().split('\n').pop()).toBe(`7 passed, ${testExit} failed`);
      // Written under our TMPDIR, in a directory of its own; the fixed paths were not touched.
      const dirs = readdirSync(r.tmp);
      expect(dirs.length).toBe(1);
      const logs = join(r.tmp, dirs[0]!);
      expect(readFileSync(join(logs, 'npm-ci.log'), 'utf8')).toContain('fake npm ci ran');
      expect(readFileSync(join(logs, 'test.log'), 'utf8')).toContain(`7 passed, ${testExit} failed`);
      expect(r.after).toEqual(r.before);
    });
  }
});
