// The logs API: Tyto's GET /api/v1/logs and GET /api/v1/logs/stream (SSE, `event: log`), and the
// native GET /api/v1/devices/:id/logs, with one query schema and one entry shape for all of them.
// Bad input names its parameter: a time that is not ISO 8601, a level that is not one of
// LOG_LEVELS, from after to, a limit or offset out of range.
import { z } from 'zod';
import { LOG_LEVELS, LogLevelSchema, LogSourceSchema } from '../protocol/logs.ts';

export { LOG_LEVELS, LOG_SOURCES, type LogLevel, type LogSource } from '../protocol/logs.ts';

/** A page of a query holds at most this many entries; offset + limit may reach MAX_LOG_WINDOW. */
export const MAX_LOG_LIMIT = 1000;
export const MAX_LOG_WINDOW = 10_000;
export const DEFAULT_LOG_LIMIT = 100;

const IsoTime = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

/** Comma lists: `level=error,warning`. */
const LevelList = z
  .string()
  .max(200)
  .transform((s, ctx) => {
    const levels = s.split(',').map((l) => l.trim().toLowerCase()).filter(Boolean);
    const bad = levels.find((l) => !(LOG_LEVELS as readonly string[]).includes(l));
    if (bad !== undefined || levels.length === 0) {
      ctx.addIssue({ code: 'custom', message: `level is a comma list of ${LOG_LEVELS.join(', ')}${bad ? ` (not ${JSON.stringify(bad)})` : ''}` });
      return z.NEVER;
    }
    return [...new Set(levels)] as z.infer<typeof LogLevelSchema>[];
  });

export const LogQuerySchema = z
  .object({
    agent_id: z.string().min(1).max(64).optional(),
    source: LogSourceSchema.optional(),
    source_name: z.string().min(1).max(256).optional(),
    level: LevelList.optional(),
    /** Full-text search (SQLite FTS5 over the message; words are ANDed, "quoted phrases" kept). */
    q: z.string().min(1).max(256).optional(),
    from: IsoTime.optional(),
    to: IsoTime.optional(),
    limit: z.coerce.number().int().min(1).max(MAX_LOG_LIMIT).default(DEFAULT_LOG_LIMIT),
    offset: z.coerce.number().int().min(0).max(MAX_LOG_WINDOW).default(0),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, { message: 'from must not be after to', path: ['from'] })
  .refine((q) => q.offset + q.limit <= MAX_LOG_WINDOW, { message: `offset + limit may not pass ${MAX_LOG_WINDOW}`, path: ['offset'] });
export type LogQuery = z.infer<typeof LogQuerySchema>;

/** Tyto's entry (its seed's example). `id` is "<device>:<seq>", increasing per device. */
export const LogEntrySchema = z.object({
  id: z.string(),
  timestamp: z.string(),
  agent_id: z.string(),
  source: LogSourceSchema,
  source_name: z.string(),
  level: LogLevelSchema,
  message: z.string(),
  fields: z.record(z.string(), z.string()),
});
export type LogEntry = z.infer<typeof LogEntrySchema>;

/** Newest first. */
export const LogPageSchema = z.object({ entries: z.array(LogEntrySchema), total: z.number().int().nonnegative() });
export type LogPage = z.infer<typeof LogPageSchema>;
