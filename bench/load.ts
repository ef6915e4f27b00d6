// Load for the benchmarks: closed-loop, `concurrency` connections each sending requests back to
// back for `durationMs` over keep-alive. With wrk installed (Debian package `wrk`) timed runs use
// it: in C it leaves the 2 cores to the relay and agent, where a Node generator takes a third of
// one. Runs that need a request count or progress (and machines without wrk) use undici here.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { loopbackLookup } from '../test/e2e/harness.ts';

/** Whether a command is on PATH (it ran at all; some, like `wrk --version`, exit 1 when they do). */
export function onPath(command: string): boolean {
  try {
    execFileSync(command, ['--version'], { stdio: 'ignore' });
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** The generator timed runs use: wrk when it is on PATH (PIRELAY_BENCH_LOADGEN=undici forces ours). */
export const LOADGEN: 'wrk' | 'undici' = process.env.PIRELAY_BENCH_LOADGEN !== 'undici' && onPath('wrk') ? 'wrk' : 'undici';

/** wrk's latency figures ("812.00us", "1.20ms", "2.01s") in ms. */
function wrkMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

/** One timed run with wrk. `*.localhost` URLs go to 127.0.0.1 with the Host header kept. */
async function wrkLoad(url: string, opts: { concurrency: number; durationMs: number; headers?: Record<string, string> }): Promise<LoadResult> {
  const u = new URL(url);
  const args = ['-t', opts.concurrency > 1 ? '2' : '1', '-c', String(opts.concurrency), '-d', `${Math.max(1, Math.round(opts.durationMs / 1000))}s`, '--latency', '--timeout', '10s'];
  if (u.hostname.endsWith('.localhost')) {
    args.push('-H', `Host: ${u.host}`);
    u.hostname = '127.0.0.1';
  }
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  const { stdout } = await promisify(execFile)('wrk', [...args, u.toString()], { encoding: 'utf8' });
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? NaN);
  const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0) + [...stdout.matchAll(/(?:connect|read|write|timeout) (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  return {
    requests,
    errors,
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN),
    p50: wrkMs(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? ''),
    p99: wrkMs(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? ''),
  };
}

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
  if (LOADGEN === 'wrk' && opts.maxRequests === undefined && !opts.onProgress) return wrkLoad(url, opts);
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
