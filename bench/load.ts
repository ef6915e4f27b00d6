// A small closed-loop load generator: `concurrency` workers each send requests back to back for
// `durationMs`, over keep-alive connections. Reports requests/s and latency percentiles.
import { Agent, request } from 'undici';
import { loopbackLookup } from '../test/e2e/harness.ts';

export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}


export async function load(
  url: string,
  opts: { concurrency: number; durationMs: number; headers?: Record<string, string>; maxRequests?: number; onProgress?: (done: number, elapsedMs: number) => void },
): Promise<LoadResult> {
  const dispatcher = new Agent({ connections: opts.concurrency, pipelining: 1, keepAliveTimeout: 30_000, connect: { lookup: loopbackLookup } as never });
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  const started = performance.now();
  const until = started + opts.durationMs;
  const worker = async () => {
    while (performance.now() < until && (opts.maxRequests === undefined || sent < opts.maxRequests)) {
      sent++;
      const t0 = performance.now();
      try {
        const res = await request(url, { dispatcher, headers: opts.headers });
        // Count, don't keep: a large body would otherwise be copied into one buffer.
        for await (const _ of res.body) void _;
        if (res.statusCode >= 400) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t0);
      opts.onProgress?.(latencies.length, performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  await dispatcher.close();
  latencies.sort((a, b) => a - b);
  return { requests: latencies.length, errors, rps: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}
