// CPU profile of the relay (workerd's V8, through the inspector) while a load runs through one
// tunnel: prints the functions with the most self time. `tsx bench/cpu-profile.ts [c] [path]`.
import { freePort } from '../test/e2e/harness.ts';
import { profileWorkerd } from './inspector.ts';
import { load } from './load.ts';
import { startTunnelRig } from './rig.ts';

const C = Number(process.argv[2] ?? 64);
const PATH = process.argv[3] ?? '/tiny';
const inspectorPort = await freePort();
const rig = await startTunnelRig({ inspectorPort });
const url = rig.tunnelUrl + PATH;
await load(url, { concurrency: C, durationMs: 1000 });
const r = await profileWorkerd(inspectorPort, () => load(url, { concurrency: C, durationMs: 5000 }));
console.log(`c=${C} ${r.rps.toFixed(0)} req/s p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)}`);
await rig.stop();
