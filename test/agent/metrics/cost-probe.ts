// The sampler's own cost, run by hand (not a test: it takes a minute and its figures depend on the
// machine): samples this machine every second for 60 s, as the live interval does, and prints the
// CPU time the process used (process.cpuUsage) per sample and overall, and its RSS before and after.
// `node_modules/.bin/bun test/agent/metrics/cost-probe.ts [seconds] [interval-ms]`
import { MetricsSampler } from '../../../agent/metrics/sampler.ts';
import { MetricsSampleSchema } from '../../../shared/api/metrics.ts';
import { seriesOf } from '../../../shared/api/series.ts';

const seconds = Number(process.argv[2] ?? 60);
const intervalMs = Number(process.argv[3] ?? 1000);
const sampler = new MetricsSampler({ root: '/', dockerSocket: '/var/run/docker.sock' });
// Warm up (first reads, JIT), and check the output once.
MetricsSampleSchema.parse(await sampler.sample(intervalMs));
Bun.gc(true);
const rssBefore = process.memoryUsage().rss;
const cpuBefore = process.cpuUsage();
const started = performance.now();
let samples = 0;
let inSample = 0;
let bytes = 0;
while (performance.now() - started < seconds * 1000) {
  await Bun.sleep(intervalMs - ((performance.now() - started) % intervalMs));
  const t = process.cpuUsage();
  const sample = await sampler.sample(intervalMs);
  // What the capability does with each sample besides sending it: its series for the buffer, and the JSON the socket carries.
  bytes += JSON.stringify(sample).length + JSON.stringify(seriesOf(sample)).length;
  const d = process.cpuUsage(t);
  inSample += d.user + d.system;
  samples++;
}
const cpu = process.cpuUsage(cpuBefore);
const wallUs = (performance.now() - started) * 1000;
const total = cpu.user + cpu.system;
const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
console.log(
  JSON.stringify({
    samples,
    interval_ms: intervalMs,
    us_per_sample: Math.round(inSample / samples),
    process_cpu_percent_of_one_core: Number(((100 * total) / wallUs).toFixed(3)),
    bytes_per_sample: Math.round(bytes / samples),
    rss_mib_before: mib(rssBefore),
    rss_mib_after: mib(process.memoryUsage().rss),
  }),
);
sampler.close();
