// How the charts and the fleet page write a metric's value for people: the unit each series is in
// (shared/api/series.ts: percent, bytes per second, °C, plain counts) decides its format, so an
// axis, a caption and a fleet cell say the same thing the same way.
import { formatBytes } from '../../../shared/bytes.ts';

export type Unit = 'percent' | 'rate' | 'celsius' | 'count';

export const formatPercent = (v: number) => `${v.toFixed(v >= 10 || v === 0 ? 0 : 1)} %`;
export const formatRate = (v: number) => `${formatBytes(Math.round(v))}/s`;
export const formatCelsius = (v: number) => `${v.toFixed(1)} °C`;
export const formatCount = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(2));

const FORMATS: Record<Unit, (v: number) => string> = { percent: formatPercent, rate: formatRate, celsius: formatCelsius, count: formatCount };

/** `v` in `unit`, or "—" when there is no value. */
export function formatValue(unit: Unit, v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '—' : FORMATS[unit](v);
}

/** An axis tick: shorter than a caption's value (no decimals on a rate's axis). */
export function formatTick(unit: Unit, v: number): string {
  if (unit === 'percent') return `${Math.round(v)} %`;
  if (unit === 'celsius') return `${Math.round(v)} °C`;
  return formatValue(unit, v);
}
