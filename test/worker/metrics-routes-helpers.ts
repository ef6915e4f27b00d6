// Test helpers for the metrics routes: a sample in Tyto's structure, and a fake agent (kvm-helpers'
// on a real DeviceHub socket, heartbeats included) that sends `metrics` samples and
// `metrics_backlog` points to the real hub and waits for each one's `metrics_ack`, keeping the
// `metrics_config` messages the hub sends it. A CSV reader (RFC 4180) to check exports with.
import { waitFor } from './device-helpers.ts';
import { kvmDevice } from './kvm-helpers.ts';
import type { MetricsSample } from '../../shared/api/metrics.ts';
import type { BacklogPoint, MetricsConfig } from '../../shared/protocol/metrics.ts';

type Mount = MetricsSample['disk']['mounts'][number];

export const mount = (mountpoint: string, totalKiB: number, usedKiB: number, freeKiB: number, device = `/dev/${mountpoint.length}`): Mount => ({
  device,
  mountpoint,
  fstype: 'ext4',
  total: totalKiB * 1024,
  used: usedKiB * 1024,
  free: freeKiB * 1024,
});

/** A sample at `timestamp` with a CPU total of `cpu` %, two cores, / and /home, a CPU sensor at 54.8 °C. */
export function sample(over: { timestamp?: number; cpu?: number; mounts?: Mount[]; model?: string; cores?: number; memory?: Partial<MetricsSample['memory']> } = {}): MetricsSample {
  const cpu = over.cpu ?? 10.8;
  return {
    timestamp: new Date(over.timestamp ?? Date.now()).toISOString(),
    system: { hostname: 'morpheus-prod', kernel: '5.15.0-84-generic', uptime: 86_400, architecture: 'x86_64' },
    cpu: {
      model: over.model ?? 'Intel(R) Core(TM) i7-10510U CPU @ 1.80GHz',
      cores: Array.from({ length: over.cores ?? 2 }, (_, id) => ({ id, usage: cpu, frequency: 1800 })),
      totalUsage: cpu,
      loadAverage: { one: 1.23, five: 1.45, fifteen: 1.18 },
    },
    memory: { total: 16_023_304 * 1024, used: 9_000_000 * 1024, free: 1_000_000 * 1024, available: 6_043_860 * 1024, buffers: 0, cached: 0, swapTotal: 0, swapUsed: 0, ...over.memory },
    disk: {
      mounts: over.mounts ?? [mount('/', 248_617_984, 48_326_376, 187_589_708, '/dev/sda1'), mount('/home', 239_198_852, 123_423_528, 103_551_888, '/dev/sda2')],
      io: [{ device: 'sda', readBytes: 1000, writeBytes: 500, readRate: 10, writeRate: 5 }],
    },
    network: { interfaces: [{ name: 'eth0', ipv4: '192.168.1.100', rxBytes: 1000, txBytes: 500, rxRate: 100, txRate: 50 }], connectionCount: 42 },
    processes: { topByCpu: [{ pid: 1234, name: 'nginx', cpu: 5, memory: 50_000_000 }], topByMemory: [], total: 200 },
    temperature: { sensors: [{ name: 'cpu-thermal', value: 54.8, high: 80, critical: 100 }] },
    gpu: { available: false, gpus: [] },
    docker: { available: false, containers: [] },
    systemd: { available: false, services: [] },
  };
}

/** An approved device of TEST_TEAM whose fake agent sends samples (`send`) and backlog points (`backlog`), each resolving once the hub acknowledged it. */
export async function metricsDevice(adminKey: string) {
  const dev = await kvmDevice(adminKey, { capabilities: ['tunnels', 'metrics'] });
  const acks: { boot: string; seq: number }[] = [];
  const configs: MetricsConfig[] = [];
  dev.agent.ws.addEventListener('message', (e) => {
    if (typeof e.data !== 'string') return;
    const m = JSON.parse(e.data) as { t: string; boot: string; seq: number };
    if (m.t === 'metrics_ack') acks.push({ boot: m.boot, seq: m.seq });
    if (m.t === 'metrics_config') configs.push(m as unknown as MetricsConfig);
  });
  const boot = `boot-${crypto.randomUUID().slice(0, 8)}`;
  let seq = 0;
  const acked = (n: number) => waitFor(() => acks.some((a) => a.boot === boot && a.seq >= n), `the ack of seq ${n}`);
  /** Sends one sample (one at a time: the test pool may reorder back-to-back messages) and waits for its ack. */
  const send = async (s: MetricsSample = sample()) => {
    const n = ++seq;
    dev.agent.ws.send(JSON.stringify({ t: 'metrics', boot, seq: n, sample: s }));
    await acked(n);
  };
  /** Sends points as backlog chunks of at most 200, waiting for each chunk's ack. */
  const backlog = async (points: { timestamp: number; series: Record<string, number> }[]) => {
    for (let i = 0; i < points.length; i += 200) {
      const chunk: BacklogPoint[] = points.slice(i, i + 200).map((p) => ({ seq: ++seq, timestamp: new Date(p.timestamp).toISOString(), series: p.series }));
      dev.agent.ws.send(JSON.stringify({ t: 'metrics_backlog', boot, points: chunk }));
      await acked(seq);
    }
  };
  return { ...dev, send, backlog, configs, acks };
}

/** RFC 4180: fields separated by commas, records by CRLF, a quoted field may hold commas, CRLF and doubled quotes. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += ch;
  }
  if (field !== '' || row.length) rows.push([...row, field]);
  return rows;
}
