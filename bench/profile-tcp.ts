// Where does a TCP tunnel's time go? One stream through `pirelay tcp` (Bun, own process), read
// by a Bun process of its own; reports MB/s and the CPU of each process in the chain.
// `tsx bench/profile-tcp.ts [MiB] [--cpu]` (--cpu: also a V8 profile of the relay during the tunnel run)
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { cpuTicks, processesNamed } from './proc.ts';
import { startTunnelRig } from './rig.ts';
import { BUN, ROOT, waitFor } from '../scripts/dev-env.ts';
import { freePort } from '../test/e2e/harness.ts';
import { profileWorkerd } from './inspector.ts';
import { tcpDownload } from './tunnels.ts';

const BYTES = Number(process.argv[2]?.startsWith('-') ? 512 : process.argv[2] ?? 512) * 1024 * 1024;
const CPU = process.argv.includes('--cpu');
const inspectorPort = CPU ? await freePort() : undefined;
const rig = await startTunnelRig({ inspectorPort });
const { url, apiKey, devices } = rig.env.state;
const deviceId = devices[0]!.id;
const made = await fetch(`${url}/api/v1/devices/${deviceId}/tunnels`, {
  method: 'POST',
  headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
  body: JSON.stringify({ name: 'ptcp', kind: 'tcp', target: `127.0.0.1:${rig.targets.tcp}`, access: { mode: 'pirelay' } }),
});
if (made.status !== 201) throw new Error(`tunnel create: ${made.status} ${await made.text()}`);
await new Promise((r) => setTimeout(r, 500));
const listen = await freePort();
const client = spawn(BUN, [join(ROOT, 'client/pirelay.ts'), 'tcp', `${deviceId}:${rig.targets.tcp}`, '--listen', `127.0.0.1:${listen}`, '--relay', url], {
  env: { ...process.env, PIRELAY_API_KEY: apiKey },
  stdio: 'inherit',
});
await waitFor('pirelay tcp to listen', () => new Promise<boolean>((resolve) => connect(listen, '127.0.0.1').once('connect', function (this: Socket) { this.destroy(); resolve(true); }).once('error', () => resolve(false))), 15_000);
const pids: Record<string, number[]> = {
  workerd: processesNamed('workerd', process.pid),
  agent: [rig.env.agents.get(deviceId)!.pid!],
  target: [rig.targets.pid],
  client: [client.pid!],
  bench: [process.pid],
};
for (const direct of [true, false]) {
  const used = () => Object.fromEntries(Object.entries(pids).map(([k, ps]) => [k, ps.reduce((a, p) => a + cpuTicks(p), 0)]));
  const before = used();
  const t0 = performance.now();
  const read = () => tcpDownload(direct ? rig.targets.tcp : listen, BYTES);
  const mbs = CPU && !direct ? await profileWorkerd(inspectorPort!, read, 30) : await read();
  const secs = (performance.now() - t0) / 1000;
  const after = used();
  console.log(`${direct ? 'direct' : 'tunnel'}: ${BYTES} bytes, ${mbs.toFixed(0)} MB/s`);
  for (const k of Object.keys(pids)) console.log(`  ${k.padEnd(8)} ${(((after[k]! - before[k]!) / 100 / secs) * 100).toFixed(0)}% CPU`);
}
client.kill();
await rig.stop();
