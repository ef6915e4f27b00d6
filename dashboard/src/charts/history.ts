// What the Metrics tab draws, as columns: the history the relay answered (GET /api/v1/history:
// one point per bucket, each series' avg/min/max) followed by the live samples that came after
// its last point (reduced to series with shared/api/series.ts's seriesOf, as the hub stores them).
// The zoom picks its resolution so an answer stays under MAX_HISTORY_POINTS.
import type { HistoryPoint, HistoryResponse } from '../../../shared/api/metrics.ts';
import { MAX_HISTORY_POINTS, type Resolution, type Series } from '../../../shared/api/series.ts';
import type { ChartTable } from './chart.tsx';

export interface Zoom {
  id: string;
  label: string;
  ms: number;
  resolution: Resolution;
  /** A coarser resolution to ask for when the relay says the finer one holds too many points. */
  fallback?: Resolution;
  /** Live samples are added to this view as they come. */
  live?: boolean;
}

/** 1 h of raw points is 3,600 at the live interval, under MAX_HISTORY_POINTS; the others are one bucket per 1 m (1,440), 5 m (2,016) or 1 h (720). */
export const ZOOMS: Zoom[] = [
  { id: '1h', label: '1 hour', ms: 3_600_000, resolution: 'raw', fallback: '1m', live: true },
  { id: '24h', label: '24 hours', ms: 86_400_000, resolution: '1m' },
  { id: '7d', label: '7 days', ms: 7 * 86_400_000, resolution: '5m' },
  { id: '30d', label: '30 days', ms: 30 * 86_400_000, resolution: '1h' },
];

/** A live sample: when it was taken (ms) and its series. */
export interface LivePoint {
  t: number;
  series: Series;
}

/** Live points kept for the live view: an hour at the live interval, with room for a late burst. */
export const MAX_LIVE_POINTS = MAX_HISTORY_POINTS;

type Stat = { avg: number; min: number; max: number };

/** The history answer's points and the live points after them, as one table; min/max only for buckets. */
export function tableOf(history: HistoryResponse | undefined, live: LivePoint[], fromMs: number): ChartTable {
  const points = (history?.data ?? []) as HistoryPoint[];
  const banded = !!history && history.resolution !== 'raw';
  const lastHistory = points.length ? Date.parse(points[points.length - 1]!.timestamp) : -Infinity;
  const after = live.filter((p) => p.t > lastHistory && p.t >= fromMs);
  const n = points.length + after.length;
  const x = new Array<number>(n);
  const avg = new Map<string, (number | null)[]>();
  const min = banded ? new Map<string, (number | null)[]>() : undefined;
  const max = banded ? new Map<string, (number | null)[]>() : undefined;
  const column = (m: Map<string, (number | null)[]>, key: string) => {
    let c = m.get(key);
    if (!c) m.set(key, (c = new Array<number | null>(n).fill(null)));
    return c;
  };
  points.forEach((p, i) => {
    x[i] = Date.parse(p.timestamp) / 1000;
    for (const [key, v] of Object.entries(p)) {
      if (key === 'timestamp' || typeof v !== 'object' || v === null) continue;
      const s = v as Stat;
      column(avg, key)[i] = s.avg;
      if (min && max) {
        column(min, key)[i] = s.min;
        column(max, key)[i] = s.max;
      }
    }
  });
  after.forEach((p, j) => {
    const i = points.length + j;
    x[i] = p.t / 1000;
    for (const [key, v] of Object.entries(p.series)) {
      column(avg, key)[i] = v;
      if (min && max) {
        column(min, key)[i] = v;
        column(max, key)[i] = v;
      }
    }
  });
  return { x, avg, min, max };
}

/** Whether the series has any value in the table. */
export const has = (t: ChartTable, key: string) => t.avg.get(key)?.some((v) => v !== null) ?? false;
