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

  it('documents the kvm flags', () => {
    const { stdout } = run('--help');
    for (const flag of ['--hid-dir DIR', '--screen BACKEND', '--video-device PATH']) expect(stdout).toContain(flag);
    expect(stdout).toContain('auto, simulated, ustreamer, v4l2, grim, x11, fbdev, none');
  });

  it('refuses bad kvm flags as usage errors, before reading the config', () => {
    const config = '/nonexistent/pirelay/agent.json';
    for (const [args, message] of [
      [['--screen', 'vnc'], '--screen must be one of'],
      [['--hid-dir', ''], '--hid-dir needs a directory'],
      [['--video-device', ''], '--video-device needs a path'],
      [['--hid-dir'], 'argument missing'],
    ] as const) {
      const { code, stderr } = run('run', '--config', config, ...args);
      expect(code).toBe(2);
      expect(stderr).toContain(message);
      expect(stderr).toContain('pirelay-agent run [--config PATH]');
    }
  });

  it('takes good kvm flags and goes on to the config (which is missing here)', () => {
    const { code, stderr } = run('run', '--config', '/nonexistent/pirelay/agent.json', '--simulate', '--hid-dir', '/tmp/pirelay-hid', '--screen', 'simulated', '--video-device', '/dev/video1');
    expect(code).toBe(1);
    expect(stderr).not.toContain('Usage:');
  });

  it('shows the same usage after a bad command line', () => {
    const { code, stderr } = run('frobnicate');
    expect(code).toBe(2);
    expect(stderr).toContain('unknown command frobnicate');
    expect(stderr).toContain('pirelay-agent enroll --relay URL');
  });
});
