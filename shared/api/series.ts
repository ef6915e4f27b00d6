// What history keeps of a sample: its series (named numbers), the resolutions and their buckets,
// retention, and the sampling intervals. Free of zod, so the dashboard may import it as well as
// the agent (which buffers series while offline) and the hubs (which store and roll them up).
import type { MetricsSample } from './metrics.ts';

/**
 * A sample reduced to named numbers, the unit of history: `cpu` (total %), `cpu.<core>` (%),
 * `memory` (used %), `swap` (used %), `load1`/`load5`/`load15`, `disk` (the fullest mount's used %),
 * `disk:<mountpoint>` (%), `disk_read`/`disk_write` (bytes/s over every disk), `net_rx`/`net_tx`
 * (bytes/s over every interface but lo), `temperature` (the hottest sensor, °C), `gpu` (the busiest
 * GPU's %), `connections`, `processes`. A series a device cannot measure is absent, not zero.
 */
export type Series = Record<string, number>;

/** Values are kept to two decimals, as integers of hundredths, so sums are exact and a rollup of rollups equals the rollup of the raw points. */
export function quantize(v: number): number {
  return Math.round(v * 100);
}

export function seriesOf(s: MetricsSample): Series {
  const out: Series = { cpu: s.cpu.totalUsage, load1: s.cpu.loadAverage.one, load5: s.cpu.loadAverage.five, load15: s.cpu.loadAverage.fifteen };
  for (const c of s.cpu.cores) out[`cpu.${c.id}`] = c.usage;
  const m = s.memory;
  if (m.total > 0) out.memory = (100 * m.used) / m.total;
  if (m.swapTotal > 0) out.swap = (100 * m.swapUsed) / m.swapTotal;
  let fullest: number | undefined;
  for (const d of s.disk.mounts) {
    if (d.total <= 0) continue;
    const pct = (100 * d.used) / d.total;
    out[`disk:${d.mountpoint}`] = pct;
    fullest = fullest === undefined ? pct : Math.max(fullest, pct);
  }
  if (fullest !== undefined) out.disk = fullest;
  if (s.disk.io.some((d) => d.readRate !== undefined)) {
    out.disk_read = s.disk.io.reduce((a, d) => a + (d.readRate ?? 0), 0);
    out.disk_write = s.disk.io.reduce((a, d) => a + (d.writeRate ?? 0), 0);
  }
  const nics = s.network.interfaces.filter((i) => i.name !== 'lo');
  if (nics.length) {
    out.net_rx = nics.reduce((a, i) => a + i.rxRate, 0);
    out.net_tx = nics.reduce((a, i) => a + i.txRate, 0);
  }
  out.connections = s.network.connectionCount;
  out.processes = s.processes.total;
  if (s.temperature.sensors.length) out.temperature = Math.max(...s.temperature.sensors.map((t) => t.value));
  const busy = s.gpu.gpus.map((g) => g.utilization).filter((u): u is number => u !== undefined);
  if (busy.length) out.gpu = Math.max(...busy);
  for (const k of Object.keys(out)) out[k] = quantize(out[k]!) / 100;
  return out;
}

export const RESOLUTIONS = ['raw', '1m', '5m', '1h'] as const;
export type Resolution = (typeof RESOLUTIONS)[number];
/** Bucket width of each rollup in ms (raw points are as far apart as the samples). */
export const BUCKET_MS: Record<Exclude<Resolution, 'raw'>, number> = { '1m': 60_000, '5m': 300_000, '1h': 3_600_000 };
/** Default retention per resolution (ms), overridable with METRICS_RETENTION_<RAW|1M|5M|1H>_MS. */
export const DEFAULT_RETENTION_MS: Record<Resolution, number> = { raw: 3_600_000, '1m': 7 * 86_400_000, '5m': 30 * 86_400_000, '1h': 365 * 86_400_000 };
/** A history answer holds at most this many points; a longer range must use a coarser resolution. */
export const MAX_HISTORY_POINTS = 5_000;

/** Seconds between samples when nobody watches live (Tyto's refresh interval). */
export const DEFAULT_REFRESH_SECONDS = 5;
export const MIN_REFRESH_SECONDS = 1;
export const MAX_REFRESH_SECONDS = 3600;
/** While someone watches a device live (its page, a stream with agent_id), it samples this often. */
export const LIVE_INTERVAL_MS = 1000;

