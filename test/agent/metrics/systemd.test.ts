// systemd services through a fake systemctl: a real executable that prints list-units output and
// records its arguments. Services are listed only where systemd is the running init
// (/run/systemd/system under the root); a systemctl that fails or is absent means
// `available: false`; a sample runs it once per SYSTEMD_EVERY_MS, not per sample.
import { afterAll, afterEach, describe, expect, test } from 'bun:test';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricsSampler } from '../../../agent/metrics/sampler.ts';
import { SYSTEMD_EVERY_MS, SystemdReader } from '../../../agent/metrics/systemd.ts';
import { createRunCommand } from '../../../agent/system/command.ts';
import { fixedStatfs, makeRoot, manualClock, removeTempRoots } from '../system/helpers.ts';

afterEach(removeTempRoots);

const dir = mkdtempSync(join(tmpdir(), 'pirelay-systemctl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const calls = join(dir, 'calls');

function fakeSystemctl(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\necho "$@" >> ${calls}\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

const LISTING = [
  'cron.service loaded active running Regular background program processing daemon',
  'nginx.service loaded failed failed A high performance web server and a reverse proxy server',
  'pirelay-agent.service loaded active running pirelay agent',
].join('\n');
const good = fakeSystemctl('systemctl', `cat <<'EOF'\n${LISTING}\nEOF`);
const failing = fakeSystemctl('systemctl-broken', 'echo "Failed to connect to bus" >&2; exit 1');
const booted = () => makeRoot({ 'run/systemd/system/.keep': '' });
const runCommand = createRunCommand();
const callCount = () => {
  try {
    return readFileSync(calls, 'utf8').trim().split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
};

describe('systemd', () => {
  test('lists services where systemd runs, asking systemctl for every service unit', async () => {
    const before = callCount();
    const result = await new SystemdReader({ root: booted(), runCommand, systemctl: good }).read();
    expect(result).toEqual({
      available: true,
      services: [
        { name: 'cron.service', state: 'active', subState: 'running' },
        { name: 'nginx.service', state: 'failed', subState: 'failed' },
        { name: 'pirelay-agent.service', state: 'active', subState: 'running' },
      ],
    });
    expect(callCount()).toBe(before + 1);
    expect(readFileSync(calls, 'utf8').trim().split('\n').at(-1)).toBe('list-units --type=service --all --plain --no-legend --no-pager');
  });

  test('not where systemd is not the running init, even with systemctl installed; it is not even run', async () => {
    const before = callCount();
    expect(await new SystemdReader({ root: makeRoot({}), runCommand, systemctl: good }).read()).toEqual({ available: false, services: [] });
    expect(callCount()).toBe(before);
  });

  test('not when systemctl fails or is absent', async () => {
    expect(await new SystemdReader({ root: booted(), runCommand, systemctl: failing }).read()).toEqual({ available: false, services: [] });
    expect(await new SystemdReader({ root: booted(), runCommand, systemctl: null }).read()).toEqual({ available: false, services: [] });
    expect(await new SystemdReader({ root: booted(), runCommand, systemctl: join(dir, 'no-such-systemctl') }).read()).toEqual({ available: false, services: [] });
  });

  test('in samples: run once per SYSTEMD_EVERY_MS', async () => {
    const clock = manualClock();
    const sampler = new MetricsSampler({ root: booted(), dockerSocket: '/nonexistent.sock', now: clock.now, systemctl: good, nvidiaSmi: null, statfs: fixedStatfs({}) });
    try {
      const before = callCount();
      const first = await sampler.sample(1000);
      expect(first.systemd.services.map((s) => s.name)).toEqual(['cron.service', 'nginx.service', 'pirelay-agent.service']);
      for (let t = 5000; t < SYSTEMD_EVERY_MS; t += 5000) {
        clock.advance(5000);
        expect((await sampler.sample(5000)).systemd.available).toBe(true);
      }
      expect(callCount()).toBe(before + 1);
    } finally {
      sampler.close();
    }
  });
});
