// How the Alerts page words a rule, an alert and a delivery: metric names with their units (as
// Tyto's: percent, °C, the load average has none), a rule’s condition in one line, and
// the API's error for a field given by the start of its path (a channel's headers are named one by
// one: channels.0.headers.X-Token). Plain values only: the page loads no zod (shared/api/alerts.ts
// is imported for its types alone, so its lists are restated here as Records over its types).
import type { ApiError } from '../../api.ts';
import type { AlertLevel, AlertMetric, AlertRule, ChannelType, DeliveryStatus, ThresholdMetric } from '../../../../shared/api/alerts.ts';
import type { SampleContainer, SampleProcess } from '../../../../shared/api/metrics.ts';

/** Every metric, in the picker's order (a Record, so a metric added to shared/api/alerts.ts fails the type check until it has a label). */
const METRIC_LABEL: Record<AlertMetric, string> = {
  cpu: 'CPU usage',
  memory: 'Memory used',
  disk: 'Disk used',
  temperature: 'Temperature',
  load: 'Load average (1 minute)',
  offline: 'Device offline',
  process: 'Process not running',
  container: 'Container not running',
};
export const METRICS = (Object.keys(METRIC_LABEL) as AlertMetric[]).map((value) => ({ value, label: METRIC_LABEL[value] }));

const THRESHOLD: Record<ThresholdMetric, true> = { cpu: true, memory: true, disk: true, temperature: true, load: true };
export const isThreshold = (m: AlertMetric): m is ThresholdMetric => m in THRESHOLD;

/** The metrics a rule names a target for: a mount point (optional), a process or a container (required). */
export const TAKES_TARGET: Partial<Record<AlertMetric, { label: string; hint: string }>> = {
  disk: { label: 'Mount point', hint: 'Like /home; empty watches the fullest mount.' },
  process: { label: 'Process name', hint: 'As ps shows it, like nginx: the alert fires while none runs.' },
  container: { label: 'Container name', hint: 'The Docker container’s name: the alert fires while it is not running.' },
};

const UNIT: Record<ThresholdMetric, string> = { cpu: ' %', memory: ' %', disk: ' %', temperature: ' °C', load: '' };
export const unitOf = (m: AlertMetric) => (isThreshold(m) ? UNIT[m].trim() : '');

export const LEVELS: { value: AlertLevel; label: string }[] = [
  { value: 'warning', label: 'Warning' },
  { value: 'critical', label: 'Critical' },
];

const CHANNEL_LABEL: Record<ChannelType, string> = {
  webhook: 'Webhook (JSON)',
  slack: 'Slack-compatible webhook',
  discord: 'Discord webhook',
  ntfy: 'ntfy topic',
  telegram: 'Telegram bot',
};
export const CHANNELS = (Object.keys(CHANNEL_LABEL) as ChannelType[]).map((value) => ({ value, label: CHANNEL_LABEL[value] }));
/** MAX_CHANNELS of shared/api/alerts.ts. */
export const MAX_CHANNELS = 5;

export const DELIVERY_STATUS: Record<DeliveryStatus, string> = { pending: 'pending', delivered: 'delivered', given_up: 'given up', suppressed: 'suppressed' };

export const metricLabel = (m: AlertMetric) => METRIC_LABEL[m] ?? m;

/** A metric's value with its unit, to the precision a person reads. */
export function valueOf(m: AlertMetric, v: number | null): string {
  if (v === null) return '';
  const n = Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1).replace(/\.0$/, '');
  return isThreshold(m) ? `${n}${UNIT[m]}` : n;
}

/** "5 min", "90 s", "1 h 30 min". */
export function duration(seconds: number): string {
  if (seconds === 0) return 'at once';
  if (seconds < 60 || seconds % 60) return `${seconds} s`;
  const m = seconds / 60;
  if (m < 60) return `${m} min`;
  return m % 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m / 60} h`;
}

/** The rule's condition in one line: "≥ 80 % warning, ≥ 95 % critical over 5 min" or "nginx not running for 1 min: critical". */
export function conditionOf(r: AlertRule): string {
  const held = r.hold_seconds ? ` over ${duration(r.hold_seconds)}` : '';
  if (isThreshold(r.metric)) {
    const parts = [r.warning !== null ? `≥ ${valueOf(r.metric, r.warning)} warning` : '', r.critical !== null ? `≥ ${valueOf(r.metric, r.critical)} critical` : ''].filter(Boolean);
    return `${parts.join(', ')}${held}`;
  }
  const what = r.metric === 'offline' ? 'offline' : `${r.target ?? r.metric} not running`;
  return `${what}${r.hold_seconds ? ` for ${duration(r.hold_seconds)}` : ''}: ${r.level ?? 'warning'}`;
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(n >= 100 ? 0 : 1) : n} ${units[i]}`;
}

export const processLine = (p: SampleProcess) => `${p.name} (pid ${p.pid}${p.user ? `, ${p.user}` : ''}): ${p.cpu.toFixed(1)} % CPU, ${bytes(p.memory)}`;
export const containerLine = (c: SampleContainer) => `${c.name} (${c.status}): ${c.cpu.toFixed(1)} % CPU, ${bytes(c.memory)}`;

/** The API's message for the first issue at `prefix` or under it (zod's paths joined with dots). */
export function issueAt(err: ApiError | undefined, prefix: string): string | undefined {
  const issues = err?.details.issues;
  if (!Array.isArray(issues)) return undefined;
  const hit = issues.find((i: { path?: unknown }) => {
    const p = Array.isArray(i.path) ? i.path.join('.') : String(i.path ?? '');
    return p === prefix || p.startsWith(`${prefix}.`);
  });
  return hit ? String((hit as { message?: unknown }).message ?? err?.message) : undefined;
}
