// The sample's temperature part: hwmon chips (/sys/class/hwmon/hwmonN: tempK_input in m°C, with
// tempK_label, tempK_max → high, tempK_crit → critical) and thermal zones
// (/sys/class/thermal/thermal_zoneN: temp, its `critical` trip point → critical, its `hot` or else
// `passive` one → high). Which sensors exist, their names and limits are read every
// DISCOVER_EVERY_MS; a sample reads only each sensor's input, from a file kept open. A zone that a
// hwmon chip already reports under the same name (a Pi's cpu_thermal is both) is left out, and a
// reading outside what a sensor can mean (a disconnected probe's -273 or 1000 °C) is dropped.
import type { MetricsSample } from '../../shared/api/metrics.ts';
import { SAMPLE_LIMITS } from '../../shared/api/metrics.ts';
import { listNames, ProcFile, readOnce } from './proc-file.ts';

export const DISCOVER_EVERY_MS = 60_000;

type Sensor = MetricsSample['temperature']['sensors'][number];

interface Found {
  name: string;
  input: ProcFile;
  high?: number;
  critical?: number;
}

/** m°C text → °C within the schema's range, or undefined. */
export function celsius(text: string | null): number | undefined {
  const trimmed = text?.trim();
  if (!trimmed || !/^-?\d+$/.test(trimmed)) return undefined;
  const c = Number(trimmed) / 1000;
  return c >= -100 && c <= 250 ? c : undefined;
}


const line = (root: string, path: string) => readOnce(root, path)?.trim() || undefined;
const byNumber = (prefix: string) => (a: string, b: string) => Number(a.slice(prefix.length)) - Number(b.slice(prefix.length));
const sameName = (s: string) => s.toLowerCase().replace(/-/g, '_');

/** Every sensor under root, with its fixed limits (inputs opened, not yet read). */
export function discoverSensors(root: string): Found[] {
  const found: Found[] = [];
  const chips = new Set<string>();
  for (const hw of listNames(root, '/sys/class/hwmon').filter((n) => /^hwmon\d+$/.test(n)).sort(byNumber('hwmon'))) {
    const dir = `/sys/class/hwmon/${hw}`;
    const chip = line(root, `${dir}/name`) ?? hw;
    chips.add(sameName(chip));
    const inputs = listNames(root, dir).filter((n) => /^temp\d+_input$/.test(n)).sort(byNumber('temp'));
    for (const input of inputs) {
      const k = input.slice(0, -'_input'.length);
      const label = line(root, `${dir}/${k}_label`);
      const name = label ? `${chip} ${label}` : inputs.length === 1 ? chip : `${chip} ${k}`;
      const high = celsius(readOnce(root, `${dir}/${k}_max`));
      const critical = celsius(readOnce(root, `${dir}/${k}_crit`));
      found.push({ name: name.slice(0, 256), input: new ProcFile(root, `${dir}/${input}`), ...(high !== undefined ? { high } : {}), ...(critical !== undefined ? { critical } : {}) });
    }
  }
  for (const zone of listNames(root, '/sys/class/thermal').filter((n) => /^thermal_zone\d+$/.test(n)).sort(byNumber('thermal_zone'))) {
    const dir = `/sys/class/thermal/${zone}`;
    const type = line(root, `${dir}/type`) ?? zone;
    if (chips.has(sameName(type))) continue;
    const trips = new Map<string, number>();
    for (const f of listNames(root, dir)) {
      const m = /^trip_point_(\d+)_type$/.exec(f);
      const kind = m ? line(root, `${dir}/${f}`) : undefined;
      const temp = m ? celsius(readOnce(root, `${dir}/trip_point_${m[1]}_temp`)) : undefined;
      if (kind && temp !== undefined && !trips.has(kind)) trips.set(kind, temp);
    }
    const high = trips.get('hot') ?? trips.get('passive');
    const critical = trips.get('critical');
    found.push({ name: type.slice(0, 256), input: new ProcFile(root, `${dir}/temp`), ...(high !== undefined ? { high } : {}), ...(critical !== undefined ? { critical } : {}) });
  }
  return found.slice(0, SAMPLE_LIMITS.sensors);
}

export class SensorReader {
  private found: Found[] = [];
  private foundAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly root: string,
    private readonly now: () => number,
  ) {}

  read(): Sensor[] {
    if (this.now() - this.foundAt >= DISCOVER_EVERY_MS) {
      this.close();
      this.found = discoverSensors(this.root);
      this.foundAt = this.now();
    }
    const out: Sensor[] = [];
    for (const s of this.found) {
      const value = celsius(s.input.read());
      if (value === undefined) continue;
      out.push({ name: s.name, value, ...(s.high !== undefined ? { high: s.high } : {}), ...(s.critical !== undefined ? { critical: s.critical } : {}) });
    }
    return out;
  }

  close(): void {
    for (const s of this.found) s.input.close();
  }
}
