// Memory figures for device_info from /proc/meminfo. "Used" is total minus MemAvailable, the
// kernel's own estimate of what can be handed out without swapping, so used_percent agrees with
// psutil's virtual_memory().percent (PiTunnel's mem_used_percent) and with `free`'s available column.
import type { DeviceInfo } from '../../shared/api/device-info.ts';
import { readText, round } from './proc.ts';

/** All values in bytes. */
export interface Meminfo {
  total: number;
  free: number;
  available: number;
  buffers: number;
  cached: number;
  swapTotal: number;
  swapFree: number;
}

/** The lines used, matched by one regular expression rather than a map of every line: the metrics sampler parses meminfo every second. */
const MEMINFO_LINE = /^(MemTotal|MemFree|MemAvailable|Buffers|Cached|SwapTotal|SwapFree):[ \t]*(\d+)(?: kB)?[ \t]*$/gm;

/** meminfo reports kB (really KiB); a missing or garbled field reads as 0. */
export function parseMeminfo(text: string): Meminfo {
  const fields = new Map<string, number>();
  for (const [, key, value] of text.matchAll(MEMINFO_LINE)) {
    const n = Number(value);
    if (key && !fields.has(key) && Number.isSafeInteger(n)) fields.set(key, n * 1024);
  }
  const kib = (key: string): number | null => fields.get(key) ?? null;
  const total = kib('MemTotal') ?? 0;
  const free = kib('MemFree') ?? 0;
  const buffers = kib('Buffers') ?? 0;
  const cached = kib('Cached') ?? 0;
  // Kernels before 3.14 have no MemAvailable; free + page cache is the classic approximation.
  const available = Math.min(total, kib('MemAvailable') ?? free + buffers + cached);
  const swapTotal = kib('SwapTotal') ?? 0;
  const swapFree = Math.min(swapTotal, kib('SwapFree') ?? swapTotal);
  return { total, free, available, buffers, cached, swapTotal, swapFree };
}

export async function readMeminfo(root: string): Promise<Meminfo> {
  return parseMeminfo((await readText(root, '/proc/meminfo')) ?? '');
}

export function memoryReport(m: Meminfo): DeviceInfo['memory'] {
  const used = m.total - m.available;
  return {
    total: m.total,
    available: m.available,
    used,
    used_percent: m.total > 0 ? round((used / m.total) * 100, 1) : 0,
    swap_total: m.swapTotal,
    swap_used: m.swapTotal - m.swapFree,
  };
}
