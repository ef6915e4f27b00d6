// Metrics as users see them: one sample in Tyto's metrics structure (its seed's "Metrics
// Structure"), the `event: metrics` of GET /api/v1/stream, the series a sample is reduced to for
// history, and the queries of history (GET /api/v1/history), export (GET /api/v1/export/metrics)
// and the refresh interval (POST /api/v1/settings/refresh). Plain zod, shared by the agent (which
// builds samples and buffers their series), the hubs (which check, store and roll them up), the
// Worker and the dashboard. Units: bytes, bytes per second, percent 0–100, °C, MHz, seconds.
import { z } from 'zod';
import { DeviceIdSchema } from './devices.ts';
import { MAX_REFRESH_SECONDS, MIN_REFRESH_SECONDS, RESOLUTIONS } from './series.ts';

export * from './series.ts';

const Bytes = z.number().int().nonnegative().max(2 ** 53);
const Rate = z.number().nonnegative().max(1e13);
const Percent = z.number().min(0).max(100);
/** °C: what a sensor can report, from a freezer to a failing chip. */
const Celsius = z.number().min(-100).max(250);
const Name = z.string().max(256);

/** Lists a sample may hold: a sample stays well under the 1 MiB a Durable Object takes in one message. */
export const SAMPLE_LIMITS = { cores: 512, mounts: 64, disks: 64, interfaces: 64, top: 10, sensors: 64, gpus: 16, containers: 200, services: 200 } as const;

export const SampleProcessSchema = z.object({
  pid: z.number().int().positive(),
  name: Name,
  /** Percent of one core (may pass 100 on several cores). */
  cpu: z.number().nonnegative().max(100 * SAMPLE_LIMITS.cores),
  /** Resident bytes. */
  memory: Bytes,
  user: Name.optional(),
});
export type SampleProcess = z.infer<typeof SampleProcessSchema>;

export const SampleContainerSchema = z.object({
  id: z.string().max(128),
  name: Name,
  status: z.string().max(64),
  /** Percent of one core. */
  cpu: z.number().nonnegative().max(100 * SAMPLE_LIMITS.cores),
  memory: Bytes,
});
export type SampleContainer = z.infer<typeof SampleContainerSchema>;

/** Tyto's metrics structure, field for field, bounded. `watched` is ours: what alert rules of kind process/container asked the agent to look for. */
export const MetricsSampleSchema = z.object({
  timestamp: z.iso.datetime({ offset: true }),
  system: z.object({
    hostname: z.string().max(255),
    kernel: z.string().max(128),
    uptime: z.number().nonnegative().max(1e10),
    architecture: z.string().max(32),
  }),
  cpu: z.object({
    /** Ours: the CPU's model name (/proc/cpuinfo), for Pipetower's CpuModel rows. */
    model: z.string().max(256).optional(),
    cores: z.array(z.object({ id: z.number().int().nonnegative().max(4096), usage: Percent, frequency: z.number().nonnegative().max(1e5) })).max(SAMPLE_LIMITS.cores),
    totalUsage: Percent,
    loadAverage: z.object({ one: z.number().nonnegative().max(1e6), five: z.number().nonnegative().max(1e6), fifteen: z.number().nonnegative().max(1e6) }),
  }),
  memory: z.object({
    total: Bytes,
    used: Bytes,
    free: Bytes,
    available: Bytes,
    buffers: Bytes,
    cached: Bytes,
    swapTotal: Bytes,
    swapUsed: Bytes,
  }),
  disk: z.object({
    mounts: z.array(z.object({ device: Name, mountpoint: Name, fstype: z.string().max(64), total: Bytes, used: Bytes, free: Bytes })).max(SAMPLE_LIMITS.mounts),
    /** Cumulative bytes since boot, and (ours) the rates since the previous sample. */
    io: z.array(z.object({ device: Name, readBytes: Bytes, writeBytes: Bytes, readRate: Rate.optional(), writeRate: Rate.optional() })).max(SAMPLE_LIMITS.disks),
  }),
  network: z.object({
    interfaces: z
      .array(z.object({ name: Name, ipv4: z.string().max(64).optional(), ipv6: z.string().max(64).optional(), rxBytes: Bytes, txBytes: Bytes, rxRate: Rate, txRate: Rate }))
      .max(SAMPLE_LIMITS.interfaces),
    connectionCount: z.number().int().nonnegative().max(1e8),
  }),
  processes: z.object({
    topByCpu: z.array(SampleProcessSchema).max(SAMPLE_LIMITS.top),
    topByMemory: z.array(SampleProcessSchema).max(SAMPLE_LIMITS.top),
    total: z.number().int().nonnegative().max(1e7),
  }),
  temperature: z.object({
    sensors: z.array(z.object({ name: Name, value: Celsius, high: Celsius.optional(), critical: Celsius.optional() })).max(SAMPLE_LIMITS.sensors),
  }),
  gpu: z.object({
    available: z.boolean(),
    gpus: z
      .array(
        z.object({
          index: z.number().int().nonnegative().max(64),
          name: Name,
          vendor: z.string().max(32),
          utilization: Percent.optional(),
          memoryUsed: Bytes.optional(),
          memoryTotal: Bytes.optional(),
          temperature: Celsius.optional(),
          powerWatts: z.number().nonnegative().max(1e5).optional(),
        }),
      )
      .max(SAMPLE_LIMITS.gpus),
  }),
  docker: z.object({ available: z.boolean(), containers: z.array(SampleContainerSchema).max(SAMPLE_LIMITS.containers) }),
  systemd: z.object({
    available: z.boolean(),
    services: z.array(z.object({ name: Name, state: z.string().max(32), subState: z.string().max(32) })).max(SAMPLE_LIMITS.services),
  }),
  /** Ours: for alert rules on a process or container, how many processes of each watched name run, and each watched container's status (absent: not there). */
  watched: z
    .object({
      processes: z.record(Name, z.number().int().nonnegative().max(1e6)),
      containers: z.record(Name, z.string().max(64)),
    })
    .optional(),
});
export type MetricsSample = z.infer<typeof MetricsSampleSchema>;

/** `event: metrics` as the stream sends it: a sample and whose it is. */
export const MetricsEventSchema = MetricsSampleSchema.extend({ agent_id: DeviceIdSchema, team_id: z.string().min(1).max(64) });
export type MetricsEvent = z.infer<typeof MetricsEventSchema>;

// ---- series (shared/api/series.ts) ----

/** A series name: letters, digits and `._:/-`, at most 128 characters. */
export const SeriesNameSchema = z.string().regex(/^[a-z][a-z0-9_]*(?:[.:][A-Za-z0-9_./-]{1,120})?$/, 'a series name such as cpu, cpu.0 or disk:/home');
/** A point as the agent buffers it while offline (metrics_backlog) and the hub stores it. */
export const SeriesSchema = z.record(SeriesNameSchema, z.number().finite().min(-1e15).max(1e15)).refine((s) => Object.keys(s).length <= 768, 'at most 768 series');

// ---- history and export ----

const IsoTime = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

export const HistoryQuerySchema = z
  .object({
    agent_id: DeviceIdSchema.optional(),
    from: IsoTime.optional(),
    to: IsoTime.optional(),
    resolution: z.enum(RESOLUTIONS, { message: `resolution is one of ${RESOLUTIONS.join(', ')}` }).default('1m'),
    /** Comma list of series (cpu,memory,cpu.0); default every series. */
    series: z.string().max(2000).optional(),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, { message: 'from must not be after to', path: ['from'] });
export type HistoryQuery = z.infer<typeof HistoryQuerySchema>;

/** One series in one bucket. */
export const SeriesStatSchema = z.object({ avg: z.number(), min: z.number(), max: z.number() });
/** One bucket: its start and each series' avg/min/max (a raw point has avg = min = max). */
export const HistoryPointSchema = z.object({ timestamp: z.string() }).catchall(SeriesStatSchema);
export type HistoryPoint = { timestamp: string } & Record<string, { avg: number; min: number; max: number } | string>;

export const HistoryResponseSchema = z.object({
  from: z.string(),
  to: z.string(),
  resolution: z.enum(RESOLUTIONS),
  agent_id: z.string(),
  data: z.array(HistoryPointSchema),
});
export type HistoryResponse = z.infer<typeof HistoryResponseSchema>;

export const EXPORT_FORMATS = ['json', 'csv'] as const;
export const ExportQuerySchema = z
  .object({
    format: z.enum(EXPORT_FORMATS, { message: 'format is json or csv' }).default('json'),
    agent_id: DeviceIdSchema.optional(),
    from: IsoTime.optional(),
    to: IsoTime.optional(),
    resolution: z.enum(RESOLUTIONS).default('raw'),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, { message: 'from must not be after to', path: ['from'] });
export type ExportQuery = z.infer<typeof ExportQuerySchema>;

export const RefreshSettingsSchema = z.object({
  interval: z.number().int().min(MIN_REFRESH_SECONDS).max(MAX_REFRESH_SECONDS),
}).strict();
export type RefreshSettings = z.infer<typeof RefreshSettingsSchema>;

/** The latest sample of each device the caller may see (GET /api/v1/metrics/latest), for the fleet page's first paint. */
export const LatestMetricsSchema = z.object({ metrics: z.array(MetricsEventSchema) });
export type LatestMetrics = z.infer<typeof LatestMetricsSchema>;
