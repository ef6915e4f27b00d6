// The live-stream part of `npm run bench`: N SSE readers of GET /api/v1/stream (100, then 1,000)
// held from this one process, while the bench agent is stopped and started; for every status event
// and every reader, the delay from the change (the event's timestamp, set by the device's hub when
// it noticed) to the reader parsing it. Runs last: it takes the bench agent down and back up.
import { waitFor, waitOnline, type DevEnv } from '../scripts/dev-env.ts';
import { openSse, type SseReader } from '../test/e2e/sse.ts';

type Row = [string, string, string];
/** Offline/online toggles per N: each gives one event per reader. */
const TOGGLES = 4;
/** Readers opened at once while connecting (the relay authenticates and dials the hub for each). */
const OPEN_WIDTH = 50;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;

export async function benchStream(env: DevEnv, counts: readonly number[] = [100, 1000]): Promise<Row[]> {
  const { url, apiKey, devices } = env.state;
  const deviceId = devices[0]!.id;
  const rows: Row[] = [];
  for (const n of counts) {
    const readers: SseReader[] = [];
    try {
      for (let i = 0; i < n; i += OPEN_WIDTH) {
        const batch = await Promise.all(Array.from({ length: Math.min(OPEN_WIDTH, n - i) }, () => openSse(`${url}/api/v1/stream?agent_id=${deviceId}`, { authorization: `Bearer ${apiKey}` })));
        readers.push(...batch);
      }
      if (readers.some((r) => r.status !== 200)) throw new Error(`stream: ${readers.filter((r) => r.status !== 200).length} readers refused`);
      await waitFor(`${n} readers connected`, async () => readers.every((r) => r.retry !== null), 60_000);
      const delays: number[] = [];
      for (const r of readers) r.onMessage = (m) => m.event === 'status' && delays.push(m.at - Date.parse(JSON.parse(m.data).timestamp));
      for (let t = 0; t < TOGGLES; t++) {
        const want = (t * 2 + 2) * n;
        await env.stopAgent(deviceId);
        await waitFor('offline delivered', async () => delays.length >= want - n, 30_000, 5);
        env.startAgent(deviceId);
        await waitFor('online delivered', async () => delays.length >= want, 30_000, 5);
      }
      if (readers.some((r) => r.ended)) throw new Error(`stream: ${readers.filter((r) => r.ended).length} of ${n} readers were dropped`);
      delays.sort((a, b) => a - b);
      rows.push([
        `status event to ${n} SSE readers (${delays.length} deliveries)`,
        `p50 ${percentile(delays, 50).toFixed(0)} ms, p99 ${percentile(delays, 99).toFixed(0)} ms, max ${delays.at(-1)!.toFixed(0)} ms`,
        '—',
      ]);
    } finally {
      for (const r of readers) r.close();
    }
    await waitOnline(env, 30_000);
  }
  return rows;
}
