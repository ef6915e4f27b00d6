// Where does a tunnel request's time go? Runs a c=N load through one tunnel and reports the CPU
// each process used (workerd = relay, bun agent, bun target, this node process = load generator).
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { BUN, ROOT, startDevEnv, waitOnline } from '../scripts/dev-env.ts';
import { freePort, tempDir } from '../test/e2e/harness.ts';
import { load } from './load.ts';

const C = Number(process.argv[2] ?? 64);
const PATH = process.argv[3] ?? '/tiny';
const ticks = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
};
const children = (name: string) =>
  readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => {
    try {
      const s = readFileSync(`/proc/${p}/stat`, 'utf8');
      return s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')) === name;
    } catch {
      return false;
    }
  });

const targets = spawn(BUN, [ROOT + '/test/fixtures/tunnel-targets.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
const ports = await new Promise<{ http: number }>((r) => targets.stdout!.once('data', (d) => r(JSON.parse(String(d)))));
const port = await freePort();
const env = await startDevEnv({ dir: await tempDir('prof'), port, demoDevices: ['p'] });
await waitOnline(env);
const { url, apiKey, devices } = env.state;
await fetch(`${url}/api/v1/devices/${devices[0]!.id}/tunnels`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'p', kind: 'http', target: `127.0.0.1:${ports.http}`, access: { mode: 'public' } }) });
await new Promise((r) => setTimeout(r, 500));
await load(`http://p.localhost:${port}${PATH}`, { concurrency: C, durationMs: 2000 });
const pids = { workerd: children('workerd'), agent: [env.agents.get(devices[0]!.id)!.pid!], target: [targets.pid!], loadgen: [process.pid] };
const before = Object.fromEntries(Object.entries(pids).map(([k, ps]) => [k, ps.reduce((a, p) => a + ticks(p), 0)]));
const r = await load(`http://p.localhost:${port}${PATH}`, { concurrency: C, durationMs: 5000 });
const after = Object.fromEntries(Object.entries(pids).map(([k, ps]) => [k, ps.reduce((a, p) => a + ticks(p), 0)]));
console.log(`c=${C} ${r.rps.toFixed(0)} req/s p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} errors ${r.errors}`);
for (const k of Object.keys(pids)) console.log(`${k.padEnd(8)} ${(((after[k]! - before[k]!) / 100 / 5) * 100).toFixed(0)}% CPU, ${((((after[k]! - before[k]!) * 10) / r.requests) * 1000).toFixed(0)} µs/request`);
await env.stop();
targets.kill();
