// Ad-hoc latency probe: sequential p50/p99 of several routes against one dev env.
import { startDevEnv, waitOnline } from '../scripts/dev-env.ts';
import { percentile } from './load.ts';
import { freePort, tempDir } from '../test/e2e/harness.ts';

const env = await startDevEnv({ dir: await tempDir('probe'), port: await freePort(), demoDevices: ['p'] });
await waitOnline(env);
const { url, apiKey, devices } = env.state;
const id = devices[0]!.id;
const h = { authorization: `Bearer ${apiKey}` };
async function seq(path: string, headers: Record<string, string> = h, n = 600) {
  const t: number[] = [];
  for (let i = 0; i < n + 50; i++) {
    const t0 = performance.now();
    const r = await fetch(url + path, { headers });
    await r.arrayBuffer();
    if (i >= 50) t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  console.log(`${path.padEnd(60)} p50 ${percentile(t, 50).toFixed(2)} p99 ${percentile(t, 99).toFixed(2)}`);
}
await seq('/health', {});
await seq('/api/v1/auth/me');
await seq(`/api/v1/devices/${id}`);
await seq(`/api/v1/devices/${id}/info`);
await seq(`/api/v1/devices/${id}/processes`, h, 100);
await seq('/devices');
await env.stop();
