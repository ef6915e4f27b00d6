// Pipetower's API as its documentation (shared/seeds/pipetower-api.txt) shows it: the shapes of
// its account, team, server and variable objects, its paginated lists and its Laravel-style
// errors. The relay's compat layer (worker/compat/pipetower.ts) answers in these shapes; a client
// written for app.pipetower.com can check what it gets with them. Objects are strict: a key the
// seed does not show is a mistake, not an extension.
import { z } from 'zod';
import { TeamRoleSchema } from './teams.ts';

/** Pipetower's timestamps: seconds and an explicit UTC offset, "2023-04-09T10:56:38+00:00". */
export const PipetowerDateSchema = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/, 'a date like 2023-04-09T10:56:38+00:00');

/** Unix ms → Pipetower's date form. */
export function pipetowerDate(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+00:00');
}

export const PipetowerAccountSchema = z.strictObject({
  id: z.string(),
  name: z.string(),
  /** Null when the relay's user has no address (Pipetower's always have one). */
  email: z.string().nullable(),
  timezone: z.string(),
  email_verified: z.boolean(),
  '2fa_enabled': z.boolean(),
  created_at: PipetowerDateSchema,
  updated_at: PipetowerDateSchema,
});
export type PipetowerAccount = z.infer<typeof PipetowerAccountSchema>;

export const PipetowerMemberSchema = z.strictObject({
  name: z.string(),
  email: z.string().nullable(),
  role: TeamRoleSchema,
  '2fa_enabled': z.boolean(),
});
export type PipetowerMember = z.infer<typeof PipetowerMemberSchema>;

export const PipetowerTeamSchema = z.strictObject({
  id: z.string(),
  name: z.string(),
  members: z.array(PipetowerMemberSchema),
  created_at: PipetowerDateSchema,
  updated_at: PipetowerDateSchema,
});
export type PipetowerTeam = z.infer<typeof PipetowerTeamSchema>;

export const PipetowerTagSchema = z.strictObject({ name: z.string(), color: z.string().regex(/^#[0-9a-f]{6}$/) });

export const PipetowerServerSchema = z.strictObject({
  id: z.string(),
  team_id: z.string(),
  name: z.string(),
  connected: z.boolean(),
  /** For a relay device: the relay's host, through which the device is reached. */
  host: z.string(),
  /** A string, as Pipetower sends it: the relay's port. */
  port: z.string().regex(/^\d+$/),
  tags: z.array(PipetowerTagSchema),
  created_at: PipetowerDateSchema,
  updated_at: PipetowerDateSchema,
});
export type PipetowerServer = z.infer<typeof PipetowerServerSchema>;

/** A user, team or server variable; a secret's value is always "***" (SECRET_MASK). */
export const PipetowerVariableSchema = z.strictObject({ secret: z.boolean(), name: z.string(), value: z.string() });
export type PipetowerVariable = z.infer<typeof PipetowerVariableSchema>;

/** One of a server's metrics: a measurement (`type`, e.g. DiskUsage) and one number or text of it (`metric`, e.g. "/|total"), the value always a string. */
export const PipetowerMetricSchema = z.strictObject({
  type: z.enum(['CpuModel', 'HostInfo', 'DiskUsage', 'CpuUsage', 'LoadAverage', 'MemoryUsage']),
  metric: z.string(),
  value: z.string(),
  timestamp: PipetowerDateSchema,
});
export type PipetowerMetric = z.infer<typeof PipetowerMetricSchema>;

/** Laravel's paginator meta: `from` and `to` are null on an empty page. */
export const PipetowerMetaSchema = z.strictObject({
  current_page: z.number().int().min(1),
  from: z.number().int().min(1).nullable(),
  last_page: z.number().int().min(1),
  per_page: z.number().int().min(1).max(100),
  to: z.number().int().min(1).nullable(),
  total: z.number().int().min(0),
});
export type PipetowerMeta = z.infer<typeof PipetowerMetaSchema>;

/** Every Pipetower list: one page of `item` and where it stands. */
export function pipetowerList<T extends z.ZodType>(item: T) {
  return z.strictObject({ data: z.array(item), meta: PipetowerMetaSchema });
}

/** Every Pipetower error; a 422 also says what was wrong with each field. */
export const PipetowerErrorSchema = z.strictObject({
  message: z.string(),
  errors: z.record(z.string(), z.array(z.string())).optional(),
});
export type PipetowerError = z.infer<typeof PipetowerErrorSchema>;

/** GET /api/status: the seed shows only the request; the relay answers that it is up, and its version. */
export const PipetowerStatusSchema = z.strictObject({ status: z.literal('ok'), version: z.string() });
