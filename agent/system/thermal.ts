// CPU and GPU temperatures for device_info. The CPU's comes from the kernel's thermal zones; the
// GPU's only from the Raspberry Pi firmware via `vcgencmd measure_temp`, which costs a process
// spawn (tens of ms on a Pi), so it is cached and refreshed in the background instead of being
// awaited on every call.
import type { RunCommand } from './command.ts';
import { isFile, listDir, readLine, readText } from './proc.ts';

/** Zone types that measure the CPU package, best first: Raspberry Pi's SoC sensor, then Intel's. */
const PREFERRED_ZONES = ['cpu-thermal', 'cpu_thermal', 'x86_pkg_temp'];

/** The `temp` file of the zone to report: a preferred type if present, else the first zone. */
export async function findCpuThermalZone(root: string): Promise<string | null> {
  const names = (await listDir(root, '/sys/class/thermal'))
    .filter((n) => /^thermal_zone\d+$/.test(n))
    .sort((a, b) => Number(a.slice(12)) - Number(b.slice(12)));
  const types = await Promise.all(
    names.map((n) => readLine(root, `/sys/class/thermal/${n}/type`)),
  );
  for (const preferred of PREFERRED_ZONES) {
    const i = types.indexOf(preferred);
    if (i >= 0) return `/sys/class/thermal/${names[i]}/temp`;
  }
  return names[0] === undefined ? null : `/sys/class/thermal/${names[0]}/temp`;
}

/** Millidegrees → °C, unrounded (PiTunnel reports 54.768); null if missing or garbled. */
export async function readCpuTemp(root: string, tempPath: string | null): Promise<number | null> {
  if (tempPath === null) return null;
  const text = (await readText(root, tempPath))?.trim();
  if (!text || !/^-?\d+$/.test(text)) return null;
  return Number(text) / 1000;
}

/** Parses `temp=55.3'C`. */
export function parseVcgencmdTemp(output: string): number | null {
  const match = /temp=(-?\d+(?:\.\d+)?)'C/.exec(output);
  return match ? Number(match[1]) : null;
}

const VCGENCMD_PATHS = ['/usr/bin/vcgencmd', '/opt/vc/bin/vcgencmd', '/usr/local/bin/vcgencmd', '/bin/vcgencmd'];

export async function findVcgencmd(root: string): Promise<string | null> {
  for (const path of VCGENCMD_PATHS) {
    if (await isFile(root, path)) return path;
  }
  return null;
}

export interface GpuTempOptions {
  root: string;
  runCommand: RunCommand;
  /** A reading younger than this is returned as is; an older one is returned and refreshed. */
  maxAgeMs?: number;
  now?: () => number;
}

export class GpuTempReader {
  private binary: Promise<string | null> | null = null;
  private value: number | null = null;
  private readAt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<number | null> | null = null;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(private readonly options: GpuTempOptions) {
    this.maxAgeMs = options.maxAgeMs ?? 5_000;
    this.now = options.now ?? (() => performance.now());
  }

  /**
   * Only the first call waits for vcgencmd; after that the cached reading is returned at once and
   * a stale one is refreshed in the background. Null where there is no vcgencmd or it fails.
   */
  read(): Promise<number | null> {
    if (this.readAt === Number.NEGATIVE_INFINITY) return this.refresh();
    if (this.now() - this.readAt >= this.maxAgeMs) this.refresh().catch(() => {});
    return Promise.resolve(this.value);
  }

  /** Starts a refresh if the reading is stale; for the agent's periodic tick. */
  tick(): void {
    if (this.now() - this.readAt >= this.maxAgeMs) this.refresh().catch(() => {});
  }

  private refresh(): Promise<number | null> {
    this.inflight ??= this.measure()
      .then((value) => {
        this.value = value;
        this.readAt = this.now();
        return value;
      })
      .finally(() => {
        this.inflight = null;
      });
    return this.inflight;
  }

  private async measure(): Promise<number | null> {
    // Looked up once: whether the firmware tools are installed does not change while we run.
    this.binary ??= findVcgencmd(this.options.root);
    const binary = await this.binary;
    if (binary === null) return null;
    try {
      return parseVcgencmdTemp(await this.options.runCommand([binary, 'measure_temp']));
    } catch {
      return null;
    }
  }
}
