// The fleet page's live figures: each device's recent CPU, memory and temperature, from the
// `event: metrics` the fleet stream already carries (one socket per tab, whatever the fleet size;
// every device at the relay's refresh interval), seeded for the first paint by one
// GET /api/v1/metrics/latest. Kept for the tab's life (not the page's), so coming back to the
// fleet shows the sparklines as they were. A signal per device: a sample redraws that device's
// cells only.
import { signal, type Signal } from '@preact/signals';
import type { LatestMetrics, MetricsEvent } from '../../../shared/api/metrics.ts';
import { get } from '../api.ts';
import { onStreamEvent } from '../fleet-stream.ts';

/** One sample's figures: when (ms), CPU total %, memory used %, the hottest sensor °C (absent when it has none). */
export interface FleetPoint {
  t: number;
  cpu: number;
  memory?: number;
  temperature?: number;
}

/** Samples kept per device: 5 minutes at the default refresh interval of 5 s. */
export const SPARK_POINTS = 60;

const devices = new Map<string, Signal<FleetPoint[]>>();

/** The device's recent points, oldest first (a signal: reading it in a component redraws that component when a sample comes). */
export function pointsOf(agentId: string): Signal<FleetPoint[]> {
  let s = devices.get(agentId);
  if (!s) devices.set(agentId, (s = signal([])));
  return s;
}

function pointOf(e: MetricsEvent): FleetPoint | undefined {
  const t = Date.parse(e.timestamp);
  if (!Number.isFinite(t)) return undefined;
  const m = e.memory;
  const sensors = e.temperature?.sensors ?? [];
  return {
    t,
    cpu: e.cpu.totalUsage,
    memory: m.total > 0 ? (100 * m.used) / m.total : undefined,
    temperature: sensors.length ? Math.max(...sensors.map((s) => s.value)) : undefined,
  };
}

function add(e: MetricsEvent) {
  const p = pointOf(e);
  if (!p) return;
  const s = pointsOf(e.agent_id);
  const old = s.value;
  const last = old[old.length - 1];
  // The latest sample read for the first paint may also come by the stream; each sample once, in order.
  if (last && p.t <= last.t) return;
  s.value = old.length >= SPARK_POINTS ? [...old.slice(old.length - SPARK_POINTS + 1), p] : [...old, p];
}

let subscribed = false;

/** Follows the stream's metrics (once per tab) and reads each device's latest sample; a failed read leaves the cells empty until the stream fills them. */
export async function followFleetMetrics(signal?: AbortSignal): Promise<void> {
  if (!subscribed) {
    subscribed = true;
    onStreamEvent('metrics', add);
  }
  try {
    const r = await get<LatestMetrics>('/api/v1/metrics/latest', { signal });
    for (const e of r.metrics) add(e);
  } catch (e) {
    if ((e as Error).name === 'AbortError') return;
  }
}
