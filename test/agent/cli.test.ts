// The agent's command line as a user meets it: it calls itself pirelay-agent (the name it is
// installed under) and answers --version, -v and `version` with its version.
import { describe, expect, it } from 'bun:test';
import { join, resolve } from 'node:path';
import { AGENT_VERSION } from '../../shared/version.ts';

const MAIN = join(resolve(import.meta.dir, '../..'), 'agent/main.ts');

function run(...args: string[]) {
  const r = Bun.spawnSync([process.execPath, MAIN, ...args], { stdout: 'pipe', stderr: 'pipe' });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe('agent CLI', () => {
  for (const flag of ['--version', '-v', 'version']) {
    it(`prints its version for ${flag}`, () => {
      expect(run(flag)).toEqual({ code: 0, stdout: `${AGENT_VERSION}\n`, stderr: '' });
    });
  }

  it('names itself pirelay-agent in its usage', () => {
    const { code, stdout } = run('--help');
    expect(code).toBe(0);
    expect(stdout).toStartWith(`pirelay-agent ${AGENT_VERSION}`);
    expect(stdout).toContain('pirelay-agent run [--config PATH]');
    expect(stdout).not.toMatch(/^\s+agent /m);
  });

  it('shows the same usage after a bad command line', () => {
    const { code, stderr } = run('frobnicate');
    expect(code).toBe(2);
    expect(stderr).toContain('unknown command frobnicate');
    expect(stderr).toContain('pirelay-agent enroll --relay URL');
  });
});
