// `pirelay-agent install-service`: the unit it writes (the same text as deploy/pirelay-agent.service),
// the files it installs and the systemctl command lines it runs, in order, through a fake systemctl
// that records them; and that it stops with the reason, before writing anything it can avoid,
// when the device is not enrolled, systemd is absent or a step fails. The last tests run the
// compiled binary itself, as a person on a Pi does.
import { afterAll, beforeAll, describe, expect, it } from 'bun:test';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_BIN_DIR, DEFAULT_UNIT_DIR, installService, installTargets, systemdUnit, type InstallOptions } from '../../agent/install-service.ts';
import { ROOT_CONFIG_PATH } from '../../agent/config.ts';

const ROOT = resolve(import.meta.dir, '../..');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pirelay-install-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fake systemctl that appends its arguments to `log`, one call a line, and exits with `code` for `fails` (a first argument). */
async function fakeSystemctl(where: string, opts: { fails?: string; code?: number; stderr?: string } = {}): Promise<{ bin: string; calls: () => Promise<string[]> }> {
  await mkdir(where, { recursive: true });
  const bin = join(where, 'systemctl');
  const log = join(where, 'systemctl.log');
  await writeFile(
    bin,
    `#!/bin/sh
echo "$*" >> '${log}'
if [ "$1" = '${opts.fails ?? ''}' ]; then echo '${opts.stderr ?? ''}' >&2; exit ${opts.code ?? 1}; fi
exit 0
`,
  );
  await chmod(bin, 0o755);
  return { bin, calls: async () => (existsSync(log) ? (await readFile(log, 'utf8')).trim().split('\n') : []) };
}

/** A scratch layout: a "binary", an enrolled config, and where bin/ and the unit go. */
async function layout(name: string) {
  const base = join(dir, name);
  await mkdir(base, { recursive: true });
  const source = join(base, 'downloaded-agent');
  await writeFile(source, '#!/bin/sh\necho agent\n');
  const config = join(base, 'etc/agent.json');
  await mkdir(join(base, 'etc'));
  await writeFile(config, '{}');
  const said: string[] = [];
  const opts = (over: Partial<InstallOptions> = {}): InstallOptions => ({
    source,
    config,
    binDir: join(base, 'bin'),
    unitDir: join(base, 'systemd'),
    systemctl: null,
    say: (l) => said.push(l),
    ...over,
  });
  return { base, source, config, said, opts };
}

describe('the systemd unit', () => {
  it('is deploy/pirelay-agent.service with the default paths', async () => {
    const deployed = await readFile(join(ROOT, 'deploy/pirelay-agent.service'), 'utf8');
    // One text, two places: edit agent/install-service.ts and copy its default unit to deploy/ (or the other way round).
    expect(systemdUnit({ binary: `${DEFAULT_BIN_DIR}/pirelay-agent`, config: ROOT_CONFIG_PATH })).toBe(deployed);
    expect(deployed).toContain('\nExecStart=/usr/local/bin/pirelay-agent run --config /etc/pirelay/agent.json\n');
    expect(deployed).toContain('\nWantedBy=multi-user.target\n');
  });

  it('runs the binary and config it is given, quoting what systemd would split or expand', () => {
    expect(systemdUnit({ binary: '/opt/p/pirelay-agent', config: '/srv/x/agent.json' })).toContain('\nExecStart=/opt/p/pirelay-agent run --config /srv/x/agent.json\n');
    const odd = systemdUnit({ binary: '/opt/my dir/pirelay-agent', config: '/etc/100%/$HOME/"a".json' });
    expect(odd).toContain('\nExecStart="/opt/my dir/pirelay-agent" run --config "/etc/100%%/$$HOME/\\"a\\".json"\n');
  });
});

describe('installService', () => {
  it('installs the binary and the unit, then runs daemon-reload and enable --now, in that order', async () => {
    const l = await layout('ok');
    const ctl = await fakeSystemctl(join(l.base, 'fake'));
    const done = await installService(l.opts({ systemctl: ctl.bin }));
    const binary = join(l.base, 'bin/pirelay-agent');
    const unit = join(l.base, 'systemd/pirelay-agent.service');
    expect(done).toEqual({ binary, unit });
    expect(await readFile(binary, 'utf8')).toBe(await readFile(l.source, 'utf8'));
    expect((await stat(binary)).mode & 0o777).toBe(0o755);
    expect(await readFile(unit, 'utf8')).toBe(systemdUnit({ binary, config: l.config }));
    expect((await stat(unit)).mode & 0o777).toBe(0o644);
    expect(await ctl.calls()).toEqual(['daemon-reload', 'enable --now pirelay-agent']);
    expect(l.said).toEqual([`installed ${binary}`, `wrote ${unit}`, 'ran systemctl daemon-reload', 'ran systemctl enable --now pirelay-agent']);
  });

  it('leaves the binary alone when it runs from where it is installed, and replaces an old one otherwise', async () => {
    const l = await layout('again');
    const ctl = await fakeSystemctl(join(l.base, 'fake'));
    await mkdir(join(l.base, 'bin'));
    const installed = join(l.base, 'bin/pirelay-agent');
    await writeFile(installed, 'old version');
    await installService(l.opts({ systemctl: ctl.bin }));
    expect(await readFile(installed, 'utf8')).toBe(await readFile(l.source, 'utf8'));
    l.said.length = 0;
    await installService(l.opts({ systemctl: ctl.bin, source: installed }));
    expect(l.said[0]).toBe(`${installed} is the running agent; left as it is`);
    expect(await readFile(installed, 'utf8')).toBe(await readFile(l.source, 'utf8'));
  });

  it('refuses before writing anything when the device is not enrolled', async () => {
    const l = await layout('unenrolled');
    const ctl = await fakeSystemctl(join(l.base, 'fake'));
    await rm(l.config);
    await expect(installService(l.opts({ systemctl: ctl.bin }))).rejects.toThrow(`no agent config at ${l.config}: enroll first`);
    expect(existsSync(join(l.base, 'bin'))).toBe(false);
    expect(existsSync(join(l.base, 'systemd'))).toBe(false);
    expect(await ctl.calls()).toEqual([]);
  });

  it('says systemd is absent, with the command to run instead, before writing anything', async () => {
    const l = await layout('no-systemd');
    await expect(installService(l.opts({ systemctl: null }))).rejects.toThrow(
      `systemctl was not found, so this system does not seem to run systemd; start the agent with your init system instead: ${join(l.base, 'bin/pirelay-agent')} run --config ${l.config}`,
    );
    expect(existsSync(join(l.base, 'bin'))).toBe(false);
  });

  it('stops at the step that failed, with systemctl exit code and message', async () => {
    const l = await layout('reload-fails');
    const ctl = await fakeSystemctl(join(l.base, 'fake'), { fails: 'daemon-reload', code: 3, stderr: 'System has not been booted with systemd as init system (PID 1).' });
    await expect(installService(l.opts({ systemctl: ctl.bin }))).rejects.toThrow('systemctl daemon-reload failed (exit 3): System has not been booted with systemd as init system (PID 1).');
    expect(await ctl.calls()).toEqual(['daemon-reload']);

    const m = await layout('enable-fails');
    const ctl2 = await fakeSystemctl(join(m.base, 'fake'), { fails: 'enable', code: 1, stderr: 'Failed to enable unit: Unit file pirelay-agent.service does not exist.' });
    await expect(installService(m.opts({ systemctl: ctl2.bin }))).rejects.toThrow('systemctl enable --now pirelay-agent failed (exit 1): Failed to enable unit');
  });

  it('says which file it could not write', async () => {
    const l = await layout('unwritable');
    const ctl = await fakeSystemctl(join(l.base, 'fake'));
    await writeFile(join(l.base, 'not-a-dir'), '');
    await expect(installService(l.opts({ systemctl: ctl.bin, binDir: join(l.base, 'not-a-dir') }))).rejects.toThrow(`cannot write ${join(l.base, 'not-a-dir')}`);
    expect(await ctl.calls()).toEqual([]);
  });
});

describe('installTargets', () => {
  it('defaults to /usr/local/bin, /etc/systemd/system and systemctl on PATH', async () => {
    const ctl = await fakeSystemctl(join(dir, 'path-lookup'));
    expect(installTargets({ PATH: `${join(dir, 'path-lookup')}:/nonexistent` })).toEqual({ binDir: DEFAULT_BIN_DIR, unitDir: DEFAULT_UNIT_DIR, systemctl: ctl.bin });
    expect(installTargets({ PATH: '/nonexistent' }).systemctl).toBeNull();
  });

  it('honours PIRELAY_BIN_DIR, PIRELAY_UNIT_DIR and PIRELAY_SYSTEMCTL', () => {
    expect(installTargets({ PIRELAY_BIN_DIR: '/b', PIRELAY_UNIT_DIR: '/u', PIRELAY_SYSTEMCTL: '/s/systemctl', PATH: '' })).toEqual({ binDir: '/b', unitDir: '/u', systemctl: '/s/systemctl' });
  });
});

describe('pirelay-agent install-service (the compiled binary)', () => {
  let agent: string;
  beforeAll(async () => {
    agent = join(dir, 'compiled/pirelay-agent-download');
    const built = Bun.spawnSync([process.execPath, 'build', '--compile', join(ROOT, 'agent/main.ts'), '--outfile', agent], { stdout: 'pipe', stderr: 'pipe' });
    if (built.exitCode !== 0) throw new Error(`bun build --compile failed: ${built.stderr}`);
  }, 120_000);

  function run(env: Record<string, string>, ...args: string[]) {
    const r = Bun.spawnSync([agent, 'install-service', ...args], { stdout: 'pipe', stderr: 'pipe', env });
    return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  }

  it('installs itself with the overridden paths and says what it did', async () => {
    const l = await layout('cli');
    const fake = join(l.base, 'fake');
    const ctl = await fakeSystemctl(fake);
    const env = { PATH: `${fake}:/usr/bin:/bin`, PIRELAY_BIN_DIR: join(l.base, 'bin'), PIRELAY_UNIT_DIR: join(l.base, 'systemd'), PIRELAY_AGENT_CONFIG: l.config };
    const r = run(env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const binary = join(l.base, 'bin/pirelay-agent');
    expect(r.stdout).toContain(`installed ${binary}\n`);
    expect(r.stdout).toContain('pirelay-agent is enabled and started; follow its log with: journalctl -u pirelay-agent -f\n');
    expect(await ctl.calls()).toEqual(['daemon-reload', 'enable --now pirelay-agent']);
    expect(await readFile(join(l.base, 'systemd/pirelay-agent.service'), 'utf8')).toContain(`\nExecStart=${binary} run --config ${l.config}\n`);
    // The installed copy is the agent itself.
    expect(Bun.spawnSync([binary, '--version']).stdout.toString()).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('exits non-zero with the reason when systemd is absent', async () => {
    const l = await layout('cli-no-systemd');
    const r = run({ PATH: join(l.base, 'empty'), PIRELAY_BIN_DIR: join(l.base, 'bin'), PIRELAY_UNIT_DIR: join(l.base, 'systemd') }, '--config', l.config);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('systemctl was not found, so this system does not seem to run systemd');
    expect(existsSync(join(l.base, 'bin'))).toBe(false);
  });

  it('exits non-zero with the reason when a systemctl step fails', async () => {
    const l = await layout('cli-fails');
    const ctl = await fakeSystemctl(join(l.base, 'fake'), { fails: 'enable', code: 4, stderr: 'Access denied' });
    const r = run({ PATH: '/usr/bin:/bin', PIRELAY_SYSTEMCTL: ctl.bin, PIRELAY_BIN_DIR: join(l.base, 'bin'), PIRELAY_UNIT_DIR: join(l.base, 'systemd') }, '--config', l.config);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('systemctl enable --now pirelay-agent failed (exit 4): Access denied');
  });

  it('refuses to run from source, where it would install Bun itself', () => {
    const r = Bun.spawnSync([process.execPath, join(ROOT, 'agent/main.ts'), 'install-service'], { stdout: 'pipe', stderr: 'pipe' });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toContain('install-service installs the compiled agent');
  });
});
