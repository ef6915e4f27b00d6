import { execFileSync } from 'node:child_process';
import { startTunnelRig } from './rig.ts';
const rig = await startTunnelRig();
const { url, apiKey, devices } = rig.env.state;
const r = await fetch(`${url}/api/v1/devices/${devices[0]!.id}/tunnels`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ps', kind: 'http', target: `127.0.0.1:${rig.targets.sized}`, access: { mode: 'public' } }) });
console.log('create', r.status);
await new Promise((r) => setTimeout(r, 800));
const port = new URL(rig.tunnelUrl).port;
const dl = (host: string, p: number) => { const t = performance.now(); const out = execFileSync('curl', ['-sS', '--fail', '-o', '/dev/null', '-D', '-', '-w', '%{size_download}', '-H', `Host: ${host}`, `http://127.0.0.1:${p}/big?bytes=${2 ** 30}`], { encoding: 'utf8' }); return `${host}: ${(2 ** 30 / 1e6 / ((performance.now() - t) / 1000)).toFixed(0)} MB/s ${out.split('\n').filter((l) => /length|transfer/i.test(l)).join(' ').trim()} ${out.split('\n').at(-1)}`; };
for (let i = 0; i < 2; i++) {
  console.log(dl(`127.0.0.1`, rig.targets.sized), 'direct sized');
  console.log(dl(`p.localhost:${port}`, Number(port)));
  console.log(dl(`ps.localhost:${port}`, Number(port)));
}
await rig.stop();
