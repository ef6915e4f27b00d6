// The sample's systemd part: every service unit with its active state and sub-state, from
// `systemctl list-units --type=service --all --plain --no-legend` every SYSTEMD_EVERY_MS (a process
// spawn and a D-Bus round trip to PID 1, tens of ms of CPU on a Pi; services change state rarely).
// Only where systemctl is installed and systemd is the running init (/run/systemd/system exists,
// sd_booted(3)'s test), so a container or a sysvinit machine with a stray systemctl binary says
// `available: false` instead of an error. At most SAMPLE_LIMITS.services units: failed ones first, then active, then the rest.
import { existsSync } from 'node:fs';
import type { MetricsSample } from '../../shared/api/metrics.ts';
import { SAMPLE_LIMITS } from '../../shared/api/metrics.ts';
import type { RunCommand } from '../system/command.ts';
import { resolvePath } from '../system/proc.ts';

export const SYSTEMD_EVERY_MS = 60_000;
const LIST_UNITS = ['list-units', '--type=service', '--all', '--plain', '--no-legend', '--no-pager'];

type Systemd = MetricsSample['systemd'];
type Service = Systemd['services'][number];

const rank = (s: Service) => (s.state === 'failed' ? 0 : s.state === 'active' ? 1 : 2);

/** `UNIT LOAD ACTIVE SUB DESCRIPTION…` lines (a leading ● on a failed unit, without --plain, is skipped). */
export function parseListUnits(text: string): Service[] {
  const services: Service[] = [];
  for (const line of text.split('\n')) {
    const f = line.replace(/^\s*●\s*/, '').trim().split(/\s+/);
    const [unit, , active, sub] = f;
    if (!unit || !active || !sub || !unit.endsWith('.service')) continue;
    services.push({ name: unit.slice(0, 256), state: active.slice(0, 32), subState: sub.slice(0, 32) });
  }
  return services
    .sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : 1))
    .slice(0, SAMPLE_LIMITS.services)
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

export interface SystemdOptions {
  root: string;
  runCommand: RunCommand;
  /** systemctl's path, or null for none; default looked up on PATH. */
  systemctl?: string | null;
}

export class SystemdReader {
  private readonly systemctl: string | null;

  constructor(private readonly options: SystemdOptions) {
    this.systemctl = options.systemctl !== undefined ? options.systemctl : Bun.which('systemctl');
  }

  async read(): Promise<Systemd> {
    if (this.systemctl === null || !existsSync(resolvePath(this.options.root, '/run/systemd/system'))) return { available: false, services: [] };
    try {
      return { available: true, services: parseListUnits(await this.options.runCommand([this.systemctl, ...LIST_UNITS])) };
    } catch {
      return { available: false, services: [] };
    }
  }
}
