// `npm run bench`: brings up the relay and a demo agent the way `npm start` does, then measures
// against a baseline in the same run and prints a table. Numbers are reported, never asserted.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startDevEnv, waitOnline } from './dev-env.ts';
import { load, LOADGEN } from '../bench/load.ts';
import { benchTunnels } from '../bench/tunnels.ts';
import { benchStream } from '../bench/stream.ts';
import { benchDashboard } from '../bench/dashboard.ts';
import { benchKvm } from '../bench/kvm.ts';
import { benchTerminal } from '../bench/terminal.ts';
import { benchLogs } from '../bench/logs.ts';
import { benchMetrics, benchSoak } from '../bench/metrics.ts';
import { rss } from '../bench/proc.ts';
import { freePort, tempDir } from '../test/e2e/harness.ts';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5_000);


const dir = await tempDir('bench');
// The agent records its HID reports under DIR/hid, where the KVM bench watches them arrive.
const hidDir = join(dir, 'hid');
const env = await startDevEnv({ dir, port: await freePort(), demoDevices: ['bench-pi'], agentArgs: ['--hid-dir', hidDir] });
try {
  await waitOnline(env, 30_000);
  const { url, apiKey, devices } = env.state;
  const auth = { authorization: `Bearer ${apiKey}` };
  const deviceId = devices[0]!.id;
  const rows: [string, string, string][] = [];
  const fmt = (n: number, d = 1) => n.toFixed(d);

  // Device RPC round trip, one at a time, after a warm-up.
  const info = `${url}/api/v1/devices/${deviceId}/info`;
  await load(info, { concurrency: 1, durationMs: 60_000, headers: auth, maxRequests: 100 });
  const rpc = await load(info, { concurrency: 1, durationMs: 60_000, headers: auth, maxRequests: 2000 });
  if (rpc.errors) throw new Error(`device_info had ${rpc.errors} errors`);
  rows.push([`device_info RPC round trip (${rpc.requests} sequential)`, `p50 ${fmt(rpc.p50, 2)} ms, p99 ${fmt(rpc.p99, 2)} ms`, 'p50 ≤ 3 ms, p99 ≤ 15 ms']);
  const ping = await load(`${url}/api/v1/devices/${deviceId}`, { concurrency: 1, durationMs: 60_000, headers: auth, maxRequests: 2000 });
  rows.push([`GET /api/v1/devices/:id (no RPC, 1 D1 query)`, `p50 ${fmt(ping.p50, 2)} ms, p99 ${fmt(ping.p99, 2)} ms`, '—']);

  // Baseline: a trivial route in the same runtime; then /devices (auth + one D1 query).
  for (const c of [1, 64]) {
    const base = await load(`${url}/health`, { concurrency: c, durationMs: DURATION_MS });
    rows.push([`GET /health (baseline) c=${c}`, `${fmt(base.rps, 0)} req/s, p50 ${fmt(base.p50, 2)} ms, p99 ${fmt(base.p99, 2)} ms`, '—']);
    const devs = await load(`${url}/devices`, { concurrency: c, durationMs: DURATION_MS, headers: auth });
    if (devs.errors) throw new Error(`/devices had ${devs.errors} errors`);
    rows.push([`GET /devices c=${c}`, `${fmt(devs.rps, 0)} req/s, p50 ${fmt(devs.p50, 2)} ms, p99 ${fmt(devs.p99, 2)} ms`, '—']);
  }

  // Agent idle RSS: let it settle, then read /proc (before the tunnels load it).
  await new Promise((r) => setTimeout(r, 3_000));
  const agentPid = env.agents.get(deviceId)!.pid!;
  const r = rss(agentPid);
  rows.push(['agent idle RSS', `${fmt(r.total)} MiB (${fmt(r.anon)} MiB anonymous, ${fmt(r.file)} MiB pages of the Bun executable)`, '≤ 40 MiB']);

  // Before anything else loads the agent: its idle and 1 s cost, metrics watchers, D1 writes.
  rows.push(...(await benchMetrics(env)));
  // BENCH_SOAK_MINUTES=60 adds the soak (also `npm run bench:soak`, alone).
  if (process.env.BENCH_SOAK_MINUTES) rows.push(...(await benchSoak(env, Number(process.env.BENCH_SOAK_MINUTES))));
  rows.push(...(await benchDashboard(env)));
  rows.push(...(await benchKvm(env, hidDir)));
  rows.push(...(await benchTerminal(env)));
  // The agent follows its demo log file (DevEnv.logFile), where the logs bench writes.
  rows.push(...(await benchLogs(env)));
  if (!process.env.BENCH_SKIP_TUNNELS) rows.push(...(await benchTunnels(env, DURATION_MS)));
  // Last: it stops and starts the bench agent.
  rows.push(...(await benchStream(env)));

  const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length))];
  console.log(`\npirelay benchmark (${new Date().toISOString()}, ${DURATION_MS / 1000} s per load run, load from ${LOADGEN === 'wrk' ? 'wrk' : 'undici (install wrk for a lighter generator)'})\n`);
  console.log(`| ${'measure'.padEnd(w[0]!)} | ${'result'.padEnd(w[1]!)} | target |`);
  console.log(`|${'-'.repeat(w[0]! + 2)}|${'-'.repeat(w[1]! + 2)}|--------|`);
  for (const [a, b, c] of rows) console.log(`| ${a.padEnd(w[0]!)} | ${b.padEnd(w[1]!)} | ${c} |`);
} finally {
  await env.stop();
  await rm(dir, { recursive: true, force: true });
}
