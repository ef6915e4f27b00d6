// The metrics tests' rig: a stand-in sampler that takes a sample only when the test allows one (so
// a test knows exactly how many were taken), a valid sample to hand out, and a hub end that checks
// every message against the wire schema, records it, and says whether its socket is up.
import type { Sampler } from '../../../agent/metrics/index.ts';
import type { Watch } from '../../../agent/metrics/sampler.ts';
import type { MetricsSample } from '../../../shared/api/metrics.ts';
import { AgentMessageSchema } from '../../../shared/protocol/messages.ts';
import type { MetricsBacklog, MetricsMessage } from '../../../shared/protocol/metrics.ts';

export { quietLogger, waitFor } from '../tunnels/helpers.ts';

export function validSample(i: number): MetricsSample {
  return {
    timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    system: { hostname: 'pi', kernel: '6.6.31', uptime: 1000 + i, architecture: 'aarch64' },
    cpu: { cores: [{ id: 0, usage: i % 100, frequency: 1800 }], totalUsage: i % 100, loadAverage: { one: 0.5, five: 0.4, fifteen: 0.3 } },
    memory: { total: 4e9, used: 1e9, free: 2e9, available: 3e9, buffers: 1e8, cached: 5e8, swapTotal: 0, swapUsed: 0 },
    disk: { mounts: [{ device: '/dev/mmcblk0p2', mountpoint: '/', fstype: 'ext4', total: 3e10, used: 1e10, free: 2e10 }], io: [] },
    network: { interfaces: [], connectionCount: 3 },
    processes: { topByCpu: [], topByMemory: [], total: 120 },
    temperature: { sensors: [{ name: 'cpu_thermal', value: 50 }] },
    gpu: { available: false, gpus: [] },
    docker: { available: false, containers: [] },
    systemd: { available: false, services: [] },
  };
}

/** Takes a sample each time the test allows one; records the watched names and intervals it was given. */
export class GatedSampler implements Sampler {
  taken = 0;
  closed = false;
  watches: Watch[] = [];
  intervals: number[] = [];
  private permits = 0;
  private waiting: (() => void) | null = null;

  allow(n: number): void {
    this.permits += n;
    this.wake();
  }

  async sample(intervalMs: number): Promise<MetricsSample> {
    while (this.permits === 0) await new Promise<void>((r) => (this.waiting = r));
    this.permits--;
    this.intervals.push(intervalMs);
    return validSample(++this.taken);
  }

  setWatch(watch: Watch): void {
    this.watches.push(watch);
  }

  close(): void {
    this.closed = true;
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = null;
    w?.();
  }
}

type Sent = MetricsMessage | MetricsBacklog;

/** The hub end of one connection. */
export class FakeHub {
  readonly sent: Sent[] = [];
  up = true;
  send = (message: unknown): boolean => {
    if (!this.up) return false;
    const parsed = AgentMessageSchema.parse(message);
    if (parsed.t !== 'metrics' && parsed.t !== 'metrics_backlog') throw new Error(`unexpected ${parsed.t}`);
    this.sent.push(structuredClone(parsed));
    return true;
  };
  live(): MetricsMessage[] {
    return this.sent.filter((m): m is MetricsMessage => m.t === 'metrics');
  }
  chunks(): MetricsBacklog[] {
    return this.sent.filter((m): m is MetricsBacklog => m.t === 'metrics_backlog');
  }
  /** Every seq that reached this hub, in the order sent. */
  seqs(): number[] {
    return this.sent.flatMap((m) => (m.t === 'metrics' ? [m.seq] : m.points.map((p) => p.seq)));
  }
}
