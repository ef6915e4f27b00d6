// The audit log as clients read it (GET /api/v1/audit): the filters and paging a caller may ask
// for and the entry shape. Plain zod, so the dashboard and scripts validate what the relay sends.
import { z } from 'zod';

export const AUDIT_PAGE_DEFAULT = 50;
export const AUDIT_PAGE_MAX = 100;

/** Query strings carry text: a whole number in decimal digits, nothing else ("1e2", "0x10", " 5" are refused). */
const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]{1,16}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** An action name ("team.create") or a prefix of whole segments ending in "." ("team.", "2fa."). */
export const AUDIT_ACTION_FILTER_PATTERN = /^[a-z0-9_]+(\.[a-z0-9_]+)*\.?$/;

const isoTime = z.iso.datetime({ offset: true });
const id = z.string().min(1).max(256);

export const AuditListQuerySchema = z
  .object({
    team_id: id.optional(),
    actor_id: id.optional(),
    action: z.string().max(64).regex(AUDIT_ACTION_FILTER_PATTERN, 'an action ("team.create") or a prefix ending in "." ("team.")').optional(),
    target_type: id.optional(),
    target_id: id.optional(),
    from: isoTime.optional().describe('Entries at or after this time'),
    // Exclusive, so one window's `to` can be the next one's `from`.
    to: isoTime.optional().describe('Entries before this time'),
    limit: wholeNumber(1, AUDIT_PAGE_MAX).optional().describe(`Entries per page, 1-${AUDIT_PAGE_MAX} (default ${AUDIT_PAGE_DEFAULT})`),
    before: wholeNumber(1, Number.MAX_SAFE_INTEGER).optional().describe("The previous page's next_before: entries with a smaller id"),
  })
  .refine((q) => q.from === undefined || q.to === undefined || Date.parse(q.from) <= Date.parse(q.to), {
    message: 'from must not be after to',
    path: ['from'],
  });
export type AuditListQuery = z.infer<typeof AuditListQuerySchema>;

export const AuditCredentialSchema = z.enum(['session', 'api_key', 'none']);
export type AuditCredential = z.infer<typeof AuditCredentialSchema>;

export const AuditEntrySchema = z.object({
  id: z.number().int(),
  at: z.iso.datetime(),
  /** Who acted; id null when nobody was logged in (a failed login names the user name tried). */
  actor: z.object({ id: z.string().nullable(), name: z.string() }),
  credential: AuditCredentialSchema,
  /** The session or API key id (never the key itself). */
  credential_id: z.string().nullable(),
  action: z.string(),
  target_type: z.string(),
  target_id: z.string().nullable(),
  /** The team the change belongs to; null for logins, users, roles and API keys. */
  team_id: z.string().nullable(),
  ip: z.string(),
  details: z.record(z.string(), z.unknown()).nullable(),
});
export type AuditEntry = z.infer<typeof AuditEntrySchema>;

export const AuditPageSchema = z.object({
  /** Newest first. */
  entries: z.array(AuditEntrySchema),
  /** Pass as `before` for the next page; null on the last one. */
  next_before: z.number().int().nullable(),
});
export type AuditPage = z.infer<typeof AuditPageSchema>;
