// The alerts capability: evaluates the alert rules that reach this device (relay-wide, its team's,
// its own; read from D1 and cached) on each sample the metrics capability stores, and on the
// agent's coming and going (offline rules). A threshold rule fires when the metric's average over
// its hold reaches a threshold and resolves when the average over its recovery hold is back under
// it, so it fires once and resolves once; the state of each rule lives in this hub's SQLite so it
// survives hibernation (alert-state.ts: one storage row written per sample). A window only counts samples taken since the rule's last
// change of state: once an alert fires, its recovery average is of samples after it fired, and
// once it resolves, a new alert needs a whole hold of samples after that. Without this a series
// hovering at the threshold would resolve and fire again on alternate samples, since the
// two windows then hold nearly the same points. An alert is one D1 row (fired, escalated, resolved in
// place) naming the top processes or containers of the sample it fired on; its notifications are
// deliveries (alert-deliveries.ts) retried with backoff on the ALERT_NOTIFY deadline.
//
// Evaluations run one at a time (a queue in memory): each awaits D1, and two samples evaluated
// side by side would both see "not firing" and fire twice.
import { eq } from 'drizzle-orm';
import type { MetricsSample, Series } from '../../shared/api/metrics.ts';
import type { AlertLevel, ThresholdMetric } from '../../shared/api/alerts.ts';
import { alertRules, alerts, type AlertRow, type AlertRuleRow } from '../../shared/db/schema.ts';
import { getDb } from '../../shared/db/index.ts';
import { alertOf, causeOf, isThresholdRule, messageOf, rulesReaching, seriesOfRule } from './alert-rules.ts';
import { AlertState, emptyState, type RuleState } from './alert-state.ts';
import { AlertDeliveries } from './alert-deliveries.ts';
import type { HubCapability, HubContext, Hello } from './types.ts';

/** The scheduler deadline of pending deliveries, resends and quiet hours' end. */
export const ALERT_NOTIFY = 'alert-notify';
/** The scheduler deadline at which an offline device's offline rules fire. */
export const ALERT_OFFLINE = 'alert-offline';

/** How long the rules (and the device's team and name) read from D1 are trusted. */
export const RULES_CACHE_MS = 30_000;

interface Rules {
  /** Enabled rules that reach the device. */
  enabled: AlertRuleRow[];
  teamId: string;
  deviceName: string;
  until: number;
}

const sameState = (a: RuleState, b: RuleState) =>
  a.alertId === b.alertId && a.level === b.level && a.threshold === b.threshold && a.pendingSince === b.pendingSince && a.recoveringSince === b.recoveringSince && a.since === b.since;

export class AlertsCapability implements HubCapability {
  readonly name = 'alerts';
  readonly deliveries = new AlertDeliveries();
  private rules: Rules | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private store: AlertState | null = null;

  // The agent's coming and going is rare and decides offline alerts: both read the rules afresh.

  onHello(hub: HubContext, _hello: Hello): Promise<void> {
    return this.serial(() => {
      this.rules = null;
      return this.back(hub, Date.now());
    });
  }

  onGone(hub: HubContext): Promise<void> {
    return this.serial(() => {
      this.rules = null;
      return this.gone(hub, hub.agentGoneAt() ?? Date.now());
    });
  }

  /** A sample was stored: evaluate the threshold, process and container rules on it. */
  onSample(hub: HubContext, sample: MetricsSample, series: Series, at: number): Promise<void> {
    return this.serial(() => this.evaluate(hub, sample, series, at));
  }

  /** The process and container names the rules of this device watch (for metrics_config). */
  async watched(hub: HubContext): Promise<{ processes: string[]; containers: string[] }> {
    const rules = (await this.load(hub))?.enabled ?? [];
    const names = (metric: string) => [...new Set(rules.filter((r) => r.metric === metric && r.target).map((r) => r.target!))].sort();
    return { processes: names('process'), containers: names('container') };
  }

  /** Rules changed in D1: drop the cache; the alert of a rule that no longer applies here (disabled, or moved to another scope) resolves, and its state is forgotten. */
  rulesChanged(hub: HubContext): Promise<void> {
    return this.serial(async () => {
      this.rules = null;
      const rules = await this.load(hub);
      if (!rules) return;
      const enabled = new Map(rules.enabled.map((r) => [r.id, r]));
      for (const s of this.state(hub).all()) {
        if (enabled.has(s.ruleId)) continue;
        // A rule that still exists resolves its alert (and says so); a deleted one took its alerts with it (D1 cascade).
        if (s.alertId) {
          const rule = await this.ruleRow(hub, s.ruleId);
          if (rule) await this.resolve(hub, rule, s, Date.now(), rules);
        }
        this.state(hub).forget(s.ruleId);
      }
    });
  }

  /** An alert was acknowledged through the API: no more resends. */
  async acknowledged(hub: HubContext, alertId: string): Promise<void> {
    await this.deliveries.acknowledged(hub, alertId);
  }

  /** Deadline ALERT_NOTIFY: sends what is due. */
  async notify(hub: HubContext, now: number): Promise<void> {
    await this.deliveries.run(hub, now);
  }

  /** Deadline ALERT_OFFLINE: fires offline rules whose hold has passed, if the agent is still away. */
  offline(hub: HubContext, now: number): Promise<void> {
    return this.serial(async () => {
      if (hub.agent()) return;
      const rules = await this.load(hub);
      if (!rules) return;
      let next: number | null = null;
      for (const rule of rules.enabled.filter((r) => r.metric === 'offline')) {
        const s = this.state(hub).get(rule.id);
        if (s.alertId || s.pendingSince === null) continue;
        const due = s.pendingSince + rule.holdSeconds * 1000;
        if (due <= now) await this.fire(hub, rule, s, { level: rule.level ?? 'warning', value: null, threshold: null, sample: null, at: now }, rules);
        else next = Math.min(next ?? due, due);
      }
      if (next !== null) await hub.at(ALERT_OFFLINE, next);
    });
  }

  // ---- internals ----

  /** Runs `fn` after the evaluations before it, then writes the rule state it changed (once, however many rules it touched). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn).finally(() => this.store?.flush());
    this.queue = run.catch(() => undefined);
    return run;
  }

  private state(hub: HubContext): AlertState {
    return (this.store ??= new AlertState(hub.state.storage));
  }

  /** The rules that reach the device, cached RULES_CACHE_MS; null when the device is not in D1 (deleted). */
  private async load(hub: HubContext, now = Date.now()): Promise<Rules | null> {
    if (this.rules && this.rules.until > now) return this.rules;
    const device = await hub.env.DB.prepare('SELECT team_id, name FROM devices WHERE id = ?1').bind(hub.deviceId).first<{ team_id: string; name: string }>();
    if (!device) return (this.rules = null);
    const enabled = await rulesReaching(hub.env.DB, hub.deviceId, device.team_id);
    this.rules = { enabled, teamId: device.team_id, deviceName: device.name, until: now + RULES_CACHE_MS };
    return this.rules;
  }

  private async ruleRow(hub: HubContext, id: string): Promise<AlertRuleRow | null> {
    return (await getDb(hub.env.DB).select().from(alertRules).where(eq(alertRules.id, id)).get()) ?? null;
  }

  private async evaluate(hub: HubContext, sample: MetricsSample, series: Series, at: number): Promise<void> {
    const rules = await this.load(hub);
    if (!rules) return;
    for (const rule of rules.enabled) {
      if (isThresholdRule(rule)) await this.threshold(hub, rule, sample, series, at, rules);
      else if (rule.metric === 'process' || rule.metric === 'container') await this.presence(hub, rule, sample, at, rules);
    }
  }

  private async threshold(hub: HubContext, rule: AlertRuleRow & { metric: ThresholdMetric }, sample: MetricsSample, series: Series, at: number, rules: Rules): Promise<void> {
    const value = series[seriesOfRule(rule)];
    if (value === undefined) return; // the device does not measure it (no sensor, no such mount)
    const store = this.state(hub);
    const holdMs = rule.holdSeconds * 1000;
    const recoveryMs = rule.recoverySeconds * 1000;
    store.addPoint(rule.id, at, value, Math.max(holdMs, recoveryMs));
    const before = store.get(rule.id);
    // A clock that went back (addPoint dropped the points after this one) starts the window again.
    const s: RuleState = { ...before, since: before.since === null || before.since > at ? at : before.since };
    const covered = (ms: number) => at - s.since! >= ms;
    const levelOf = (avg: number): AlertLevel | null => (rule.critical !== null && avg >= rule.critical ? 'critical' : rule.warning !== null && avg >= rule.warning ? 'warning' : null);
    if (!s.alertId) {
      const avg = covered(holdMs) ? store.average(rule.id, at - holdMs) : null;
      const level = avg === null ? null : levelOf(avg);
      if (avg !== null && level) {
        return this.fire(hub, rule, s, { level, value: avg, threshold: level === 'critical' ? rule.critical! : rule.warning!, sample, at }, rules);
      }
    } else {
      const avg = s.level === 'warning' && rule.critical !== null && covered(holdMs) ? store.average(rule.id, at - holdMs) : null;
      if (avg !== null && avg >= rule.critical!) return this.escalate(hub, rule, s, avg, sample, rules);
      const recovered = covered(recoveryMs) ? store.average(rule.id, at - recoveryMs) : null;
      if (recovered !== null && recovered < s.threshold!) return this.resolve(hub, rule, s, at, rules);
    }
    if (!sameState(before, s)) store.put(s);
  }

  /** A process rule: how many processes of the name run; a container rule: the container's status. Null: the sample does not say (an agent that watches nothing yet). */
  private async presence(hub: HubContext, rule: AlertRuleRow, sample: MetricsSample, at: number, rules: Rules): Promise<void> {
    const watched = sample.watched;
    if (!watched || !rule.target) return;
    const status = rule.metric === 'container' ? (watched.containers[rule.target] ?? null) : null;
    const missing = rule.metric === 'process' ? !watched.processes[rule.target] : status !== 'running';
    const store = this.state(hub);
    const before = store.get(rule.id);
    const s = { ...before };
    if (!s.alertId) {
      s.recoveringSince = null;
      s.pendingSince = missing ? (s.pendingSince ?? at) : null;
      if (s.pendingSince !== null && at - s.pendingSince >= rule.holdSeconds * 1000) {
        return this.fire(hub, rule, s, { level: rule.level ?? 'warning', value: rule.metric === 'process' ? (watched.processes[rule.target] ?? 0) : null, threshold: null, sample, at, status }, rules);
      }
    } else {
      s.recoveringSince = missing ? null : (s.recoveringSince ?? at);
      if (s.recoveringSince !== null && at - s.recoveringSince >= rule.recoverySeconds * 1000) return this.resolve(hub, rule, s, at, rules);
    }
    if (!sameState(before, s)) store.put(s);
  }

  /** The agent came back: offline alerts resolve; every window starts again (the series had a gap). */
  private async back(hub: HubContext, now: number): Promise<void> {
    const rules = await this.load(hub);
    const store = this.state(hub);
    store.dropPoints();
    for (const s of store.all()) {
      const rule = rules?.enabled.find((r) => r.id === s.ruleId);
      if (rule?.metric === 'offline' && s.alertId) {
        await this.resolve(hub, rule, s, now, rules!);
        continue;
      }
      const next = { ...s, since: null, pendingSince: null, recoveringSince: null };
      if (!sameState(s, next)) store.put(next);
    }
  }

  /** The agent went away: each offline rule's hold starts, and the deadline is set for the first to end. */
  private async gone(hub: HubContext, goneAt: number): Promise<void> {
    const rules = await this.load(hub);
    if (!rules) return;
    let due: number | null = null;
    for (const rule of rules.enabled.filter((r) => r.metric === 'offline')) {
      const s = this.state(hub).get(rule.id);
      if (s.alertId) continue;
      const pendingSince = s.pendingSince ?? goneAt;
      this.state(hub).put({ ...s, pendingSince });
      const at = pendingSince + rule.holdSeconds * 1000;
      due = Math.min(due ?? at, at);
    }
    if (due !== null) await hub.at(ALERT_OFFLINE, due);
  }

  private async fire(
    hub: HubContext,
    rule: AlertRuleRow,
    s: RuleState,
    a: { level: AlertLevel; value: number | null; threshold: number | null; sample: MetricsSample | null; at: number; status?: string | null },
    rules: Rules,
  ): Promise<void> {
    const value = a.value === null ? null : Math.round(a.value * 100) / 100;
    const cause = causeOf(rule, a.sample);
    const row: AlertRow = {
      id: crypto.randomUUID(),
      ruleId: rule.id,
      deviceId: hub.deviceId,
      teamId: rules.teamId,
      metric: rule.metric,
      level: a.level,
      value,
      threshold: a.threshold,
      message: messageOf(rule, { level: a.level, value, threshold: a.threshold, cause, deviceName: rules.deviceName, status: a.status }),
      cause,
      state: 'firing',
      createdAt: a.at,
      resolvedAt: null,
      acknowledgedAt: null,
      acknowledgedBy: null,
    };
    await getDb(hub.env.DB).insert(alerts).values(row).run();
    this.state(hub).put({ ...s, alertId: row.id, level: a.level, threshold: a.threshold, pendingSince: null, recoveringSince: null, since: isThresholdRule(rule) ? a.at : null });
    await this.deliveries.enqueue(hub, { event: 'fired', alert: alertOf(row), rule, deviceName: rules.deviceName });
  }

  private async escalate(hub: HubContext, rule: AlertRuleRow, s: RuleState, avg: number, sample: MetricsSample, rules: Rules): Promise<void> {
    const value = Math.round(avg * 100) / 100;
    const cause = causeOf(rule, sample);
    const message = messageOf(rule, { level: 'critical', value, threshold: rule.critical, cause, deviceName: rules.deviceName });
    const row = await getDb(hub.env.DB).update(alerts).set({ level: 'critical', value, threshold: rule.critical, message, cause }).where(eq(alerts.id, s.alertId!)).returning().get();
    // The resolve threshold stays the one it first fired at: falling back under critical alone is not recovery.
    this.state(hub).put({ ...s, level: 'critical' });
    if (row) await this.deliveries.enqueue(hub, { event: 'escalated', alert: alertOf(row), rule, deviceName: rules.deviceName });
  }

  private async resolve(hub: HubContext, rule: AlertRuleRow, s: RuleState, at: number, rules: Rules): Promise<void> {
    const row = await getDb(hub.env.DB).update(alerts).set({ state: 'resolved', resolvedAt: at }).where(eq(alerts.id, s.alertId!)).returning().get();
    this.state(hub).put({ ...emptyState(s.ruleId), since: isThresholdRule(rule) ? at : null });
    if (row) await this.deliveries.enqueue(hub, { event: 'resolved', alert: alertOf(row), rule, deviceName: rules.deviceName });
  }
}
