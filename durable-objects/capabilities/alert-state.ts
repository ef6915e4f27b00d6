// The alerts capability's memory, in the hub's own SQLite so it outlives hibernation and restarts:
// per rule, the alert it keeps firing (and at which threshold it resolves), since when a presence
// condition holds (pending) or has stopped holding (recovering), and a short ring of the rule's
// series values, enough for the longer of its hold and recovery windows, from which the averages
// are taken. A sample costs a threshold rule one INSERT and one bounded DELETE; the state row is
// written only when something changes.
import type { AlertLevel } from '../../shared/api/alerts.ts';

export interface RuleState {
  ruleId: string;
  /** The firing alert (its D1 row), or null. */
  alertId: string | null;
  level: AlertLevel | null;
  /** The threshold the alert resolves under: the one it first fired at. */
  threshold: number | null;
  /** Presence rules: since when the condition (missing, offline) holds without an alert yet. */
  pendingSince: number | null;
  /** Presence rules: since when a firing alert's condition stopped holding. */
  recoveringSince: number | null;
  /** Threshold rules: since when the window counts samples (the first of an unbroken run, or the last fire or resolve); a window is covered once it reaches back that far. */
  since: number | null;
}

type Row = { rule_id: string; alert_id: string | null; level: AlertLevel | null; threshold: number | null; pending_since: number | null; recovering_since: number | null; since: number | null };

const fromRow = (r: Row): RuleState => ({ ruleId: r.rule_id, alertId: r.alert_id, level: r.level, threshold: r.threshold, pendingSince: r.pending_since, recoveringSince: r.recovering_since, since: r.since });

export const emptyState = (ruleId: string): RuleState => ({ ruleId, alertId: null, level: null, threshold: null, pendingSince: null, recoveringSince: null, since: null });

export class AlertState {
  constructor(private readonly storage: DurableObjectStorage) {
    const sql = storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS alert_rule_state (
      rule_id TEXT PRIMARY KEY, alert_id TEXT, level TEXT, threshold REAL, pending_since INTEGER, recovering_since INTEGER, since INTEGER)`);
    sql.exec('CREATE TABLE IF NOT EXISTS alert_points (rule_id TEXT NOT NULL, at INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (rule_id, at)) WITHOUT ROWID');
  }

  get(ruleId: string): RuleState {
    const row = this.storage.sql.exec<Row>('SELECT * FROM alert_rule_state WHERE rule_id = ?', ruleId).toArray()[0];
    return row ? fromRow(row) : emptyState(ruleId);
  }

  all(): RuleState[] {
    return this.storage.sql.exec<Row>('SELECT * FROM alert_rule_state').toArray().map(fromRow);
  }

  put(s: RuleState): void {
    this.storage.sql.exec(
      'INSERT OR REPLACE INTO alert_rule_state (rule_id, alert_id, level, threshold, pending_since, recovering_since, since) VALUES (?, ?, ?, ?, ?, ?, ?)',
      s.ruleId,
      s.alertId,
      s.level,
      s.threshold,
      s.pendingSince,
      s.recoveringSince,
      s.since,
    );
  }

  /** Forgets a rule: its state and its points. */
  forget(ruleId: string): void {
    this.storage.sql.exec('DELETE FROM alert_rule_state WHERE rule_id = ?', ruleId);
    this.storage.sql.exec('DELETE FROM alert_points WHERE rule_id = ?', ruleId);
  }

  /** Adds a rule's value at `at`, dropping its points older than `at - keepMs` (and any after `at`: the device's clock went back). */
  addPoint(ruleId: string, at: number, value: number, keepMs: number): void {
    const sql = this.storage.sql;
    sql.exec('DELETE FROM alert_points WHERE rule_id = ? AND (at < ? OR at > ?)', ruleId, at - keepMs, at);
    sql.exec('INSERT OR REPLACE INTO alert_points (rule_id, at, value) VALUES (?, ?, ?)', ruleId, at, value);
  }

  /** The average of a rule's points from `from` on (inclusive). */
  average(ruleId: string, from: number): number | null {
    return this.storage.sql.exec<{ avg: number | null }>('SELECT AVG(value) AS avg FROM alert_points WHERE rule_id = ? AND at >= ?', ruleId, from).one().avg;
  }

  /** Drops every rule's points (the series had a gap: the agent was away). */
  dropPoints(): void {
    this.storage.sql.exec('DELETE FROM alert_points');
  }
}
