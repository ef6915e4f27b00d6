// The sample's cpu part: per-core usage from the deltas of /proc/stat's cpuN lines between two
// samples (the system reader's column rules, agent/system/cpu.ts), each core's frequency, the
// model and the load average. Frequency comes from cpufreq's scaling_cur_freq (kHz), one file per
// core kept open; a machine without cpufreq (most VMs) has cpuinfo's "cpu MHz", which is a large
// file to format, so it is read at most every CPUINFO_EVERY_MS; with neither, 0. The kernel
// recomputes the load average every 5 s (LOAD_FREQ), so /proc/loadavg is read as often.
import { parseColonFields } from '../system/proc.ts';
import { parseCoreTimes, type CoreTimes } from '../system/cpu.ts';
import { ProcFile, readOnce } from './proc-file.ts';
import type { MetricsSample } from '../../shared/api/metrics.ts';
import { SAMPLE_LIMITS } from '../../shared/api/metrics.ts';

export const CPUINFO_EVERY_MS = 10_000;
export const LOADAVG_EVERY_MS = 5_000;

type Cpu = MetricsSample['cpu'];

/** Usage % of the jiffies between two readings, 0–100 with one decimal; 0 when none elapsed. */
export function busyPercent(prev: { total: number; idle: number } | undefined, next: { total: number; idle: number }): number {
  const total = next.total - (prev?.total ?? 0);
  const idle = next.idle - (prev?.idle ?? 0);
  if (total <= 0) return 0;
  return Math.round(Math.min(100, Math.max(0, ((total - idle) / total) * 100)) * 10) / 10;
}

/** cpuinfo's "cpu MHz" per processor number (x86); empty where the kernel does not say. */
export function parseCpuinfoMhz(text: string): Map<number, number> {
  const mhz = new Map<number, number>();
  let processor: number | null = null;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === 'processor') processor = Number(value);
    else if (key === 'cpu MHz' && processor !== null && Number.isFinite(Number(value))) mhz.set(processor, Number(value));
  }
  return mhz;
}

/** The CPU's model: x86's and newer ARM kernels' "model name", older ARM's "Processor", else the SoC ("Hardware"). */
export function cpuModel(cpuinfo: string): string | undefined {
  const fields = parseColonFields(cpuinfo);
  const model = fields.get('model name') || fields.get('Processor') || fields.get('Hardware');
  return model ? model.slice(0, 256) : undefined;
}

/** /proc/loadavg's three averages; zeros when unreadable. */
export function parseLoadavg(text: string | null): Cpu['loadAverage'] {
  const [one, five, fifteen] = (text ?? '').trim().split(/\s+/).map(Number);
  const ok = (n: number | undefined) => (n !== undefined && Number.isFinite(n) && n >= 0 ? n : 0);
  return { one: ok(one), five: ok(five), fifteen: ok(fifteen) };
}

export class CpuReader {
  private readonly stat: ProcFile;
  private readonly loadavg: ProcFile;
  private prevAll: { total: number; idle: number } | undefined;
  private prevCores = new Map<number, CoreTimes>();
  private readonly model: string | undefined;
  private readonly freqFiles = new Map<number, ProcFile>();
  private cpuinfoMhz = new Map<number, number>();
  private cpuinfoAt = Number.NEGATIVE_INFINITY;
  private load: Cpu['loadAverage'] = { one: 0, five: 0, fifteen: 0 };
  private loadAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly root: string,
    private readonly now: () => number,
  ) {
    this.stat = new ProcFile(root, '/proc/stat');
    this.loadavg = new ProcFile(root, '/proc/loadavg');
    this.model = cpuModel(readOnce(root, '/proc/cpuinfo') ?? '');
  }

  read(): Cpu {
    const { all, cores } = parseCoreTimes(this.stat.read('\nintr ') ?? '');
    const out: Cpu['cores'] = [];
    for (const core of cores.slice(0, SAMPLE_LIMITS.cores)) {
      out.push({ id: core.id, usage: busyPercent(this.prevCores.get(core.id), core), frequency: this.frequency(core.id) });
      this.prevCores.set(core.id, core);
    }
    const totalUsage = all ? busyPercent(this.prevAll, all) : 0;
    if (all) this.prevAll = all;
    if (this.now() - this.loadAt >= LOADAVG_EVERY_MS) {
      this.loadAt = this.now();
      this.load = parseLoadavg(this.loadavg.read());
    }
    return { ...(this.model ? { model: this.model } : {}), cores: out, totalUsage, loadAverage: this.load };
  }

  close(): void {
    this.stat.close();
    this.loadavg.close();
    for (const f of this.freqFiles.values()) f.close();
  }

  /** MHz, whole. */
  private frequency(id: number): number {
    let file = this.freqFiles.get(id);
    if (file === undefined) {
      file = new ProcFile(this.root, `/sys/devices/system/cpu/cpu${id}/cpufreq/scaling_cur_freq`);
      this.freqFiles.set(id, file);
    }
    const khz = Number(file.read()?.trim() ?? Number.NaN);
    if (Number.isFinite(khz) && khz > 0) return Math.min(1e5, Math.round(khz / 1000));
    if (this.now() - this.cpuinfoAt >= CPUINFO_EVERY_MS) {
      this.cpuinfoAt = this.now();
      this.cpuinfoMhz = parseCpuinfoMhz(readOnce(this.root, '/proc/cpuinfo') ?? '');
    }
    const mhz = this.cpuinfoMhz.get(id) ?? 0;
    return Math.min(1e5, Math.max(0, Math.round(mhz)));
  }
}
