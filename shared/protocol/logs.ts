// Capability "logs": the device's log lines (the systemd journal, files the user named), shipped to
// the hub in numbered batches the hub acknowledges once they are stored. The agent keeps a batch
// in its on-disk spool until its ack comes, so a line is lost only when the spool's bound makes the
// agent drop the oldest (and the next batch says how many it dropped); a batch sent twice (the ack
// was lost with the socket) is stored once, by its (boot, seq).
import { z } from 'zod';

export const LOGS_CAPABILITY = 'logs';

/** syslog's levels, most severe first (journald's PRIORITY 0–7 in this order). */
export const LOG_LEVELS = ['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'info', 'debug'] as const;
export const LogLevelSchema = z.enum(LOG_LEVELS);
export type LogLevel = z.infer<typeof LogLevelSchema>;

/** Where a line came from (Tyto's sources; `docker` is for later). */
export const LOG_SOURCES = ['journal', 'file', 'docker'] as const;
export const LogSourceSchema = z.enum(LOG_SOURCES);
export type LogSource = z.infer<typeof LogSourceSchema>;

/** The longest message kept (UTF-8 bytes); a longer one is cut and ends with LOG_TRUNCATED_MARKER. */
export const MAX_LOG_MESSAGE = 8 * 1024;
/** What a cut message ends with, followed by how many bytes were cut and "]": "… [truncated 1234 bytes]". */
export const LOG_TRUNCATED_MARKER = '… [truncated ';
/** Lines and JSON bytes one batch may hold: far below the 1 MiB a Durable Object may receive. */
export const MAX_LOG_BATCH = { lines: 500, bytes: 512 * 1024 } as const;
/** Extra structured fields a line may carry (journald's _PID, _COMM…): few, short. */
export const MAX_LOG_FIELDS = 16;

export const LogLineSchema = z.object({
  /** When the line was written (ms since the epoch), as its source says. */
  ts: z.number().int().nonnegative(),
  source: LogSourceSchema,
  /** The unit or identifier (journal), the file's name as configured (file). */
  source_name: z.string().min(1).max(256),
  level: LogLevelSchema,
  message: z.string().max(MAX_LOG_MESSAGE + 64),
  fields: z.record(z.string().max(64), z.string().max(1024)).optional(),
});
export type LogLine = z.infer<typeof LogLineSchema>;

/** agent → hub: one batch. `boot` names the agent's spool (a new spool starts its seq at 1). */
export const LogBatchSchema = z.object({
  t: z.literal('logs'),
  boot: z.string().min(1).max(64),
  seq: z.number().int().positive(),
  lines: z.array(LogLineSchema).min(1).max(MAX_LOG_BATCH.lines),
  /** Lines the spool dropped (oldest first, at its bound) since the last batch said so. */
  dropped: z.number().int().nonnegative().optional(),
});
export type LogBatch = z.infer<typeof LogBatchSchema>;

/** hub → agent: the batch is stored (or was already); the agent may forget it. */
export const LogAckSchema = z.object({ t: z.literal('logs_ack'), boot: z.string().min(1).max(64), seq: z.number().int().positive() });
export type LogAck = z.infer<typeof LogAckSchema>;

export const logsAgentMessages = [LogBatchSchema] as const;
export const logsHubMessages = [LogAckSchema] as const;
