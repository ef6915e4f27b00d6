// Where does a tunnel request's time go? Runs a c=N load through one tunnel and reports the CPU
// each process used (workerd = relay, bun agent, bun target, this node process = load generator).
// `tsx bench/profile-tunnel.ts [concurrency] [path]`
import { cpuTicks, processesNamed } from './proc.ts';
import { startTunnelRig } from './rig.ts';
import { load } from './load.ts';

const C = Number(process.argv[2] ?? 64);
const PATH = process.argv[3] ?? '/tiny';
const SECONDS = 5;

const rig = await startTunnelRig();
const url = rig.tunnelUrl + PATH;
await load(url, { concurrency: C, durationMs: 2000 });
const pids: Record<string, number[]> = {
  workerd: processesNamed('workerd', process.pid),
  agent: [rig.env.agents.get(rig.env.state.devices[0]!.id)!.pid!],
  target: [rig.targets.pid],
  loadgen: [process.pid],
};
const used = () => Object.fromEntries(Object.entries(pids).map(([k, ps]) => [k, ps.reduce((a, p) => a + cpuTicks(p), 0)]));
const before = used();
const r = await load(url, { concurrency: C, durationMs: SECONDS * 1000 });
const after = used();
console.log(`c=${C} ${r.rps.toFixed(0)} req/s p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} errors ${r.errors}`);
for (const k of Object.keys(pids)) {
  const ticks = after[k]! - before[k]!;
  console.log(`${k.padEnd(8)} ${((ticks / 100 / SECONDS) * 100).toFixed(0)}% CPU, ${(((ticks * 10) / r.requests) * 1000).toFixed(0)} µs/request`);
}
await rig.stop();
