// Capability "metrics": samples from the agent to its hub, and what the hub tells the agent
// (how often to sample, what to look for, what it has stored). No RPC: samples flow by themselves.
//
// - `metrics` (agent → hub): one sample (shared/api/metrics.ts), numbered per agent process
//   (`boot`, `seq`). The hub checks it (a sample out of range or missing a field is refused and
//   counted, never stored), stores its series, publishes it to watchers, evaluates alert rules on
//   it and answers `metrics_ack` with its seq once it is stored.
// - `metrics_backlog` (agent → hub): the series of samples the hub has not acknowledged (taken
//   while the device was offline, or sent and never acked), oldest first, in chunks; stored at
//   their own timestamps (a timestamp already stored is kept once) and acknowledged with the
//   chunk's last seq. Only series: a backlog is for history, not for the live view or alerts.
// - `metrics_config` (hub → agent): the interval in ms (the relay's refresh interval, or
//   LIVE_INTERVAL_MS while someone watches the device live), and the process and container names
//   alert rules watch (their counts come back in the sample's `watched`). Sent after hello and on
//   every change; an agent that has none yet samples at DEFAULT_REFRESH_SECONDS.
import { z } from 'zod';
import { MetricsSampleSchema, SeriesSchema } from '../api/metrics.ts';

export const METRICS_CAPABILITY = 'metrics';

/** A backlog chunk holds at most this many points (a point is about a kilobyte of JSON). */
export const MAX_BACKLOG_CHUNK = 200;
/** An agent keeps at most this many unacknowledged points; older ones are dropped and counted in the next chunk. */
export const MAX_BACKLOG_POINTS = 4_000;

const Boot = z.string().min(1).max(64);
const Seq = z.number().int().positive();

export const MetricsMessageSchema = z.object({ t: z.literal('metrics'), boot: Boot, seq: Seq, sample: MetricsSampleSchema });
export type MetricsMessage = z.infer<typeof MetricsMessageSchema>;

export const BacklogPointSchema = z.object({ seq: Seq, timestamp: z.iso.datetime({ offset: true }), series: SeriesSchema });
export type BacklogPoint = z.infer<typeof BacklogPointSchema>;

export const MetricsBacklogSchema = z.object({
  t: z.literal('metrics_backlog'),
  boot: Boot,
  points: z.array(BacklogPointSchema).min(1).max(MAX_BACKLOG_CHUNK),
  /** Points the agent had to drop (its buffer was full) since its last chunk. */
  dropped: z.number().int().nonnegative().optional(),
});
export type MetricsBacklog = z.infer<typeof MetricsBacklogSchema>;

/** Everything of `boot` up to `seq` is stored: the agent may forget it. */
export const MetricsAckSchema = z.object({ t: z.literal('metrics_ack'), boot: Boot, seq: Seq });
export type MetricsAck = z.infer<typeof MetricsAckSchema>;

export const MetricsConfigSchema = z.object({
  t: z.literal('metrics_config'),
  interval_ms: z.number().int().min(1000).max(3_600_000),
  watch: z.object({ processes: z.array(z.string().min(1).max(256)).max(64), containers: z.array(z.string().min(1).max(256)).max(64) }),
});
export type MetricsConfig = z.infer<typeof MetricsConfigSchema>;

export const metricsAgentMessages = [MetricsMessageSchema, MetricsBacklogSchema] as const;
export const metricsHubMessages = [MetricsAckSchema, MetricsConfigSchema] as const;
