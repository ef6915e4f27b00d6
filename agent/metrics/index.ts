// Capability "metrics": samples of the machine in Tyto's metrics structure
// (shared/api/metrics.ts), sent to the hub as `metrics` at the interval the hub's `metrics_config`
// says (options.intervalMs until one comes); what the hub has not acknowledged is kept (bounded:
// backlog.ts) and sent again as `metrics_backlog` when the connection is back. See
// shared/protocol/metrics.ts for the conversation.
//
// Samples are numbered per agent process (`boot`, a random id, and `seq` from 1) and leave in seq
// order, because an ack of seq N stores everything up to N: while older points wait to go as
// backlog chunks (at most BACKLOG_WINDOW in flight), a new sample joins them instead of jumping
// the queue, and once they have all gone each new sample goes live, whole. Sampling goes on while
// offline; an offline agent drops back from the live interval to the last other interval the hub
// gave (nobody can be watching it live through a hub it cannot reach), so the bounded buffer
// covers a longer outage.
import { LIVE_INTERVAL_MS, seriesOf } from '../../shared/api/series.ts';
import type { MetricsSample } from '../../shared/api/metrics.ts';
import { METRICS_CAPABILITY, MetricsAckSchema, MetricsConfigSchema, MAX_BACKLOG_POINTS } from '../../shared/protocol/metrics.ts';
import type { AgentCapability, SendToHub } from '../capability.ts';
import type { Logger } from '../log.ts';
import { Backlog } from './backlog.ts';
import type { MetricsOptions } from './options.ts';
import { MetricsSampler, type SamplerOptions, type Watch } from './sampler.ts';

/** Backlog chunks sent and not yet acknowledged, at most. */
export const BACKLOG_WINDOW = 2;
/** A chunk not acknowledged in this long frees its place in the window (it goes again on the next hello). */
export const CHUNK_ACK_TIMEOUT_MS = 30_000;
/** How long stop waits for a sample under way (its slow parts give up after 2 s). */
const STOP_WAIT_MS = 3_000;

/** What the capability needs of a sampler (MetricsSampler; a test's stand-in). */
export interface Sampler {
  sample(intervalMs: number): Promise<MetricsSample>;
  setWatch(watch: Watch): void;
  close(): void;
}

export interface MetricsDeps {
  log: Logger;
  options: MetricsOptions;
  /** Overrides for the sampler (tests: systemctl, nvidia-smi, a clock). */
  sampler?: Partial<SamplerOptions>;
  /** A sampler in place of MetricsSampler (tests of the buffer). */
  createSampler?: (options: SamplerOptions) => Sampler;
  /** The buffer's bound; default MAX_BACKLOG_POINTS. */
  backlogPoints?: number;
}

export interface MetricsCapability extends AgentCapability {
  /** This agent process's samples' `boot`. */
  readonly boot: string;
  /** The interval samples are taken at now, in ms. */
  intervalMs(): number;
  /** Points held for the hub (unacknowledged). */
  held(): number;
  /** Ends the timer and closes the sampler's files. */
  stop(): Promise<void>;
}

export function metricsCapability(deps: MetricsDeps): MetricsCapability {
  const { log, options } = deps;
  const samplerOptions: SamplerOptions = { root: options.root, dockerSocket: options.dockerSocket, ...deps.sampler };
  const sampler = deps.createSampler ? deps.createSampler(samplerOptions) : new MetricsSampler(samplerOptions);
  const backlog = new Backlog(deps.backlogPoints ?? MAX_BACKLOG_POINTS);
  const boot = crypto.randomUUID();
  let seq = 0;
  let interval = options.intervalMs;
  let resting = options.intervalMs;
  let send: SendToHub | null = null;
  /** Last seq of each backlog chunk in flight, and when it went. */
  let inFlight: { last: number; at: number }[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  let lastAt = Number.NEGATIVE_INFINITY;
  let current: Promise<void> | null = null;
  let stopped = false;

  const speak = (message: Parameters<SendToHub>[0]): boolean => {
    if (send?.(message)) return true;
    // The socket is gone; onGone follows and the next hello sends what is held.
    send = null;
    return false;
  };

  const pump = () => {
    const now = performance.now();
    inFlight = inFlight.filter((c) => now - c.at < CHUNK_ACK_TIMEOUT_MS);
    while (send && inFlight.length < BACKLOG_WINDOW && backlog.unsent > 0) {
      const points = backlog.takeChunk();
      const dropped = backlog.dropped;
      if (!speak({ t: 'metrics_backlog', boot, points, ...(dropped ? { dropped } : {}) })) return;
      backlog.dropped -= dropped;
      inFlight.push({ last: points[points.length - 1]!.seq, at: now });
    }
  };

  const take = async () => {
    lastAt = performance.now();
    try {
      const sample = await sampler.sample(interval);
      if (stopped) return;
      seq++;
      backlog.add({ seq, timestamp: sample.timestamp, series: seriesOf(sample) });
      // Live only when nothing older waits: the hub's ack of this seq covers every point before it.
      if (send && backlog.unsent === 1) {
        if (speak({ t: 'metrics', boot, seq, sample })) backlog.sentUpTo = seq;
      } else pump();
    } catch (e) {
      log.warn('a metrics sample failed', { error: String(e) });
    }
  };

  const schedule = () => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(tick, Math.max(0, lastAt + interval - performance.now()));
  };

  function tick() {
    timer = null;
    // A sample still under way (a slow source's first answer) schedules the next when it ends.
    if (current) return;
    current = take().finally(() => {
      current = null;
      schedule();
    });
  }

  schedule();

  return {
    name: METRICS_CAPABILITY,
    boot,
    intervalMs: () => interval,
    held: () => backlog.size,
    messages: {
      metrics_config: (message) => {
        const config = MetricsConfigSchema.safeParse(message);
        if (!config.success) {
          log.warn('ignoring a malformed metrics_config', { error: config.error.message.slice(0, 200) });
          return;
        }
        interval = config.data.interval_ms;
        if (interval !== LIVE_INTERVAL_MS) resting = interval;
        sampler.setWatch(config.data.watch);
        schedule();
      },
      metrics_ack: (message) => {
        const ack = MetricsAckSchema.safeParse(message);
        if (!ack.success || ack.data.boot !== boot) return;
        backlog.ack(ack.data.seq);
        inFlight = inFlight.filter((c) => c.last > ack.data.seq);
        pump();
      },
    },
    onHello: (s) => {
      send = s;
      inFlight = [];
      backlog.resend();
      pump();
    },
    onGone: () => {
      send = null;
      inFlight = [];
      if (interval !== resting) {
        interval = resting;
        schedule();
      }
    },
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      if (current) await Promise.race([current, Bun.sleep(STOP_WAIT_MS)]);
      sampler.close();
    },
  };
}
