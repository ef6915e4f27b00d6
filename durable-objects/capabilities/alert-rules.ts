// What the alerts capability and the Worker both need of rules and alerts: which rules reach a
// device (relay-wide, its team's, its own), an alert row as the API shows it, and the sentence an
// alert says ("CPU 93.2 % over 5 min ≥ 90 % (critical) on web-1; top: stress-ng (pid 812) 97 %"),
// with the processes or containers that caused it. One module, so the hub's notifications and
// the Worker's answers show an alert the same way.
import { and, eq, isNull, or } from 'drizzle-orm';
import { getDb, iso } from '../../shared/db/index.ts';
import { alertRules, type AlertRow, type AlertRuleRow } from '../../shared/db/schema.ts';
import { METRIC_SERIES, THRESHOLD_METRICS, type Alert, type AlertCause, type AlertLevel, type ThresholdMetric } from '../../shared/api/alerts.ts';
import type { MetricsSample, SampleContainer, SampleProcess } from '../../shared/api/metrics.ts';
import { formatBytes } from '../../shared/bytes.ts';

/** Processes or containers an alert names at most. */
export const CAUSE_LIMIT = 5;

export function isThresholdRule(rule: Pick<AlertRuleRow, 'metric'>): rule is AlertRuleRow & { metric: ThresholdMetric } {
  return (THRESHOLD_METRICS as readonly string[]).includes(rule.metric);
}

/** The enabled rules that reach the device: relay-wide, its team's (no device), its own. */
export async function rulesReaching(db: D1Database, deviceId: string, teamId: string): Promise<AlertRuleRow[]> {
  const r = alertRules;
  return getDb(db)
    .select()
    .from(r)
    .where(and(eq(r.enabled, true), or(and(isNull(r.teamId), isNull(r.deviceId)), and(isNull(r.deviceId), eq(r.teamId, teamId)), eq(r.deviceId, deviceId))))
    .all();
}

/** The series a threshold rule averages: METRIC_SERIES, or `disk:<mount>` for a disk rule naming one. */
export function seriesOfRule(rule: AlertRuleRow & { metric: ThresholdMetric }): string {
  return rule.metric === 'disk' && rule.target ? `disk:${rule.target}` : METRIC_SERIES[rule.metric];
}

/** An alert row as the API (and a notification) shows it. */
export function alertOf(row: AlertRow): Alert {
  return {
    id: row.id,
    type: row.metric,
    level: row.level,
    value: row.value,
    threshold: row.threshold,
    agent_id: row.deviceId,
    created_at: iso(row.createdAt)!,
    acknowledged: row.acknowledgedAt !== null,
    rule_id: row.ruleId,
    team_id: row.teamId,
    state: row.state,
    resolved_at: iso(row.resolvedAt),
    acknowledged_at: iso(row.acknowledgedAt),
    acknowledged_by: row.acknowledgedBy,
    message: row.message,
    cause: row.cause,
  };
}

/** What caused a threshold or container alert: the sample's top processes by CPU (cpu, load, temperature) or memory, or its containers (the watched one first). */
export function causeOf(rule: AlertRuleRow, sample: MetricsSample | null): AlertCause {
  if (!sample) return {};
  switch (rule.metric) {
    case 'cpu':
    case 'load':
    case 'temperature':
      return { processes: [...sample.processes.topByCpu].sort((a, b) => b.cpu - a.cpu).slice(0, CAUSE_LIMIT) };
    case 'memory':
      return { processes: [...sample.processes.topByMemory].sort((a, b) => b.memory - a.memory).slice(0, CAUSE_LIMIT) };
    case 'container': {
      const all = sample.docker.containers;
      const target = all.filter((c) => c.name === rule.target);
      return { containers: [...target, ...all.filter((c) => c.name !== rule.target)].slice(0, CAUSE_LIMIT) };
    }
    default:
      return {};
  }
}

/** "5 min", "30 s", "2 h", "90 s". */
export function duration(seconds: number): string {
  if (seconds < 60 || seconds % 60 !== 0) return `${seconds} s`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  return `${seconds / 60} min`;
}

const LABELS: Record<ThresholdMetric, string> = { cpu: 'CPU', memory: 'Memory', disk: 'Disk', temperature: 'Temperature', load: 'Load' };

function amount(metric: ThresholdMetric, v: number): string {
  if (metric === 'temperature') return `${v.toFixed(1)} °C`;
  if (metric === 'load') return v.toFixed(2);
  return `${v.toFixed(1)} %`;
}

function limit(metric: ThresholdMetric, v: number): string {
  const n = Number.isInteger(v) ? String(v) : v.toFixed(2);
  if (metric === 'temperature') return `${n} °C`;
  if (metric === 'load') return n;
  return `${n} %`;
}

const processText = (p: SampleProcess, by: 'cpu' | 'memory') => `${p.name} (pid ${p.pid}) ${by === 'cpu' ? `${p.cpu.toFixed(0)} %` : formatBytes(p.memory)}`;
const containerText = (c: SampleContainer) => `${c.name} (${c.status})`;

/** The sentence of an alert of `rule` at `level` on `deviceName`. */
export function messageOf(rule: AlertRuleRow, a: { level: AlertLevel; value: number | null; threshold: number | null; cause: AlertCause; deviceName: string; status?: string | null }): string {
  const hold = rule.holdSeconds;
  let text: string;
  if (isThresholdRule(rule)) {
    const what = rule.metric === 'disk' && rule.target ? `Disk ${rule.target}` : LABELS[rule.metric];
    const over = hold > 0 ? ` over ${duration(hold)}` : '';
    text = `${what} ${amount(rule.metric, a.value ?? 0)}${over} ≥ ${limit(rule.metric, a.threshold ?? 0)} (${a.level}) on ${a.deviceName}`;
  } else if (rule.metric === 'offline') {
    text = `${a.deviceName} offline${hold > 0 ? ` for ${duration(hold)}` : ''} (${a.level})`;
  } else {
    const how = rule.metric === 'process' ? 'not running' : a.status ? `not running (${a.status})` : 'not found';
    text = `${rule.metric === 'process' ? 'Process' : 'Container'} ${rule.target} ${how}${hold > 0 ? ` for ${duration(hold)}` : ''} (${a.level}) on ${a.deviceName}`;
  }
  const by = rule.metric === 'memory' ? 'memory' : 'cpu';
  if (a.cause.processes?.length) text += `; top: ${a.cause.processes.slice(0, 3).map((p) => processText(p, by)).join(', ')}`;
  if (a.cause.containers?.length) text += `; containers: ${a.cause.containers.map(containerText).join(', ')}`;
  return text;
}
