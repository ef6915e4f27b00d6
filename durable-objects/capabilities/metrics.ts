// The metrics capability: the agent's `metrics` samples and `metrics_backlog` points
// (shared/protocol/metrics.ts). Each sample is checked (one out of range or missing a field is
// refused and counted, never stored), its series stored by metrics-store.ts (raw points, 1m/5m/1h
// rollups, retention), acknowledged, published to this hub's `metrics` watchers and, at the
// relay's refresh interval, to the FleetHub (fleet-wide streams and the fleet page), and handed to
// the alerts capability. The interval the agent samples at is this module's to say
// (`metrics_config`): the relay's refresh interval, or LIVE_INTERVAL_MS while this hub has
// `metrics` watchers (someone watches the device live).
import type { MetricsSample, MetricsEvent, HistoryQuery, HistoryResponse, Resolution } from '../../shared/api/metrics.ts';
import type { AlertsCapability } from './alerts.ts';
import type { HubCapability, HubContext, Hello, MessageHandler } from './types.ts';

export const METRICS_TOPIC = 'metrics';
/** The scheduler deadline of the rollup and retention pass. */
export const METRICS_ROLLUP = 'metrics-rollup';

export interface MetricsCounters {
  /** Samples and backlog points refused (out of range, missing fields, from the future), ever. */
  metricsRefused: number;
  /** Samples stored, ever. */
  metricsStored: number;
}

/** One page of an export: rows in time order and where the next page starts (null: the end). */
export interface MetricsExportPage {
  rows: { timestamp: number; series: Record<string, { avg: number; min: number; max: number }> }[];
  next: number | null;
}

export class MetricsCapability implements HubCapability {
  readonly name = 'metrics';
  readonly topics = [METRICS_TOPIC] as const;
  readonly messages: Record<string, MessageHandler> = {};

  /** Each stored sample goes to the alerts capability. */
  constructor(private readonly alerts: AlertsCapability) {}

  onHello(_hub: HubContext, _hello: Hello): void {}

  onGone(_hub: HubContext): void {}

  /** A metrics watcher came or went: the agent samples at LIVE_INTERVAL_MS while there is one. */
  async watchersChanged(_hub: HubContext): Promise<void> {}

  /** The relay's refresh interval changed (POST /api/v1/settings/refresh): tell the agent at once. */
  async refreshChanged(_hub: HubContext, _seconds: number): Promise<void> {}

  /** History of this device (the Worker checked the query). */
  history(_hub: HubContext, _q: HistoryQuery & { from: number; to: number }): HistoryResponse {
    throw new Error('metrics history is not built yet');
  }

  /** A page of an export from `from` (inclusive) to `to`, at most `limit` rows. */
  exportPage(_hub: HubContext, _resolution: Resolution, _from: number, _to: number, _limit: number): MetricsExportPage {
    throw new Error('metrics export is not built yet');
  }

  /** The latest sample, with its age; null if none was stored since the hub started keeping them. */
  latest(_hub: HubContext): { sample: MetricsSample; receivedAt: number } | null {
    return null;
  }

  /** The rollup and retention pass (deadline METRICS_ROLLUP). */
  async rollup(_hub: HubContext, _now: number): Promise<void> {}

  counters(): MetricsCounters {
    return { metricsRefused: 0, metricsStored: 0 };
  }
}

export type { MetricsEvent };
