// The sample's gpu part, from whichever of three sources the machine has. AMD: amdgpu's sysfs files
// under /sys/class/drm/cardN/device (gpu_busy_percent, mem_info_vram_used/_total, its hwmon's
// temp1_input), read per sample from files kept open. NVIDIA: `nvidia-smi --query-gpu`, only when
// it is on PATH, and as a process spawn costs tens of ms it runs every NVIDIA_EVERY_MS, not per
// sample. A Raspberry Pi: the firmware's GPU temperature through `vcgencmd measure_temp` (the
// system reader's GpuTempReader, agent/system/thermal.ts) every VCGENCMD_EVERY_MS. None of them:
// `available: false`.
import type { MetricsSample } from '../../shared/api/metrics.ts';
import { SAMPLE_LIMITS } from '../../shared/api/metrics.ts';
import type { RunCommand } from '../system/command.ts';
import { GpuTempReader } from '../system/thermal.ts';
import { Periodic } from './periodic.ts';
import { listNames, ProcFile } from './proc-file.ts';
import { celsius, DISCOVER_EVERY_MS } from './sensors.ts';

export const NVIDIA_EVERY_MS = 30_000;
export const VCGENCMD_EVERY_MS = 60_000;

type Gpu = MetricsSample['gpu']['gpus'][number];

const NVIDIA_QUERY = ['--query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw', '--format=csv,noheader,nounits'];

/** One line per GPU: `0, NVIDIA GeForce RTX 3080, 12, 1024, 10240, 45, 110.50` (MiB, °C, W; `[N/A]` where unknown). */
export function parseNvidiaSmi(text: string): Gpu[] {
  const gpus: Gpu[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(',').map((s) => s.trim());
    if (f.length < 7) continue;
    const num = (s: string | undefined) => (s !== undefined && s !== '' && Number.isFinite(Number(s)) ? Number(s) : undefined);
    const index = num(f[0]);
    if (index === undefined || !Number.isInteger(index) || index < 0 || index > 64) continue;
    const utilization = num(f[2]);
    const used = num(f[3]);
    const total = num(f[4]);
    const temperature = num(f[5]);
    const power = num(f[6]);
    gpus.push({
      index,
      name: (f[1] ?? '').slice(0, 256),
      vendor: 'nvidia',
      ...(utilization !== undefined && utilization >= 0 && utilization <= 100 ? { utilization } : {}),
      ...(used !== undefined && used >= 0 ? { memoryUsed: Math.round(used * 1024 * 1024) } : {}),
      ...(total !== undefined && total >= 0 ? { memoryTotal: Math.round(total * 1024 * 1024) } : {}),
      ...(temperature !== undefined && temperature >= -100 && temperature <= 250 ? { temperature } : {}),
      ...(power !== undefined && power >= 0 && power <= 1e5 ? { powerWatts: power } : {}),
    });
  }
  return gpus.slice(0, SAMPLE_LIMITS.gpus);
}

interface AmdCard {
  card: string;
  busy: ProcFile;
  used: ProcFile;
  total: ProcFile;
  temp: ProcFile | null;
}


function discoverAmd(root: string): AmdCard[] {
  const cards: AmdCard[] = [];
  for (const card of listNames(root, '/sys/class/drm').filter((n) => /^card\d+$/.test(n)).sort()) {
    const dev = `/sys/class/drm/${card}/device`;
    if (!listNames(root, dev).includes('gpu_busy_percent')) continue;
    const hwmon = listNames(root, `${dev}/hwmon`).find((n) => /^hwmon\d+$/.test(n));
    cards.push({
      card,
      busy: new ProcFile(root, `${dev}/gpu_busy_percent`),
      used: new ProcFile(root, `${dev}/mem_info_vram_used`),
      total: new ProcFile(root, `${dev}/mem_info_vram_total`),
      temp: hwmon ? new ProcFile(root, `${dev}/hwmon/${hwmon}/temp1_input`) : null,
    });
  }
  return cards;
}

export interface GpuReaderOptions {
  root: string;
  now: () => number;
  runCommand: RunCommand;
  /** nvidia-smi's path, or null for none; default looked up on PATH (only for root '/'). */
  nvidiaSmi?: string | null;
}

export class GpuReader {
  private amd: AmdCard[] = [];
  private amdAt = Number.NEGATIVE_INFINITY;
  private readonly nvidia: Periodic<Gpu[]> | null;
  private readonly vcgencmd: GpuTempReader;

  constructor(private readonly options: GpuReaderOptions) {
    const smi = options.nvidiaSmi !== undefined ? options.nvidiaSmi : options.root === '/' ? Bun.which('nvidia-smi') : null;
    this.nvidia = smi ? new Periodic(async () => parseNvidiaSmi(await options.runCommand([smi, ...NVIDIA_QUERY])), NVIDIA_EVERY_MS, options.now, []) : null;
    this.vcgencmd = new GpuTempReader({ root: options.root, runCommand: options.runCommand, now: options.now, maxAgeMs: VCGENCMD_EVERY_MS });
  }

  async read(): Promise<MetricsSample['gpu']> {
    const [nvidia, piTemp] = await Promise.all([this.nvidia?.get() ?? [], this.vcgencmd.read()]);
    const gpus: Gpu[] = [...nvidia];
    for (const card of this.amdCards()) {
      const busy = Number(card.busy.read()?.trim() ?? Number.NaN);
      const used = Number(card.used.read()?.trim() ?? Number.NaN);
      const total = Number(card.total.read()?.trim() ?? Number.NaN);
      const temperature = card.temp ? celsius(card.temp.read()) : undefined;
      gpus.push({
        index: gpus.length,
        name: `amdgpu ${card.card}`,
        vendor: 'amd',
        ...(Number.isFinite(busy) && busy >= 0 && busy <= 100 ? { utilization: busy } : {}),
        ...(Number.isSafeInteger(used) && used >= 0 ? { memoryUsed: used } : {}),
        ...(Number.isSafeInteger(total) && total >= 0 ? { memoryTotal: total } : {}),
        ...(temperature !== undefined ? { temperature } : {}),
      });
    }
    if (piTemp !== null && piTemp >= -100 && piTemp <= 250) gpus.push({ index: gpus.length, name: 'VideoCore', vendor: 'broadcom', temperature: piTemp });
    const bounded = gpus.slice(0, SAMPLE_LIMITS.gpus);
    return { available: bounded.length > 0, gpus: bounded };
  }

  close(): void {
    for (const c of this.amd) for (const f of [c.busy, c.used, c.total, c.temp]) f?.close();
  }

  private amdCards(): AmdCard[] {
    if (this.options.now() - this.amdAt >= DISCOVER_EVERY_MS) {
      this.close();
      this.amd = discoverAmd(this.options.root);
      this.amdAt = this.options.now();
    }
    return this.amd;
  }
}
