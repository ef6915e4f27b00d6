// Watched process names on this machine's real /proc, with real child processes: one run under a
// distinctive comm (a copy of sleep with that file name), others under a distinctive argv0 (`exec -a`,
// comm stays "sleep"), counted through the whole capability (metrics_config → the next sample's
// `watched`), and gone from the count once they exit.
import { afterAll, afterEach, describe, expect, test } from 'bun:test';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metricsCapability, type MetricsCapability } from '../../../agent/metrics/index.ts';
import { lastRead } from '../../../agent/metrics/proc-file.ts';
import { MetricsSampler } from '../../../agent/metrics/sampler.ts';
import { FakeHub, quietLogger, waitFor } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'pirelay-watched-'));
const COMM = `prw${process.pid % 100000}zz`;
const ARGV0 = `pirelay-watched-argv0-${process.pid}`;
copyFileSync(Bun.which('sleep')!, join(dir, COMM));

const children: ReturnType<typeof Bun.spawn>[] = [];
function spawn(argv: string[]) {
  const child = Bun.spawn(argv, { stdout: 'ignore', stderr: 'ignore' });
  children.push(child);
  return child;
}
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const caps: MetricsCapability[] = [];
afterEach(async () => {
  for (const c of caps.splice(0)) await c.stop();
});

describe('watched processes', () => {
  test('counted by comm and by argv0, and not at all when they have exited', async () => {
    const byComm = [spawn([join(dir, COMM), '300']), spawn([join(dir, COMM), '300'])];
    const byArgv0 = spawn(['bash', '-c', `exec -a ${ARGV0} sleep 300`]);
    const sampler = new MetricsSampler({ root: '/', dockerSocket: '/nonexistent.sock', systemctl: null, nvidiaSmi: null });
    try {
      sampler.setWatch({ processes: [COMM, ARGV0, 'no-such-process-anywhere'], containers: [] });
      // bash replaces itself with sleep: wait until the exec has happened.
      await waitFor(() => readFileSync(`/proc/${byArgv0.pid}/cmdline`, 'latin1').startsWith(ARGV0), 5_000, 'the exec');
      const sample = await sampler.sample(1000);
      expect(sample.watched).toEqual({ processes: { [COMM]: 2, [ARGV0]: 1, 'no-such-process-anywhere': 0 }, containers: {} });
      for (const c of [...byComm, byArgv0]) c.kill('SIGKILL');
      await Promise.all([...byComm, byArgv0].map((c) => c.exited));
      // A new watch sweeps at once, whatever the sweep's pace.
      sampler.setWatch({ processes: [COMM, ARGV0], containers: [] });
      expect((await sampler.sample(1000)).watched?.processes).toEqual({ [COMM]: 0, [ARGV0]: 0 });
    } finally {
      sampler.close();
    }
  });

  test('a process with megabytes of arguments is matched by argv0 without reading them all', async () => {
    // Each argument at most MAX_ARG_STRLEN (128 KiB): 16 of 100 KB.
    const huge = spawn(['bash', '-c', `exec -a ${ARGV0} sleep 300 "$@"`, 'bash', ...Array.from({ length: 16 }, () => 'x'.repeat(100_000))]);
    await waitFor(() => readFileSync(`/proc/${huge.pid}/cmdline`, 'latin1').startsWith(ARGV0), 5_000, 'the exec');
    const sampler = new MetricsSampler({ root: '/', dockerSocket: '/nonexistent.sock', systemctl: null, nvidiaSmi: null });
    try {
      sampler.setWatch({ processes: [ARGV0], containers: [] });
      expect((await sampler.sample(1000)).watched?.processes).toEqual({ [ARGV0]: 1 });
      // The buffer every read shares stayed small.
      expect(lastRead().length).toBeLessThan(256 * 1024);
    } finally {
      sampler.close();
      huge.kill('SIGKILL');
    }
  });

  test("through the capability: metrics_config's names come back in the samples' watched counts", async () => {
    spawn([join(dir, COMM), '300']);
    const hub = new FakeHub();
    const cap = metricsCapability({ log: quietLogger(), options: { root: '/', dockerSocket: '/nonexistent.sock', intervalMs: 3_600_000 }, sampler: { systemctl: null, nvidiaSmi: null } });
    caps.push(cap);
    cap.onHello!(hub.send);
    cap.messages!.metrics_config!({ t: 'metrics_config', interval_ms: 1000, watch: { processes: [COMM], containers: ['no-such-container'] } });
    const counted = await waitFor(() => hub.live().find((m) => m.sample.watched !== undefined), 10_000, 'a sample with watched counts');
    expect(counted.sample.watched).toEqual({ processes: { [COMM]: 1 }, containers: {} });
  });
});
